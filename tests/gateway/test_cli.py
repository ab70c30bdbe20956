"""``python -m local_gateway`` as ``make dev`` and the browser tests run it."""

from __future__ import annotations

import json
import re
import signal
import socket
import time
import urllib.request
from urllib.parse import urlencode

import pytest

from chat.protocol import page_config
from local_gateway.__main__ import settings_from_args
from local_gateway.state import STATE_FILE
from local_gateway.testing import GatewayProcess
from tests.gateway.conftest import open_client, unique_room

pytestmark = pytest.mark.timeout(120)


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.headers.get("Content-Type", ""), answer.read().decode()


def say(gp: GatewayProcess, room: str, text: str) -> dict:
    with open_client(gp.websocket_url, urlencode({"username": "alice", "room": room})) as c:
        return c.request({"action": "new_message", "text": text}, "message")


def history(gp: GatewayProcess, room: str) -> list[str]:
    with open_client(gp.websocket_url, urlencode({"username": "bob", "room": room})) as c:
        return [m["text"] for m in c.request({"action": "history"}, "history")["messages"]]


def test_it_prints_the_urls_and_serves_the_page_and_config(state_dir):
    with GatewayProcess(state_dir=state_dir) as gp:
        port = gp.port
        # How fast it starts is bench/e2e.py's to report ("ready in ... s"), not a test's.
        assert "Local chat gateway ready in" in gp.output
        assert f"Page:       http://127.0.0.1:{port}/\n" in gp.output
        assert f"WebSocket:  ws://127.0.0.1:{port}/local\n" in gp.output
        assert (f"npx wscat -c 'ws://127.0.0.1:{port}/local?username=alice&room=general'"
                in gp.output)
        status, content_type, body = get(f"{gp.http_url}/config.json")
        assert status == 200 and content_type.startswith("application/json")
        assert json.loads(body) == page_config(f"ws://127.0.0.1:{port}/local")
        status, content_type, page = get(f"{gp.http_url}/")
        assert status == 200 and content_type.startswith("text/html")
        assert "<html" in page.lower() or "<!doctype" in page.lower()


def test_sigterm_saves_and_a_restart_on_the_same_port_keeps_the_history(state_dir):
    room = unique_room()
    first = GatewayProcess(state_dir=state_dir).start()
    try:
        say(first, room, "before the restart")
        with open_client(first.websocket_url, "username=carol") as still_open:
            still_open.request({"action": "ping"}, "pong")
            # Exit code 0: it stopped by itself (stop() kills after 15 s, which would not).
            assert first.stop(signal.SIGTERM) == 0, first.output
            assert still_open.wait_closed()[0] == 1001  # "Going away", as on a deploy
    finally:
        first.stop(signal.SIGKILL)
    assert (state_dir / STATE_FILE).exists()
    # Same port at once (SO_REUSEADDR), same state directory.
    second = GatewayProcess(port=first.port, state_dir=state_dir).start()
    try:
        assert second.port == first.port
        assert history(second, room) == ["before the restart"]
        assert "Restored" in second.output
        assert second.stop(signal.SIGINT) == 0, second.output  # Ctrl-C
    finally:
        second.stop(signal.SIGKILL)


def test_a_crash_loses_at_most_the_last_seconds(state_dir):
    room = unique_room()
    path = state_dir / STATE_FILE
    with GatewayProcess(state_dir=state_dir, args=["--save-interval", "0.3"]) as gp:
        ghost = open_client(gp.websocket_url, urlencode({"username": "ghost", "room": room}))
        say(gp, room, "saved while running")
        deadline = time.monotonic() + 10
        while True:  # the periodic save, not a shutdown, must write both
            text = path.read_text() if path.exists() else ""
            # (and alice's $disconnect done: killed between its writes, the function
            # would leave her member item behind, as it would on AWS)
            if ("saved while running" in text and ghost_is_saved(text)
                    and "$disconnect" in gp.output):
                break
            assert time.monotonic() < deadline, gp.output
            time.sleep(0.05)
        gp.stop(signal.SIGKILL)
        ghost.ws.close_socket()
    with GatewayProcess(state_dir=state_dir) as gp:
        assert history(gp, room) == ["saved while running"]
        # ghost's connection died with the gateway: its $disconnect runs on the next
        # start, so it is not listed as online.
        assert "running their $disconnect" in gp.output
        with open_client(gp.websocket_url, urlencode({"username": "dan", "room": room})) as dan:
            deadline = time.monotonic() + 10
            while dan.request({"action": "who"}, "who")["users"] != ["dan"]:
                assert time.monotonic() < deadline, gp.output
                time.sleep(0.1)


def ghost_is_saved(text: str) -> bool:
    try:
        return bool(json.loads(text)["open_connections"])
    except (ValueError, KeyError):
        return False


def test_a_corrupt_state_file_is_refused_with_what_to_do(state_dir):
    # Never half the tables, never a silent fresh start (test_durability.py has more).
    state_dir.mkdir(parents=True)
    (state_dir / STATE_FILE).write_text('{"format": "serverless-chat-local-st')
    gp = GatewayProcess(state_dir=state_dir)
    with pytest.raises(RuntimeError):
        gp.start(timeout=60)
    assert gp.process is not None and gp.process.returncode == 1
    assert "is cut short or corrupt" in gp.output and "Move it aside" in gp.output


def test_a_busy_port_is_a_clear_error_not_a_traceback():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        gp = GatewayProcess(port=port)
        with pytest.raises(RuntimeError):
            gp.start(timeout=20)
        assert gp.process is not None and gp.process.returncode == 1
        assert f"Port {port} on 127.0.0.1 is already in use" in gp.output
        assert "Traceback" not in gp.output


def test_port_defaults_to_the_port_variable_then_3000(monkeypatch):
    monkeypatch.delenv("PORT", raising=False)
    assert settings_from_args([]).port == 3000
    monkeypatch.setenv("PORT", "4567")
    assert settings_from_args([]).port == 4567
    assert settings_from_args(["--port", "0"]).port == 0
    s = settings_from_args(["--idle-timeout", "5", "--max-frame-bytes", "100", "--no-state"])
    assert (s.idle_timeout_s, s.max_frame_bytes, s.state_dir) == (5, 100, None)


def test_one_log_line_per_invocation_and_events_with_verbose():
    invocation = re.compile(
        r"^\d\d:\d\d:\d\d\.\d{3} (?P<route>\S+)\s+(?P<id>[A-Za-z0-9+/]{15}=)\s+"
        r"(?P<status>\S+)\s+(?P<ms>[\d.]+) ms", re.MULTILINE)
    with GatewayProcess(args=["--verbose"]) as gp:
        with open_client(gp.websocket_url, "username=vera") as vera:
            vera.request({"action": "who"}, "who")
            vera.request({"action": "ping"}, "pong")
        deadline = time.monotonic() + 10
        while "$disconnect" not in {m["route"] for m in invocation.finditer(gp.output)}:
            assert time.monotonic() < deadline, gp.output
            time.sleep(0.05)
    lines = {m["route"]: m for m in invocation.finditer(gp.output)}
    assert set(lines) == {"$connect", "who", "ping", "$disconnect"}
    assert lines["who"]["status"] == "200" and lines["ping"]["status"] == "MOCK"
    assert len({m["id"] for m in lines.values()}) == 1
    assert 'event $connect {"headers": ' in gp.output  # --verbose: the events themselves
    assert 'event who {"requestContext": ' in gp.output
