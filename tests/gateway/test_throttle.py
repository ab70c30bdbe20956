"""The stage's throttle and the per-connection caps (``local_gateway.stage``).

A throttled frame is answered by the gateway itself with the frame API Gateway sends,
``{"message": "Too Many Requests", "connectionId", "requestId"}``; the connection stays
open and nothing is invoked. One connection may have only so many frames waiting or
running, so its flood costs its own frames, never another client's place in line; and
a client that stops reading makes ``@connections`` answer 429 LimitExceededException
instead of making the poster wait.
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from websockets.sync.client import connect

from local_gateway.settings import GatewaySettings, stack_context
from local_gateway.stage import THROTTLED
from local_gateway.testing import GatewayThread
from tests.gateway.conftest import fake_gateway, open_client

pytestmark = pytest.mark.timeout(180)


def throttled(event: dict[str, Any]) -> bool:
    return event.get("message") == THROTTLED


def test_the_throttle_defaults_to_the_deployed_stage_settings():
    settings = GatewaySettings()
    assert settings.throttle_rate_limit == stack_context("throttle_rate_limit") == 50
    assert settings.throttle_burst_limit == stack_context("throttle_burst_limit") == 100


def test_frames_beyond_the_stage_throttle_are_answered_too_many_requests():
    with GatewayThread(GatewaySettings(port=0, state_dir=None, throttle_rate_limit=1,
                                       throttle_burst_limit=5)) as gw, \
            open_client(gw.websocket_url, "username=flood") as c:
        for _ in range(20):
            c.send({"action": "ping"})
        answers = [c.recv() for _ in range(20)]
        refused = [a for a in answers if throttled(a)]
        pongs = [a for a in answers if a == {"type": "pong"}]
        # The burst goes through; what comes faster than the rate refills is refused.
        assert len(pongs) >= 5 and refused and len(pongs) + len(refused) == 20, answers
        assert set(refused[0]) == {"message", "connectionId", "requestId"}
        assert refused[0]["connectionId"] in gw.gateway.stage.sockets
        # Nothing was invoked for them, and the connection is still there: once the
        # bucket refills, frames go through again.
        deadline = time.monotonic() + 60
        while True:
            c.send({"action": "ping"})
            if c.recv() == {"type": "pong"}:
                break
            assert time.monotonic() < deadline, "the throttle never let a frame through"
            time.sleep(0.5)


def test_one_connection_flooding_cannot_starve_another():
    # The stage's throttle is lifted so only the per-connection cap acts. The flooder's
    # frames each hold an execution environment for seconds: without the cap, the
    # victim's frames would wait behind every one of them.
    cap, flood = 3, 60
    with fake_gateway(max_frames_in_flight=cap, throttle_rate_limit=100_000,
                      throttle_burst_limit=100_000, handler_timeout_s=10) as gw, \
            open_client(gw.websocket_url, "username=flooder") as flooder, \
            open_client(gw.websocket_url, "username=victim") as victim:
        for _ in range(flood):
            flooder.send({"action": "slow", "seconds": 6})
        refused = [flooder.recv(timeout=30) for _ in range(flood - cap)]
        assert all(throttled(e) for e in refused), refused
        for n in range(3):
            victim.send({"action": "slow", "seconds": 0})
            assert victim.recv(timeout=60)["type"] == "slow-done", n
        # The flooder's admitted frames still finish: nothing was dropped silently.
        done = [flooder.recv(timeout=60) for _ in range(cap)]
        assert [e["type"] for e in done] == ["slow-done"] * cap
        flooder.assert_no_events()


def test_a_client_that_stops_reading_gets_posts_refused_with_limit_exceeded():
    limit = 256 * 1024
    with GatewayThread(GatewaySettings(port=0, state_dir=None, max_buffered_bytes=limit)) as gw:
        api = boto3.client(
            "apigatewaymanagementapi", endpoint_url=f"{gw.http_url}/local",
            region_name="us-east-1", aws_access_key_id="t", aws_secret_access_key="t",
            config=Config(retries={"total_max_attempts": 1}))
        # max_queue=1: the client's reader stops after one unread message, so the
        # kernel's buffers fill and then the gateway's.
        stalled = connect(f"{gw.websocket_url}?username=stalled", max_queue=1, legacy=True)
        reader = open_client(gw.websocket_url, "username=reader")
        try:
            stalled.send(json.dumps({"action": "ping"}))
            reader.send({"action": "ping"})
            assert reader.recv() == {"type": "pong"}
            stalled_id, reader_id = _id_of(gw, stalled), _id_of(gw, reader.ws)
            payload = json.dumps({"type": "filler", "text": "x" * 100_000}).encode()
            for _ in range(1000):  # ~100 MB at most; the kernel takes a few MB first
                try:
                    api.post_to_connection(ConnectionId=stalled_id, Data=payload)
                except api.exceptions.LimitExceededException as exc:
                    assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 429
                    break
            else:
                pytest.fail("the gateway never refused a post to a client that stopped reading")
            # Others are not held up by it.
            api.post_to_connection(ConnectionId=reader_id, Data=b'{"type": "hi"}')
            assert reader.recv_type("hi")
            # Once the client reads again, posts to it go through again.
            for _ in range(5000):
                try:
                    stalled.recv(timeout=10)
                except TimeoutError:
                    break
            api.post_to_connection(ConnectionId=stalled_id, Data=b'{"type": "again"}')
            assert json.loads(stalled.recv(timeout=10)) == {"type": "again"}
        finally:
            stalled.close()
            reader.close()


def _id_of(gw: GatewayThread, ws: Any) -> str:
    """The connection id of a client socket, as the gateway knows it (by its port)."""
    port = ws.socket.getsockname()[1]
    for cid, sock in list(gw.gateway.stage.sockets.items()):
        peer = sock.transport.get_extra_info("peername") if sock.transport else None
        if peer and peer[1] == port:
            return cid
    raise AssertionError("no such connection")
