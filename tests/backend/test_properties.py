"""Property: whatever bytes a client sends, it gets a valid event or a PROTOCOL.md error,
and nothing invalid is ever stored."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chat.model import RateLimit
from tests.backend.conftest import messages_in

CODES = {"invalid_json", "unknown_action", "invalid_message", "rate_limited", "internal"}
ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
texts = st.one_of(
    st.text(max_size=60),
    st.text(alphabet=" \t\n\u00a0\u2003", max_size=5),  # only whitespace
    st.builds(lambda n, c: c * n, st.integers(3995, 4005), st.sampled_from(["a", "é", "😀"])),
    json_values,
)
frames = st.fixed_dictionaries(
    {
        "action": st.one_of(
            st.sampled_from(["new_message", "history", "who", "typing"]), json_values
        )
    },
    optional={
        "text": texts,
        "client_id": st.one_of(
            st.none(), st.text(max_size=70), st.integers(), st.sampled_from(["c-1", "c-2"])
        ),
        "before": st.one_of(st.none(), st.text(max_size=30), st.integers()),
        "limit": st.one_of(
            st.none(), st.integers(-5, 120), st.booleans(), st.floats(), st.text(max_size=3)
        ),
        "username": st.text(max_size=10),
        "room": st.text(max_size=10),
    },
)
bodies = st.one_of(frames.map(json.dumps), st.text(max_size=80), json_values.map(json.dumps))


def _check_event(event: dict[str, Any]) -> None:
    kind = event.get("type")
    assert kind in {"message", "history", "who", "error", "pong"}, event
    if kind == "error":
        assert event["code"] in CODES and isinstance(event["message"], str) and event["message"]
    elif kind == "message":
        assert (
            ID.fullmatch(event["id"]) and event["username"] == "alice" and event["room"] == "prop"
        )
        assert 1 <= len(event["text"]) <= 4000 and event["text"] == event["text"].strip()
    elif kind == "history":
        assert event["room"] == "prop" and isinstance(event["messages"], list)
        assert event["before"] is None or ID.fullmatch(event["before"])


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies)
def test_any_frame_gets_a_valid_event_or_a_protocol_error(
    gw, aws, configure, body: str
) -> None:
    configure(rate_limit=RateLimit(messages=100000))
    if not hasattr(gw, "alice"):
        gw.alice = gw.join("alice", "prop")  # type: ignore[attr-defined]
        gw.bob = gw.join("bob", "prop")  # type: ignore[attr-defined]
        gw.take(gw.alice)  # type: ignore[attr-defined]
    alice, bob = gw.alice, gw.bob  # type: ignore[attr-defined]

    response = gw.send(alice, body)

    assert response == {"statusCode": 200}
    events = gw.take(alice)
    try:
        frame = json.loads(body)
    except ValueError:
        frame = None
    if isinstance(frame, dict) and frame.get("action") == "typing":
        assert events == []
        assert gw.take(bob) == [{"type": "typing", "room": "prop", "username": "alice"}]
    else:
        assert len(events) == 1, events
        _check_event(events[0])
        gw.take(bob)
    for item in messages_in(aws):
        text = item["text"]["S"]
        assert 1 <= len(text) <= 4000 and text == text.strip()
        assert item["username"]["S"] == "alice" and item["room"]["S"] == "prop"
