"""Fixtures for the local gateway's tests: gateways on free ports and a small client.

Gateways run in a thread of the test process (``local_gateway.testing.GatewayThread``)
unless a test is about the command itself. The functions are either the real ones
(``chat.functions.FUNCTIONS``) or the test-only ones in ``fake_handlers`` (to make a
handler raise, hang, or report what it was given).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from chat.functions import Function, Route, pascal_case
from chat.tables import CONNECTIONS, MESSAGES
from local_gateway.settings import REPO_ROOT, GatewaySettings
from local_gateway.testing import GatewayThread

FAKE = "tests.gateway.fake_handlers."


def fake_route(key: str, handler: str, *, tables: bool = True) -> Function:
    return Function(
        name=pascal_case(key),
        handler=FAKE + handler,
        trigger=Route(key),
        description=f"test function {handler}",
        tables={CONNECTIONS: "read_write", MESSAGES: "read_write"} if tables else {},
        posts_to_connections=True,
    )


FAKE_FUNCTIONS = (
    fake_route("$connect", "connect"),
    fake_route("$disconnect", "disconnect"),
    fake_route("$default", "default"),
    fake_route("echo", "echo"),
    # Touches no table: its environment must not name any.
    fake_route("echo_bare", "echo", tables=False),
    fake_route("boom", "boom"),
    fake_route("slow", "slow"),
    fake_route("manage", "manage"),
    fake_route("store", "store"),
    fake_route("record", "get_record"),
)


def fake_settings(**overrides: Any) -> GatewaySettings:
    base: dict[str, Any] = {
        "port": 0,
        "state_dir": None,
        "handler_timeout_s": 1.5,
        "extra_sys_path": (str(REPO_ROOT),),
    }
    base.update(overrides)
    return GatewaySettings(**base)


def fake_gateway(**overrides: Any) -> GatewayThread:
    ids = overrides.pop("connection_ids", None)
    kwargs: dict[str, Any] = {"functions": FAKE_FUNCTIONS}
    if ids is not None:
        kwargs["connection_ids"] = ids
    return GatewayThread(fake_settings(**overrides), **kwargs)


@pytest.fixture(scope="module")
def fake_gw() -> Iterator[GatewayThread]:
    with fake_gateway() as gw:
        yield gw


@pytest.fixture(scope="module")
def chat_gw() -> Iterator[GatewayThread]:
    """The real functions (chat.functions.FUNCTIONS) behind a gateway, no state file."""
    with GatewayThread(GatewaySettings(port=0, state_dir=None)) as gw:
        yield gw


class Client:
    """A WebSocket client speaking JSON, with patient, bounded receives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.skipped: list[dict[str, Any]] = []

    def send(self, frame: dict[str, Any] | str) -> None:
        self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    def send_refused(self, message: str | bytes | list[str]) -> None:
        """Send a message the gateway refuses with a close. The gateway closes as soon as
        what it has read breaks a limit, which can be before this client's send returns:
        the send then raises, and the close code (``wait_closed``) is what tests check."""
        with contextlib.suppress(ConnectionClosed):
            self.ws.send(message)

    def recv(self, timeout: float = 10) -> dict[str, Any]:
        return json.loads(self.ws.recv(timeout=timeout))

    def recv_until(self, predicate: Callable[[dict[str, Any]], bool],
                   timeout: float = 10) -> dict[str, Any]:
        """The next event matching ``predicate``; others are kept in ``skipped``."""
        deadline = time.monotonic() + timeout
        while True:
            event = self.recv(timeout=max(0.01, deadline - time.monotonic()))
            if predicate(event):
                return event
            self.skipped.append(event)

    def recv_type(self, type_: str, timeout: float = 10) -> dict[str, Any]:
        return self.recv_until(lambda e: e.get("type") == type_, timeout)

    def request(self, frame: dict[str, Any] | str, type_: str) -> dict[str, Any]:
        self.send(frame)
        return self.recv_type(type_)

    def assert_no_events(self) -> None:
        """Nothing is waiting for this client: a ``ping`` round trip (answered by the
        gateway itself, no function) brings back the pong and nothing before it."""
        self.send({"action": "ping"})
        event = self.recv()
        assert event == {"type": "pong"}, f"unexpected event: {event}"

    def wait_closed(self, timeout: float = 10) -> tuple[int | None, str]:
        """Read until the server closes; returns (close code, reason)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self.ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        except ConnectionClosed:
            pass
        rcvd = self.ws.protocol.close_rcvd
        return (rcvd.code, rcvd.reason) if rcvd else (None, "")

    def close(self) -> None:
        self.ws.close()

    def close_without_status(self) -> None:
        """Send a close frame with no status code (websockets' public close() always
        sends one), as some browsers and tools do."""
        with contextlib.suppress(ConnectionClosed), self.ws.send_context():
            self.ws.protocol.send_close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_client(url: str, query: str = "", **kwargs: Any) -> Client:
    full = f"{url}?{query}" if query else url
    return Client(connect(full, open_timeout=15, close_timeout=2, legacy=True, **kwargs))


def run_async(coro: Any) -> Any:
    """Run a coroutine to the end on an event loop of its own thread.

    ``make test`` runs every test in one session, and the browser tests' Playwright (sync
    API) keeps an event loop running in the main thread, where ``asyncio.run`` refuses.
    """
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="own-loop") as pool:
        return pool.submit(asyncio.run, coro).result()


def unique_room() -> str:
    return "r-" + uuid.uuid4().hex[:10]


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"
