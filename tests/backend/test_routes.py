"""Every route and every error code of PROTOCOL.md, through the real handlers.

Each test drives the handlers with API Gateway-shaped events, stores in moto and reads
what was posted back from a real HTTP ``@connections`` endpoint.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from chat import bootstrap
from chat.model import RateLimit
from chat.protocol import ProtocolError
from chat.service import Chat
from tests.backend.conftest import items, messages_in

ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# --- $connect ---------------------------------------------------------------------------


def test_connect_records_identity_and_announces_join_to_others_only(gw, aws) -> None:
    alice = gw.join("alice", "lobby")
    bob = gw.join("bob", "lobby")
    carol = gw.join("carol", "other")

    assert gw.take(alice) == [
        {"type": "presence", "room": "lobby", "username": "bob", "event": "join"}
    ]
    # Nothing is posted to a connection during its own $connect; other rooms hear nothing.
    assert gw.take(bob) == []
    assert gw.take(carol) == []
    stored = {i["pk"]["S"]: i for i in items(aws, "chat-connections") if i["sk"]["S"] == "CONN"}
    assert stored[f"CONN#{bob}"]["username"]["S"] == "bob"
    assert stored[f"CONN#{bob}"]["room"]["S"] == "lobby"
    assert (
        int(stored[f"CONN#{bob}"]["expires_at"]["N"])
        > int(stored[f"CONN#{bob}"]["connected_at"]["N"]) // 1000 + 2 * 3600
    )


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"username": ""},
        {"username": "<b>"},
        {"username": "a" * 33},
        {"username": "ana bob"},
        {"username": "alice", "room": "Lobby"},
        {"username": "alice", "room": "r" * 49},
        {"username": "alice", "room": "lob_by"},
        {"room": "general"},
    ],
)
def test_connect_refuses_bad_input_with_400_and_stores_nothing(gw, aws, query) -> None:
    _, response = gw.connect(query=query)
    assert response["statusCode"] == 400
    assert "Traceback" not in response.get("body", "")
    assert items(aws, "chat-connections") == []


def test_connect_accepts_unicode_names_nfc_normalized_and_defaults_room(
    gw, aws
) -> None:
    decomposed = "jose\u0301"  # e + combining acute: NFC makes it "josé"
    cid, response = gw.connect(query={"username": decomposed, "room": ""})
    assert response["statusCode"] == 200
    gw.send(cid, {"action": "who"})
    assert gw.take(cid) == [{"type": "who", "room": "general", "users": ["josé"], "count": 1}]
    for name in ("ana_1", "Zoë.x-2", "a" * 32, "名前"):
        assert gw.connect(name)[1]["statusCode"] == 200


# --- $disconnect ------------------------------------------------------------------------


def test_disconnect_removes_connection_announces_leave_and_is_idempotent(
    gw, aws
) -> None:
    alice = gw.join("alice")
    bob = gw.join("bob")
    gw.take(alice)

    assert gw.disconnect(bob)["statusCode"] == 200
    assert gw.take(alice) == [
        {"type": "presence", "room": "general", "username": "bob", "event": "leave"}
    ]
    assert gw.disconnect(bob)["statusCode"] == 200  # late duplicate: nothing happens
    assert gw.take(alice) == []
    remaining = {i["pk"]["S"] + i["sk"]["S"] for i in items(aws, "chat-connections")}
    assert not any(bob in key for key in remaining)


# --- new_message ------------------------------------------------------------------------


def test_message_reaches_whole_room_sender_included_and_no_other_room(gw, aws) -> None:
    alice, bob = gw.join("alice", "lobby"), gw.join("bob", "lobby")
    carol = gw.join("carol", "kitchen")
    gw.take(alice)

    gw.send(alice, {"action": "new_message", "text": "  hola  ", "client_id": "c-1"})

    got_alice, got_bob = gw.take(alice), gw.take(bob)
    assert got_alice == got_bob and len(got_alice) == 1
    event = got_alice[0]
    assert set(event) == {"type", "id", "room", "username", "text", "created_at", "client_id",
                          "version", "reactions"}
    assert event["version"] == 1 and event["reactions"] == {}
    assert event["type"] == "message" and event["room"] == "lobby"
    assert event["username"] == "alice" and event["text"] == "hola" and event["client_id"] == "c-1"
    assert ID.fullmatch(event["id"]) and TIME.fullmatch(event["created_at"])
    assert gw.take(carol) == []
    assert [m["text"]["S"] for m in messages_in(aws)] == ["hola"]


def test_the_room_is_listed_while_the_message_is_stored(gw, aws, monkeypatch) -> None:
    from chat.adapters.dynamodb import Store

    alice, bob = gw.join("alice", "lobby"), gw.join("bob", "lobby")
    gw.take(alice)
    saving = threading.Event()
    seen: list[bool] = []
    real_list, real_save = Store.room_shard, Store.save_message

    def room_shard(self, room, shard=0):
        # Listing first and storing after (one thread) would wait here in vain.
        seen.append(saving.wait(timeout=10))
        return real_list(self, room, shard)

    def save_message(self, message):
        saving.set()
        return real_save(self, message)

    monkeypatch.setattr(Store, "room_shard", room_shard)
    monkeypatch.setattr(Store, "save_message", save_message)
    gw.send(alice, {"action": "new_message", "text": "both at once"})

    assert seen == [True]
    assert [e["text"] for e in gw.take(bob)] == ["both at once"]
    assert [m["text"]["S"] for m in messages_in(aws)] == ["both at once"]


def test_a_room_that_cannot_be_listed_still_confirms_the_stored_message(
    gw, aws, monkeypatch
) -> None:
    from chat.adapters.dynamodb import Store
    from chat.model import StorageError

    alice, bob = gw.join("alice", "lobby"), gw.join("bob", "lobby")
    gw.take(alice)

    def room_shard(self, room, shard=0):
        raise StorageError("read timed out")

    monkeypatch.setattr(Store, "room_shard", room_shard)
    gw.send(alice, {"action": "new_message", "text": "kept", "client_id": "k-1"})

    (echo,) = gw.take(alice)
    assert echo["type"] == "message" and echo["text"] == "kept" and echo["client_id"] == "k-1"
    assert gw.take(bob) == []  # it will see it in history
    assert [m["text"]["S"] for m in messages_in(aws)] == ["kept"]


def test_client_id_is_echoed_only_when_given_and_null_means_absent(gw, aws) -> None:
    alice = gw.join("alice")
    gw.send(alice, {"action": "new_message", "text": "one"})
    gw.send(alice, {"action": "new_message", "text": "two", "client_id": None})
    events = gw.take(alice)
    assert [e["text"] for e in events] == ["one", "two"]
    assert all("client_id" not in e for e in events)
    assert events[0]["id"] < events[1]["id"]  # ids sort by time


def test_identity_comes_from_the_connection_never_from_the_frame(gw, aws) -> None:
    mallory = gw.join("mallory", "lobby")
    alice = gw.join("alice", "vip")
    gw.send(mallory, {"action": "new_message", "text": "hi", "username": "alice", "room": "vip"})
    [event] = gw.take(mallory)
    assert event["username"] == "mallory" and event["room"] == "lobby"
    assert gw.take(alice) == []


@pytest.mark.parametrize(
    ("frame", "echo"),
    [
        ({"action": "new_message"}, None),
        ({"action": "new_message", "text": 5, "client_id": "c-2"}, "c-2"),
        ({"action": "new_message", "text": "   \n\t ", "client_id": "c-3"}, "c-3"),
        ({"action": "new_message", "text": "x" * 4001}, None),
        ({"action": "new_message", "text": "ok", "client_id": ""}, None),
        ({"action": "new_message", "text": "ok", "client_id": "c" * 65}, None),
        ({"action": "new_message", "text": "ok", "client_id": 7}, None),
        ({"action": "new_message", "text": "\ud800"}, None),
    ],
)
def test_invalid_message_gets_an_error_and_nothing_is_stored(
    gw, aws, frame, echo
) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    gw.take(alice)
    gw.send(alice, frame)
    [error] = gw.take(alice)
    assert error["type"] == "error" and error["code"] == "invalid_message"
    assert error["message"]
    assert error.get("client_id") == echo and ("client_id" in error) == (echo is not None)
    assert gw.take(bob) == []
    assert messages_in(aws) == []


def test_text_limit_counts_code_points_after_trimming(gw, aws) -> None:
    alice = gw.join("alice")
    text = "é" * 4000  # 8000 bytes of UTF-8, 4000 code points
    gw.send(alice, {"action": "new_message", "text": f"\n {text} \n"})
    [event] = gw.take(alice)
    assert event["type"] == "message" and event["text"] == text


def test_retry_with_same_client_id_is_stored_and_broadcast_once(gw, aws) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    gw.take(alice)
    frame = {"action": "new_message", "text": "only once", "client_id": "retry-1"}
    gw.send(alice, frame)
    [original] = gw.take(alice)
    assert len(gw.take(bob)) == 1

    gw.send(alice, frame)  # same connection
    assert gw.take(alice) == [original]
    # A reconnect is a new connection: the retry is still recognised.
    gw.disconnect(alice)
    alice2 = gw.join("alice")
    gw.take(bob)
    gw.send(alice2, frame)
    assert gw.take(alice2) == [original]
    assert gw.take(bob) == []
    assert len(messages_in(aws)) == 1


def test_same_client_id_from_another_user_or_room_is_another_message(gw, aws) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    alice_kitchen = gw.join("alice", "kitchen")
    frame = {"action": "new_message", "text": "hi", "client_id": "shared"}
    for cid in (alice, bob, alice_kitchen):
        gw.send(cid, frame)
    assert len(messages_in(aws)) == 3


def test_rate_limit_refuses_frames_over_the_configured_rate(
    gw, aws, configure
) -> None:
    configure(rate_limit=RateLimit(messages=3, window_s=3600))  # no window edge mid-test
    alice, bob = gw.join("alice"), gw.join("bob")
    gw.take(alice)
    for n in range(5):
        gw.send(alice, {"action": "new_message", "text": f"m{n}", "client_id": f"c{n}"})
    events = gw.take(alice)
    assert [e.get("text") for e in events[:3]] == ["m0", "m1", "m2"]
    assert [(e["type"], e["code"], e["client_id"]) for e in events[3:]] == [
        ("error", "rate_limited", "c3"),
        ("error", "rate_limited", "c4"),
    ]
    assert len(gw.take(bob)) == 3
    assert len(messages_in(aws)) == 3
    # The limit is per connection: bob is unaffected.
    gw.send(bob, {"action": "new_message", "text": "bob here"})
    assert gw.take(bob)[0]["text"] == "bob here"


# --- history ----------------------------------------------------------------------------


def test_history_pages_newest_first_and_replies_oldest_first(gw, aws) -> None:
    alice = gw.join("alice", "lobby")
    other = gw.join("zed", "elsewhere")
    gw.send(other, {"action": "new_message", "text": "not in lobby"})
    for n in range(7):
        gw.send(alice, {"action": "new_message", "text": f"m{n}"})
    gw.take(alice)

    gw.send(alice, {"action": "history", "limit": 3})
    [page1] = gw.take(alice)
    assert page1["type"] == "history" and page1["room"] == "lobby"
    assert [m["text"] for m in page1["messages"]] == ["m4", "m5", "m6"]
    assert page1["before"] is not None

    gw.send(alice, {"action": "history", "limit": 3, "before": page1["before"]})
    [page2] = gw.take(alice)
    assert [m["text"] for m in page2["messages"]] == ["m1", "m2", "m3"]

    gw.send(alice, {"action": "history", "limit": 3, "before": page2["before"]})
    [page3] = gw.take(alice)
    assert [m["text"] for m in page3["messages"]] == ["m0"]
    assert page3["before"] is None
    for message in page1["messages"] + page2["messages"] + page3["messages"]:
        assert {"id", "room", "username", "text", "created_at"} <= set(message)


def test_history_defaults_to_50_and_empty_room_ends_with_null(gw, aws) -> None:
    alice = gw.join("alice", "quiet")
    gw.send(alice, {"action": "history"})
    assert gw.take(alice) == [{"type": "history", "room": "quiet", "messages": [], "before": None,
                               "read_marker": None}]
    gw.send(alice, {"action": "history", "limit": None, "before": None})
    assert gw.take(alice)[0]["messages"] == []


@pytest.mark.parametrize(
    "frame",
    [
        {"action": "history", "limit": 0},
        {"action": "history", "limit": 101},
        {"action": "history", "limit": "5"},
        {"action": "history", "limit": True},
        {"action": "history", "limit": 5.5},
        {"action": "history", "before": "not-a-cursor", "client_id": "h1"},
        {"action": "history", "before": 12},
    ],
)
def test_history_refuses_bad_fields(gw, aws, frame) -> None:
    alice = gw.join("alice")
    gw.send(alice, frame)
    [error] = gw.take(alice)
    assert (error["type"], error["code"]) == ("error", "invalid_message")
    assert error.get("client_id") == frame.get("client_id")


# --- who, typing, $default --------------------------------------------------------------


def test_who_lists_each_user_once_sorted_by_code_point(gw, aws) -> None:
    zoe = gw.join("zoe")
    gw.join("Bob")
    gw.join("alice")
    gw.join("alice")  # a second tab
    gw.join("émile")
    gw.join("yann", "elsewhere")
    gw.send(zoe, {"action": "who"})
    who = [e for e in gw.take(zoe) if e["type"] == "who"]
    assert who == (
        [{"type": "who", "room": "general", "users": ["Bob", "alice", "zoe", "émile"], "count": 4}]
    )


def test_typing_goes_to_the_others_in_the_room_and_is_not_stored(gw, aws) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    carol = gw.join("carol", "elsewhere")
    gw.take(alice)
    gw.send(alice, {"action": "typing"})
    assert gw.take(bob) == [{"type": "typing", "room": "general", "username": "alice"}]
    assert gw.take(alice) == [] and gw.take(carol) == []
    assert messages_in(aws) == []


@pytest.mark.parametrize(
    ("body", "code", "echo"),
    [
        ("not json", "invalid_json", None),
        ("", "invalid_json", None),
        ("[1, 2]", "invalid_json", None),
        ('"new_message"', "invalid_json", None),
        ("null", "invalid_json", None),
        ('{"text": "no action"}', "unknown_action", None),
        ('{"action": "dance", "client_id": "d1"}', "unknown_action", "d1"),
        ('{"action": 5}', "unknown_action", None),
        ('{"action": "\\ud800", "client_id": "s1"}', "unknown_action", "s1"),
    ],
)
def test_default_route_answers_bad_json_and_unknown_actions(
    gw, aws, body, code, echo
) -> None:
    alice = gw.join("alice")
    response = gw.send(alice, body)
    assert response["statusCode"] == 200
    [error] = gw.take(alice)
    assert (error["type"], error["code"]) == ("error", code)
    assert error.get("client_id") == echo
    assert messages_in(aws) == []


def own_chat(callback_url: str, **kwargs) -> Chat:
    """A Chat of the test's own, over the process's store and @connections."""
    services = bootstrap.services()
    return Chat(services.store, services.connections(callback_url),
                rate_limit=RateLimit(10, 10), **kwargs)


def test_rate_limit_window_slides_across_what_a_fixed_window_would_reset(
    gw, aws, recorder
) -> None:
    alice = gw.join("alice")
    now = [1009.95]
    chat = own_chat(recorder.url, clock=lambda: now[0])
    for n in range(10):
        chat.new_message(alice, {"text": f"a{n}"})
    now[0] = 1010.05  # a fixed 10 s window would start afresh here
    with pytest.raises(ProtocolError) as refused:
        chat.new_message(alice, {"text": "too soon"})
    assert refused.value.code == "rate_limited"
    now[0] = 1020.0  # the burst is now more than 10 s old
    chat.new_message(alice, {"text": "later"})
    assert len(messages_in(aws)) == 11


def test_rate_buckets_on_the_identity_item_stay_bounded(gw, aws, recorder) -> None:
    alice = gw.join("alice")
    now = [5000.0]
    chat = own_chat(recorder.url, clock=lambda: now[0])
    for _ in range(80):  # one frame every 3 s for 4 minutes: never limited
        chat.new_message(alice, {"text": "tick"})
        now[0] += 3
    [identity] = [i for i in items(aws, "chat-connections") if i["pk"]["S"] == f"CONN#{alice}"]
    buckets = [name for name in identity if name.startswith("rl")]
    assert 0 < len(buckets) <= 32 + 4
    assert len(messages_in(aws)) == 80


def test_a_retry_after_the_idempotency_key_expired_is_a_new_message(gw, aws) -> None:
    """Keys live 24 h; TTL deletes lazily, so an expired key must count as absent."""
    alice = gw.join("alice")
    frame = {"action": "new_message", "text": "again", "client_id": "old-1"}
    gw.send(alice, frame)
    [first] = gw.take(alice)
    [key] = [i for i in items(aws, "chat-messages") if i["sk"]["S"] == "IDEM"]
    lifetime = int(key["expires_at"]["N"]) - time.time()
    assert 24 * 3600 - 60 < lifetime <= 24 * 3600
    aws.update_item(
        TableName="chat-messages",
        Key={"pk": key["pk"], "sk": key["sk"]},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    gw.send(alice, frame)
    [second] = gw.take(alice)
    assert second["type"] == "message" and second["id"] != first["id"]
    assert len(messages_in(aws)) == 2
