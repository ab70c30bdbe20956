"""The events handlers get locally have the shape of API Gateway's real ones.

Ground truth: the real events in ``tests/events/`` (Powertools' published samples).
Each event is captured over a real socket, by a handler running in the gateway's
execution environment, and compared with its sample: the same top-level keys, the
same ``requestContext`` keys and value types, and the headers API Gateway adds.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest

from local_gateway.events import new_gateway_id, request_time
from local_gateway.routing import select_route
from tests.gateway.conftest import Client, open_client

pytestmark = pytest.mark.timeout(60)

SAMPLES = Path(__file__).resolve().parent.parent / "events"
ID = re.compile(r"^[A-Za-z0-9+/]{15}=$")
REQUEST_TIME = re.compile(r"^\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000$")


def sample(kind: str) -> dict[str, Any]:
    return json.loads((SAMPLES / f"powertools_apiGatewayWebSocketApi{kind}.json").read_text())


def types(d: dict[str, Any]) -> dict[str, type]:
    return {k: type(v) for k, v in d.items()}


def assert_same_shape(local: dict[str, Any], real: dict[str, Any]) -> None:
    ctx, real_ctx = local["requestContext"], real["requestContext"]
    assert types(ctx) == types(real_ctx)
    assert types(ctx["identity"]) == types(real_ctx["identity"])
    for key in ("requestId", "extendedRequestId", "connectionId"):
        assert ID.match(ctx[key]), (key, ctx[key])
    assert REQUEST_TIME.match(ctx["requestTime"])
    assert ctx["stage"] == "local"
    assert ctx["messageDirection"] == "IN"
    assert ctx["connectedAt"] <= ctx["requestTimeEpoch"] <= time.time() * 1000 + 1
    assert local["isBase64Encoded"] is False


def capture(client: Client) -> dict[str, Any]:
    """The message event of an ``echo`` frame, as the handler received it."""
    return client.request({"action": "echo", "n": 1}, "echo")["event"]


def record(client: Client, key: str, timeout: float = 10) -> dict[str, Any]:
    """An event a fake $connect/$disconnect handler stored in DynamoDB under ``key``."""
    deadline = time.monotonic() + timeout
    while True:
        value = client.request({"action": "record", "key": key}, "record")["value"]
        if value is not None:
            return json.loads(value)
        assert time.monotonic() < deadline, f"no record {key}"
        time.sleep(0.05)


def test_route_event_matches_the_real_one(fake_gw):
    with open_client(fake_gw.websocket_url, "username=alice") as alice:
        event = capture(alice)
    real = sample("Message")
    assert set(event) == set(real) == {"requestContext", "body", "isBase64Encoded"}
    assert_same_shape(event, real)
    ctx = event["requestContext"]
    assert ctx["routeKey"] == "echo" and ctx["eventType"] == "MESSAGE"
    assert ID.match(ctx["messageId"])
    assert json.loads(event["body"]) == {"action": "echo", "n": 1}
    assert ctx["identity"]["sourceIp"] == "127.0.0.1"


def test_connect_event_matches_the_real_one(fake_gw):
    with open_client(fake_gw.websocket_url, "username=al%C3%ADce&room=general&tag=a&tag=b",
                     user_agent_header="pytest-agent") as client:
        connection_id = capture(client)["requestContext"]["connectionId"]
        event = record(client, f"conn#{connection_id}")
    real = sample("Connect")
    # The sample URL had no query string; API Gateway adds both keys when there is one.
    assert set(event) == set(real) | {"queryStringParameters",
                                      "multiValueQueryStringParameters"}
    assert_same_shape(event, real)
    ctx = event["requestContext"]
    assert (ctx["routeKey"], ctx["eventType"]) == ("$connect", "CONNECT")
    assert ctx["connectionId"] == connection_id
    assert "messageId" not in ctx
    assert event["queryStringParameters"] == {"username": "alíce", "room": "general",
                                              "tag": "b"}
    assert event["multiValueQueryStringParameters"]["tag"] == ["a", "b"]
    headers = event["headers"]
    # The headers API Gateway's front end adds or forwards, as in the sample...
    for name in ("Host", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "X-Amzn-Trace-Id",
                 "X-Forwarded-For", "X-Forwarded-Port", "X-Forwarded-Proto"):
        assert name in headers, name
    assert headers["User-Agent"] == "pytest-agent"
    # ... but not the hop-by-hop ones it consumes.
    assert "Connection" not in headers and "Upgrade" not in headers
    assert headers["X-Forwarded-Port"] == str(fake_gw.port)
    assert all(event["multiValueHeaders"][k] == [v] for k, v in headers.items())


def test_connect_event_without_query_string_has_no_query_keys(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        connection_id = capture(client)["requestContext"]["connectionId"]
        event = record(client, f"conn#{connection_id}")
    assert set(event) == set(sample("Connect"))


def test_disconnect_event_matches_the_real_one(fake_gw):
    with open_client(fake_gw.websocket_url) as observer:
        leaver = open_client(fake_gw.websocket_url)
        connection_id = capture(leaver)["requestContext"]["connectionId"]
        leaver.ws.close(code=1000, reason="bye")
        event = record(observer, f"disconnect#{connection_id}")
    real = sample("Disconnect")
    assert set(event) == set(real)
    assert_same_shape(event, real)
    assert set(event["headers"]) == set(real["headers"])
    ctx = event["requestContext"]
    assert (ctx["routeKey"], ctx["eventType"]) == ("$disconnect", "DISCONNECT")
    assert (ctx["disconnectStatusCode"], ctx["disconnectReason"]) == (1000, "bye")


def test_client_close_without_status_is_reported_like_api_gateway(fake_gw):
    with open_client(fake_gw.websocket_url) as observer:
        leaver = open_client(fake_gw.websocket_url)
        connection_id = capture(leaver)["requestContext"]["connectionId"]
        leaver.close_without_status()
        event = record(observer, f"disconnect#{connection_id}")
    real_ctx = sample("Disconnect")["requestContext"]
    assert event["requestContext"]["disconnectStatusCode"] == real_ctx["disconnectStatusCode"]
    assert event["requestContext"]["disconnectReason"] == real_ctx["disconnectReason"]


def test_ids_look_like_api_gateway_ids():
    ids = {new_gateway_id() for _ in range(2000)}
    assert len(ids) == 2000
    assert all(ID.match(i) for i in ids)
    # Standard base64: some ids need URL-encoding in @connections paths.
    assert any("/" in i or "+" in i for i in ids)


def test_request_time_format_matches_the_sample():
    real = sample("Connect")["requestContext"]
    assert request_time(real["requestTimeEpoch"]) == real["requestTime"]


@pytest.mark.parametrize(("body", "route"), [
    ('{"action": "echo"}', "echo"),
    ('{"action": "ping"}', "ping"),
    ('{"action": "nope"}', "$default"),
    ('{"action": 3}', "$default"),
    ('{"action": "$connect"}', "$default"),
    ('{"text": "no action"}', "$default"),
    ('["action", "echo"]', "$default"),
    ("not json", "$default"),
    ("", "$default"),
    ("[" * 5000 + "]" * 5000, "$default"),  # too deep for json: still routed
])
def test_route_selection_on_request_body_action(body, route):
    assert select_route(body, {"echo": object(), "$default": object()},
                        {"ping": "{}"}) == route
