"""API Gateway's limits, each a setting with the real value as default."""

from __future__ import annotations

import json
import time

import pytest

from local_gateway.settings import GatewaySettings
from tests.gateway.conftest import Client, fake_gateway, open_client

pytestmark = pytest.mark.timeout(90)

KB = 1024


def test_defaults_are_api_gateways_values():
    s = GatewaySettings()
    assert (s.max_frame_bytes, s.max_message_bytes) == (32 * KB, 128 * KB)
    assert (s.idle_timeout_s, s.max_connection_s) == (600, 7200)
    assert (s.host, s.port) == ("127.0.0.1", 3000)


def padded(size: int) -> str:
    """A JSON frame of exactly ``size`` bytes routed to ``record`` (which answers small)."""
    head = '{"action": "record", "key": "none", "pad": "'
    return head + "x" * (size - len(head) - 2) + '"}'


def test_a_frame_of_32_kb_passes(fake_gw):
    with open_client(fake_gw.websocket_url, max_size=None) as client:
        frame = padded(32 * KB)
        assert len(frame.encode()) == 32 * KB
        assert client.request(frame, "record")["value"] is None


def test_a_frame_over_32_kb_closes_with_1009(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        client.send_refused(padded(32 * KB + 1))
        assert client.wait_closed()[0] == 1009


def test_a_fragmented_message_up_to_128_kb_passes(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        frame = padded(128 * KB)
        client.ws.send([frame[i:i + 32 * KB] for i in range(0, len(frame), 32 * KB)])
        assert client.recv()["type"] == "record"


def test_a_fragmented_message_over_128_kb_closes_with_1009(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        frame = padded(128 * KB + 1)
        client.send_refused([frame[i:i + 30 * KB] for i in range(0, len(frame), 30 * KB)])
        assert client.wait_closed()[0] == 1009


def test_a_binary_frame_closes_with_1003(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        client.send_refused(b'{"action": "echo"}')
        assert client.wait_closed()[0] == 1003


def disconnect_record(observer: Client, connection_id: str) -> dict:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        value = observer.request({"action": "record", "key": f"disconnect#{connection_id}"},
                                 "record")["value"]
        if value:
            return json.loads(value)["requestContext"]
        time.sleep(0.05)
    raise AssertionError("no $disconnect")


def test_idle_timeout_counts_data_frames_only():
    # Times are measured from the frames themselves, with margins for a slow machine:
    # a 2 s timeout, data frames every ~0.2 s, control pings for up to 30 s.
    with fake_gateway(idle_timeout_s=2.0) as gw:
        # Data frames (even the MOCK ping) keep a connection open past the timeout...
        with open_client(gw.websocket_url) as busy:
            started = time.monotonic()
            while time.monotonic() - started < 3.0:
                busy.send({"action": "ping"})
                assert busy.recv() == {"type": "pong"}
                time.sleep(0.2)
        # ... control-frame pings do not.
        idle = open_client(gw.websocket_url, ping_interval=None)
        last_data_frame = time.monotonic()
        connection_id = idle.request({"action": "echo"}, "echo")["event"]["requestContext"][
            "connectionId"]
        closed = False
        while time.monotonic() - last_data_frame < 30:
            try:
                idle.ws.ping().wait(1)
            except Exception:
                closed = True
                break
            time.sleep(0.1)
        code, _ = idle.wait_closed()
        assert closed and code == 1001  # closed while still pinging
        # Not before the timeout, counted from the last data frame (sent before this).
        assert time.monotonic() - last_data_frame >= 2.0
        with open_client(gw.websocket_url) as observer:
            ctx = disconnect_record(observer, connection_id)
        assert ctx["disconnectStatusCode"] == 1001


def test_connections_are_closed_at_the_maximum_age_even_when_busy():
    with fake_gateway(max_connection_s=1.0) as gw, open_client(gw.websocket_url) as client:
        # The age counts from the handshake (connectedAt), not from when this client
        # got round to looking: a slow handshake must not make a correct close look early.
        connected_at = client.request({"action": "echo"}, "echo")["event"]["requestContext"][
            "connectedAt"]
        closed_at_ms = None
        for _ in range(300):  # ~30 s of frames at most: the close must come first
            try:
                client.send({"action": "ping"})
                client.recv(timeout=5)
            except Exception:
                closed_at_ms = time.time() * 1000
                break
            time.sleep(0.1)
        assert closed_at_ms is not None, "still open while busy, long past its maximum age"
        assert closed_at_ms - connected_at >= 1000
        assert client.wait_closed()[0] == 1001
