"""What the browser tests do again and again: join a room, send, read the log, stand
between the page and the gateway, and speak the raw protocol as a second client.

Every wait here is on a condition or an event (Playwright's ``expect``, a frame, a
socket), bounded by ``TIMEOUT_MS``, never a sleep of a guessed length.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from websockets.sync.client import ClientConnection, connect

from tests.browser.conftest import IN_CI, TIMEOUT_MS, Gateway

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the [dev] extra installs it
    if IN_CI:
        raise
    pytest.skip("playwright is not installed: pip install -e '.[dev]'", allow_module_level=True)

PHONE = {"width": 375, "height": 740}
TIMEOUT_S = TIMEOUT_MS / 1000


# ---------------------------------------------------------------- the page


def submit_join(page: Page, gateway: Gateway, username: str, room: str, *, query: str = "") -> None:
    """Open the page and submit the join form, without waiting for the room."""
    page.goto(gateway.url + query)
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=room]").fill(room)
    page.locator("#join-form button[type=submit]").click()


def join(page: Page, gateway: Gateway, username: str, room: str, *, query: str = "") -> None:
    """Open the page, fill the join form, and wait until the room is live."""
    submit_join(page, gateway, username, room, query=query)
    expect_online(page)


def expect_online(page: Page, status: str = "Online") -> None:
    expect(page.get_by_role("status")).to_have_text(status)
    # The first history reply has been rendered once "load older" or "start" is decided.
    expect(page.locator("#history-start, #load-older").locator("visible=true")).to_have_count(1)


def send(page: Page, text: str) -> None:
    box = page.locator("textarea[name=text]")
    box.fill(text)
    box.press("Enter")


def log(page: Page):
    return page.get_by_role("log")


def messages(page: Page):
    """Confirmed messages: each carries the server's id in data-id."""
    return log(page).locator("[data-id]")


def message_with(page: Page, text: str):
    exact = re.compile(f"^{re.escape(text)}$")
    return messages(page).filter(has=page.locator(".body", has_text=exact))


def texts(page: Page) -> list[str]:
    return messages(page).locator(".body").all_text_contents()


def ids(page: Page) -> list[str]:
    return [m.get_attribute("data-id") for m in messages(page).all()]


def wait_until(page: Page, predicate: Callable[[], bool], timeout_s: float = TIMEOUT_S) -> None:
    """Wait for something only the Python side sees (a frame a route recorded).

    Not a sleep: it returns as soon as the condition holds. The short waits in between
    are how the sync API lets Playwright deliver its events meanwhile.
    """
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


# In the page, before its own scripts: the page-clock time at which each WebSocket was
# created. Intervals measured there are the page's own, free of the delivery delays of
# a busy machine (a route hears of a socket when the test process gets round to it).
RECORD_SOCKETS = """(() => {
  const Native = window.WebSocket;
  window.__socketsCreatedAt = [];
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__socketsCreatedAt.push(performance.now() / 1000);
    }
  };
})();"""


def record_sockets(page: Page) -> Callable[[], list[float]]:
    """Record when the page creates each WebSocket; returns a reader (seconds, page clock)."""
    page.add_init_script(RECORD_SOCKETS)
    return lambda: page.evaluate("window.__socketsCreatedAt")


class Proxy:
    """The page's WebSockets routed through to the gateway, frame by frame.

    ``intercept(n, frame, ws)`` sees each frame the page sends on its ``n``-th socket
    (from 0) and returns True when it answered or dropped it itself; everything else goes
    on to the gateway. ``from_server(n, event, ws)`` likewise sees each event the gateway
    sends, and returns True when it held it back or delivered it itself. ``sent`` is every
    frame the page sent, in order; ``routes`` the sockets in the order the page opened them.
    """

    def __init__(
        self,
        page: Page,
        intercept: Callable[[int, dict, Any], bool] | None = None,
        *,
        from_server: Callable[[int, dict, Any], bool] | None = None,
    ) -> None:
        self.routes: list[Any] = []
        self.sent: list[dict] = []
        self._intercept = intercept
        self._from_server = from_server
        page.route_web_socket(re.compile(r"/local"), self._on_socket)

    def _on_socket(self, ws: Any) -> None:
        server = ws.connect_to_server()
        n = len(self.routes)
        self.routes.append(ws)

        def from_page(message: str) -> None:
            frame = json.loads(message)
            self.sent.append(frame)
            if not (self._intercept and self._intercept(n, frame, ws)):
                server.send(message)

        def from_server(message: str) -> None:
            if not self._from_server(n, json.loads(message), ws):
                ws.send(message)

        ws.on_message(from_page)
        if self._from_server:
            server.on_message(from_server)

    def frames(self, action: str) -> list[dict]:
        return [f for f in self.sent if f.get("action") == action]


# ---------------------------------------------------------------- another client


class WsClient:
    """Another chat client speaking the raw protocol (what wscat would do)."""

    def __init__(self, gateway: Gateway, username: str, room: str) -> None:
        query = urlencode({"username": username, "room": room}, quote_via=quote)
        self.username = username
        self.url = f"{gateway.ws_url}?{query}"
        self._stack = ExitStack()

    def __enter__(self) -> WsClient:
        self.ws: ClientConnection = self._stack.enter_context(
            connect(self.url, open_timeout=TIMEOUT_S)
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def send(self, frame: dict) -> None:
        self.ws.send(json.dumps(frame))

    def recv_until(self, predicate: Callable[[dict], bool], timeout: float = TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            event = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if predicate(event):
                return event

    def say(self, text: str, client_id: str | None = None) -> dict:
        frame = {"action": "new_message", "text": text}
        if client_id:
            frame["client_id"] = client_id
        self.send(frame)
        return self.recv_until(
            lambda e: e.get("type") == "message" and e.get("username") == self.username
            and e.get("text") == text
        )


# ---------------------------------------------------------------- signed in (auth: cognito)


def sign_up(page: Page, url: str, name: str, password: str) -> None:
    """Open the page, create an account, confirm it (any code works locally), and land on
    the join form."""
    page.goto(url)
    expect(page.locator("#signin-form")).to_be_visible()
    page.locator("#show-signup").click()
    page.locator("#signup-username").fill(name)
    page.locator("#signup-email").fill(f"{name}@example.com")
    page.locator("#signup-password").fill(password)
    page.locator("#signup-form button[type=submit]").click()
    expect(page.locator("#confirm-form")).to_be_visible()
    page.locator("#confirm-code").fill("000000")
    page.locator("#confirm-form button[type=submit]").click()
    expect(page.locator("#join-view")).to_be_visible()
    expect(page.locator("#username")).to_have_value(name)


def sign_in(page: Page, url: str, name: str, password: str) -> None:
    """Open the page and sign in to an existing account (another tab of the same person)."""
    page.goto(url)
    expect(page.locator("#signin-form")).to_be_visible()
    page.locator("#signin-username").fill(name)
    page.locator("#signin-password").fill(password)
    page.locator("#signin-form button[type=submit]").click()
    expect(page.locator("#join-view")).to_be_visible()
