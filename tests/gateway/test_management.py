"""The Management API (``@connections``) as boto3 sees it, from a test and from a handler."""

from __future__ import annotations

import itertools
import json
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from tests.gateway.conftest import fake_gateway, open_client
from tests.gateway.test_limits import disconnect_record

pytestmark = pytest.mark.timeout(90)


def management(gw):
    return boto3.client(
        "apigatewaymanagementapi", endpoint_url=f"{gw.http_url}/local", region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def connection_id_of(client):
    return client.request({"action": "echo"}, "echo")["event"]["requestContext"]["connectionId"]


def test_post_sends_the_body_as_one_text_frame(fake_gw):
    api = management(fake_gw)
    with open_client(fake_gw.websocket_url) as client:
        cid = connection_id_of(client)
        body = json.dumps({"type": "hello", "text": "josé ✓"}, ensure_ascii=False)
        api.post_to_connection(ConnectionId=cid, Data=body.encode())
        frame = client.ws.recv(timeout=5)
        assert isinstance(frame, str) and frame == body


def test_get_reports_connected_at_last_active_at_and_source_ip(fake_gw):
    api = management(fake_gw)
    with open_client(fake_gw.websocket_url) as client:
        cid = connection_id_of(client)
        first = api.get_connection(ConnectionId=cid)
        now = datetime.now(tz=UTC)
        assert now - timedelta(seconds=30) < first["ConnectedAt"] <= now
        assert first["Identity"]["SourceIp"] == "127.0.0.1"
        time.sleep(0.05)
        client.ws.ping().wait(5)  # a control frame is not activity
        assert api.get_connection(ConnectionId=cid)["LastActiveAt"] == first["LastActiveAt"]
        client.request({"action": "ping"}, "pong")  # a data frame is
        later = api.get_connection(ConnectionId=cid)
        assert later["LastActiveAt"] > first["LastActiveAt"]
        assert later["ConnectedAt"] == first["ConnectedAt"]


def test_delete_closes_with_1000_and_fires_disconnect(fake_gw):
    api = management(fake_gw)
    with open_client(fake_gw.websocket_url) as observer:
        target = open_client(fake_gw.websocket_url)
        cid = connection_id_of(target)
        api.delete_connection(ConnectionId=cid)
        assert target.wait_closed()[0] == 1000
        ctx = disconnect_record(observer, cid)
        assert ctx["disconnectStatusCode"] == 1000
        assert ctx["disconnectReason"]


@pytest.mark.parametrize("operation", ["post", "get", "delete"])
def test_unknown_ids_answer_410_and_boto3_raises_gone(fake_gw, operation):
    api = management(fake_gw)
    calls = {
        "post": lambda: api.post_to_connection(ConnectionId="AAAAAAAAAAAAAAA=", Data=b"x"),
        "get": lambda: api.get_connection(ConnectionId="AAAAAAAAAAAAAAA="),
        "delete": lambda: api.delete_connection(ConnectionId="AAAAAAAAAAAAAAA="),
    }
    with pytest.raises(api.exceptions.GoneException) as gone:
        calls[operation]()
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    assert gone.value.response["Error"]["Code"] == "GoneException"


def test_a_closed_connection_is_gone(fake_gw):
    api = management(fake_gw)
    client = open_client(fake_gw.websocket_url)
    cid = connection_id_of(client)
    client.close()
    with pytest.raises(api.exceptions.GoneException):
        api.post_to_connection(ConnectionId=cid, Data=b"late")


def test_posts_over_128_kb_are_refused(fake_gw):
    api = management(fake_gw)
    with open_client(fake_gw.websocket_url) as client:
        cid = connection_id_of(client)
        with pytest.raises(ClientError) as refused:
            api.post_to_connection(ConnectionId=cid, Data=b"x" * (128 * 1024 + 1))
        assert refused.value.response["Error"]["Code"] == "PayloadTooLargeException"
        api.post_to_connection(ConnectionId=cid, Data=b"y" * (128 * 1024))
        assert client.ws.recv(timeout=5) == "y" * (128 * 1024)


def test_handlers_reach_the_management_api_through_callback_url(fake_gw):
    with open_client(fake_gw.websocket_url) as alice, open_client(fake_gw.websocket_url) as bob:
        bob_id = connection_id_of(bob)
        got = alice.request({"action": "manage", "op": "get", "target": bob_id}, "manage")
        assert got["answer"]["sourceIp"] == "127.0.0.1"
        posted = alice.request({"action": "manage", "op": "post", "target": bob_id,
                                "data": "from alice"}, "manage")
        assert posted["answer"] == "posted"
        assert bob.ws.recv(timeout=5) == "from alice"
        gone = alice.request({"action": "manage", "op": "post", "target": "BBBBBBBBBBBBBBB=",
                              "data": "x"}, "manage")
        assert (gone["error"], gone["status"]) == ("GoneException", 410)


def test_ids_with_plus_and_slash_are_url_encoded_and_decoded():
    # API Gateway's ids are base64 and may hold "+" and "/"; boto3 sends them %-encoded.
    ids = (f"a+b/c{n:02d}/+xyzABC=" for n in itertools.count())
    with fake_gateway(connection_ids=lambda: next(ids)) as gw:
        api = management(gw)
        with open_client(gw.websocket_url) as alice, open_client(gw.websocket_url) as bob:
            bob_id = connection_id_of(bob)
            assert "+" in bob_id and "/" in bob_id and len(bob_id) == 16
            api.post_to_connection(ConnectionId=bob_id, Data=b"direct")
            assert bob.ws.recv(timeout=5) == "direct"
            assert api.get_connection(ConnectionId=bob_id)["Identity"]["SourceIp"]
            posted = alice.request({"action": "manage", "op": "post", "target": bob_id,
                                    "data": "via handler"}, "manage")
            assert posted["answer"] == "posted"
            assert bob.ws.recv(timeout=5) == "via handler"
            api.delete_connection(ConnectionId=bob_id)
            assert bob.wait_closed()[0] == 1000
