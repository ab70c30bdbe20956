"""The local gateway under load: every message delivered once, to its room only.

The short seed load here runs through ``python -m local_gateway`` exactly as
``bench/e2e.py`` and ``make soak`` do (``bench.e2e.run_load``) and asserts counts only:
how fast it went is the bench's business, never a test's. Also here: the recovery after
a crash must not starve the clients that come back. (What the moto patches must not
change is in ``test_moto_queries.py``.)
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from bench.e2e import load_local_gateway
from local_gateway.testing import GatewayProcess
from tests.gateway.conftest import open_client, run_async, unique_room

pytestmark = pytest.mark.timeout(300)


def test_a_short_seed_load_delivers_every_message_once_and_only_to_its_room():
    # ~50 clients in two rooms, each sending every 2.5 s for a few seconds: the seed's
    # load shape (bench/e2e.py --clients 50 --rate-per-client 0.4), shortened.
    result, output = run_async(load_local_gateway(
        clients=50, rooms=2, rate_per_client=0.4, seconds=4, grace_s=180))
    summary = result.summary()
    assert result.sent >= 50, summary
    assert result.expected == result.sent * 25, summary
    assert (result.lost, result.duplicates, result.cross_room) == (0, 0, 0), (summary, output)
    assert (result.throttled, result.errors) == (0, {}), summary
    assert "TIMEOUT" not in output and "Traceback" not in output, output


# -- recovery after a crash ---------------------------------------------------------------


def _wait_for(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def _open_in_state(state_dir: Path) -> int:
    try:
        document = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return 0
    return len(document.get("open_connections", []))


async def _join_many(url: str, room: str, count: int) -> list[Any]:
    import websockets

    sockets = []
    for n in range(count):
        query = urlencode({"username": f"crash{n}", "room": room})
        sockets.append(await websockets.connect(f"{url}?{query}", open_timeout=60))
    return sockets


def test_a_restart_after_a_crash_under_load_recovers_in_the_background(tmp_path):
    """The next start runs every orphan's $disconnect, one at a time, while a new client
    is served from the first frame: no invocation times out, no frame gets internal."""
    state_dir = tmp_path / "state"
    room, orphans = unique_room(), 40
    first = GatewayProcess(state_dir=state_dir, args=["--save-interval", "0.5"]).start()

    async def crash_with_connections_open() -> None:
        sockets = await _join_many(first.websocket_url, room, orphans)
        await asyncio.to_thread(
            _wait_for, lambda: _open_in_state(state_dir) >= orphans, "the state file to list them")
        first.stop(signal.SIGKILL)
        for ws in sockets:
            ws.transport.abort()

    try:
        run_async(crash_with_connections_open())
    finally:
        first.stop(signal.SIGKILL)

    with GatewayProcess(state_dir=state_dir) as second:
        assert f"{orphans} connection(s) were open" in second.output
        with open_client(second.websocket_url, urlencode({"username": "late", "room": room})) as c:
            for n in range(5):
                text = f"still here {n} {uuid.uuid4().hex[:6]}"
                event = c.request({"action": "new_message", "text": text}, "message")
                assert event["text"] == text, event
            assert not [e for e in c.skipped if e.get("type") == "error"], c.skipped

            def recovered() -> bool:
                return c.request({"action": "who"}, "who")["users"] == ["late"]

            _wait_for(recovered, "every orphan's $disconnect")
        _wait_for(lambda: "Ran $disconnect for" in second.output, "the recovery's last line")
        assert f"Ran $disconnect for {orphans} of {orphans}" in second.output
        assert "TIMEOUT" not in second.output, second.output
