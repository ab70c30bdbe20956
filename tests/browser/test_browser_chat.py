"""The chat page in a real browser against the local gateway: what a user sees and does.

Each test uses a fresh room on a shared gateway; the restart test gets its own gateway.
Assertions wait on conditions (Playwright's ``expect``), never on sleeps.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from contextlib import ExitStack
from itertools import pairwise
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from websockets.sync.client import ClientConnection, connect

from chat.protocol import page_config
from tests.browser.conftest import IN_CI, Gateway, dead_port, room_name

try:
    from playwright.sync_api import Page, expect
except ImportError:  # pragma: no cover - the [dev] extra installs it
    if IN_CI:
        raise
    pytest.skip("playwright is not installed: pip install -e '.[dev]'", allow_module_level=True)

PHONE = {"width": 375, "height": 740}


# ---------------------------------------------------------------- helpers


def join(page: Page, gateway: Gateway, username: str, room: str, *, query: str = "") -> None:
    """Open the page, fill the join form, and wait until the room is live."""
    page.goto(gateway.url + query)
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=room]").fill(room)
    page.locator("#join-form button[type=submit]").click()
    expect_online(page)


def expect_online(page: Page) -> None:
    expect(page.get_by_role("status")).to_have_text("Online")
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


def wait_until(page: Page, predicate: Callable[[], bool], timeout_s: float = 20) -> None:
    """Poll a Python-side condition, letting Playwright deliver its events meanwhile."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        page.wait_for_timeout(50)


class Proxy:
    """The page's WebSockets routed through to the gateway, frame by frame.

    ``intercept(n, frame, ws)`` sees each frame the page sends on its ``n``-th socket
    (from 0) and returns True when it answered or dropped it itself; everything else goes
    on to the gateway. ``routes`` and ``opened`` (monotonic times) follow the sockets in
    the order the page opened them.
    """

    def __init__(self, page: Page, intercept: Callable[[int, dict, Any], bool]) -> None:
        self.routes: list[Any] = []
        self.opened: list[float] = []
        self._intercept = intercept
        page.route_web_socket(re.compile(r"/local"), self._on_socket)

    def _on_socket(self, ws: Any) -> None:
        server = ws.connect_to_server()
        n = len(self.routes)
        self.routes.append(ws)
        self.opened.append(time.monotonic())

        def from_page(message: str) -> None:
            if not self._intercept(n, json.loads(message), ws):
                server.send(message)

        ws.on_message(from_page)


class WsClient:
    """Another chat client speaking the raw protocol (what wscat would do)."""

    def __init__(self, gateway: Gateway, username: str, room: str) -> None:
        query = urlencode({"username": username, "room": room}, quote_via=quote)
        self.username = username
        self.url = f"{gateway.ws_url}?{query}"
        self._stack = ExitStack()

    def __enter__(self) -> WsClient:
        self.ws: ClientConnection = self._stack.enter_context(connect(self.url, open_timeout=20))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def send(self, frame: dict) -> None:
        self.ws.send(json.dumps(frame))

    def recv_until(self, predicate: Callable[[dict], bool], timeout: float = 20) -> dict:
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


# ---------------------------------------------------------------- tests


def test_two_users_exchange_messages_and_another_room_sees_none(
    gateway: Gateway, new_page, room: str, artifacts
) -> None:
    alice = new_page()
    bob = new_page(**PHONE)
    carol = new_page()
    other_room = room_name("elsewhere")
    join(alice, gateway, "alice", room)
    join(bob, gateway, "bob", room)
    join(carol, gateway, "carol", other_room)

    send(alice, "hello bob")
    expect(message_with(bob, "hello bob")).to_have_count(1)
    send(bob, "hi alice, all good?")
    expect(message_with(alice, "hi alice, all good?")).to_have_count(1)
    # A multi-line message (Shift+Enter) with a link far wider than a phone, as text.
    url = "https://example.com/" + "very-long-path-segment/" * 6
    box = alice.locator("textarea[name=text]")
    box.fill("the notes are here:")
    box.press("Shift+Enter")
    box.press_sequentially(url, delay=0)
    long_text = f"the notes are here:\n{url}"
    expect(box).to_have_value(long_text)
    box.press("Enter")
    expect(box).to_have_value("")
    expect(messages(bob).filter(has_text="the notes are here:")).to_have_count(1)
    expect(log(bob).locator("a")).to_have_count(0)
    assert texts(bob)[-1] == long_text

    # Both sides hold the same messages, in the same order, each once, confirmed by id.
    for page in (alice, bob):
        expect(messages(page)).to_have_count(3)
        assert texts(page) == ["hello bob", "hi alice, all good?", long_text]
    assert ids(alice) == ids(bob)
    assert ids(alice) == sorted(ids(alice))
    # Own messages are distinguished; a second message of one author is grouped.
    expect(message_with(alice, "hello bob")).to_have_class(re.compile(r"\bown\b"))
    expect(message_with(bob, "hello bob")).not_to_have_class(re.compile(r"\bown\b"))
    expect(message_with(bob, "hello bob").locator(".author")).to_have_text("alice")
    expect(message_with(bob, "hello bob").locator("time")).to_have_attribute(
        "datetime", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    )
    # Online lists: each room sees its own people.
    expect(alice.get_by_label("Online", exact=True)).to_contain_text("bob")
    expect(bob.get_by_label("Online", exact=True)).to_contain_text("alice")
    expect(carol.get_by_label("Online", exact=True).locator("li")).to_have_count(1)

    # Carol's room: she saw nothing of theirs, and her message does not reach them. Bob
    # speaks after her message is confirmed, so once alice has his line she would already
    # have carol's if it leaked.
    send(carol, "anyone here?")
    expect(message_with(carol, "anyone here?")).to_have_count(1)
    send(bob, "barrier")
    expect(message_with(alice, "barrier")).to_have_count(1)
    assert texts(carol) == ["anyone here?"]
    for page in (alice, bob):
        expect(log(page)).not_to_contain_text("anyone here?")

    # Readable at 375 px: nothing wider than the screen, the composer in view.
    expect(message_with(bob, "barrier")).to_be_in_viewport()
    assert bob.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    expect(bob.locator("textarea[name=text]")).to_be_in_viewport()
    expect(bob.locator("#composer button[type=submit]")).to_be_in_viewport()

    alice.screenshot(path=artifacts / "desktop.png")
    bob.screenshot(path=artifacts / "phone-375.png")


def test_join_form_validates_and_works_from_the_keyboard(gateway: Gateway, new_page, room) -> None:
    page = new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(gateway.url + f"?username=jos%C3%A9&room={room}")
    name, room_input = page.locator("input[name=username]"), page.locator("input[name=room]")
    # Prefilled from the page URL.
    expect(name).to_have_value("josé")
    expect(room_input).to_have_value(room)

    # Names and rooms $connect would refuse are explained and never tried.
    name.fill("<b>")
    page.locator("#join-form button[type=submit]").click()
    expect(name).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#username-hint")).to_contain_text("letters, digits")
    expect(name).to_be_focused()
    name.fill("a" * 33)
    expect(page.locator("#username-hint")).to_contain_text("at most 32")
    name.fill("ana_1")
    room_input.fill("No Spaces!")
    page.locator("#join-form button[type=submit]").click()
    expect(room_input).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#room-hint")).to_contain_text("lowercase")
    expect(page.locator("#chat-view")).to_be_hidden()
    assert sockets == []

    # Keyboard only: fix the room, Enter joins, focus lands in the composer, Enter sends.
    room_input.fill(room)
    room_input.press("Enter")
    expect_online(page)
    assert len(sockets) == 1
    assert sockets[0].endswith(f"?username=ana_1&room={room}")
    expect(page.locator("textarea[name=text]")).to_be_focused()
    page.keyboard.type("typed, never clicked")
    page.keyboard.press("Enter")
    expect(message_with(page, "typed, never clicked")).to_have_count(1)


def test_join_explains_a_refused_or_unreachable_server(gateway: Gateway, new_page, room) -> None:
    # A browser cannot see the handshake's 400; a first connection that never opens is
    # reported on the join form (here: config.json points at a port nobody listens on).
    page = new_page()
    with dead_port() as port:
        dead = f"ws://127.0.0.1:{port}/local"
        page.route("**/config.json", lambda route: route.fulfill(json=page_config(dead)))
        page.goto(gateway.url)
        page.locator("input[name=username]").fill("gina")
        page.locator("input[name=room]").fill(room)
        page.locator("#join-form button[type=submit]").click()
        expect(page.get_by_role("alert").filter(has_text="Could not join")).to_contain_text(
            f"#{room} as “gina”"
        )
    expect(page.locator("#join-form")).to_be_visible()
    expect(page.locator("input[name=username]")).to_be_focused()


def test_reload_shows_history_and_load_older_pages_back_in_order(
    gateway: Gateway, new_page, room: str
) -> None:
    # 56 messages: more than one 50-message page. Several connections share the work
    # because the server allows 10 messages per 10 s per connection. They stay open until
    # the end: on the local gateway (moto underneath) a burst of $disconnects while the
    # page's $connect runs has been seen to lose the new connection's record.
    seeders = ExitStack()
    senders = [seeders.enter_context(WsClient(gateway, f"seed{i}", room)) for i in range(8)]
    for n in range(1, 57):
        senders[n % 8].say(f"m{n:02d}")

    page = new_page(height=600)
    join(page, gateway, "dana", room)
    # The newest page: m07..m56, oldest first, scrolled to the newest.
    expect(messages(page)).to_have_count(50)
    assert texts(page) == [f"m{n:02d}" for n in range(7, 57)]
    expect(message_with(page, "m56")).to_be_in_viewport()
    send(page, "dana was here")
    expect(message_with(page, "dana was here")).to_have_count(1)

    # Load older keeps what the reader is looking at in place.
    page.locator("#scroller").evaluate("el => el.scrollTop = 0")
    anchor = message_with(page, "m07")
    top_before = anchor.bounding_box()["y"]
    page.get_by_role("button", name="Load older messages").click()
    expect(messages(page)).to_have_count(57)
    assert texts(page) == [f"m{n:02d}" for n in range(1, 57)] + ["dana was here"]
    assert abs(anchor.bounding_box()["y"] - top_before) < 4
    expect(page.get_by_text(f"This is the start of #{room}.")).to_be_visible()
    expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()

    # Reload: the form remembers the name (localStorage) and the room (address bar);
    # joining again shows the history, including what this page sent.
    page.reload()
    expect(page.locator("input[name=username]")).to_have_value("dana")
    expect(page.locator("input[name=room]")).to_have_value(room)
    page.locator("#join-form button[type=submit]").click()
    expect_online(page)
    expect(messages(page)).to_have_count(50)
    assert texts(page) == [f"m{n:02d}" for n in range(8, 57)] + ["dana was here"]
    expect(message_with(page, "dana was here")).to_have_class(re.compile(r"\bown\b"))
    seeders.close()


HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)> & &amp; <b>bold</b> https://example.com/?a=1&b=<i>',
]


def test_hostile_text_is_shown_literally_and_runs_nothing(
    gateway: Gateway, new_page, room: str
) -> None:
    alice, bob = new_page(), new_page()
    join(alice, gateway, "alice", room)
    join(bob, gateway, "bob", room)
    for text in HOSTILE:
        send(alice, text)
    expect(messages(bob)).to_have_count(len(HOSTILE))
    assert texts(bob) == HOSTILE
    # Live, and again from history after a reload.
    bob.reload()
    bob.locator("#join-form button[type=submit]").click()
    expect_online(bob)
    expect(messages(bob)).to_have_count(len(HOSTILE))
    assert texts(bob) == HOSTILE
    for page in (alice, bob):
        for tag in ("img", "script", "svg", "b", "i", "a"):
            expect(log(page).locator(tag)).to_have_count(0)
        assert page.dialogs == []
    # The policy that would stop an injection anyway: only self and the WebSocket.
    csp = alice.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert re.search(r"connect-src 'self' [^;]*ws://127\.0\.0\.1:\*", csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_typing_indicator_and_online_list_follow_the_room(
    gateway: Gateway, new_page, room: str
) -> None:
    alice = new_page()
    join(alice, gateway, "alice", room)
    online = alice.get_by_label("Online", exact=True)
    expect(online.locator("li")).to_have_text([re.compile("^alice")])

    bob = new_page()
    typing_frames: list[float] = []

    def watch(ws) -> None:
        ws.on("framesent", lambda payload: typing_frames.append(time.monotonic())
              if '"typing"' in str(payload) else None)

    bob.on("websocket", watch)
    join(bob, gateway, "bob", room)
    expect(online.locator("li")).to_have_text([re.compile("^alice"), re.compile("^bob")])
    expect(bob.get_by_label("Online", exact=True).locator("li")).to_have_count(2)

    # Bob types for a while: alice sees it, and bob sent at most one typing frame per 3 s.
    typing = alice.locator("#typing")
    box = bob.locator("textarea[name=text]")
    started = time.monotonic()
    box.press_sequentially("thinking about it", delay=60)
    expect(typing).to_have_text("bob is typing…")
    elapsed = time.monotonic() - started
    assert 1 <= len(typing_frames) <= 1 + int(elapsed // 3)
    # It disappears on its own about 5 s after the last typing event...
    expect(typing).to_have_text("", timeout=15_000)
    # ...and at once when bob's message arrives.
    box.press_sequentially("!", delay=0)
    expect(typing).to_have_text("bob is typing…")
    box.press("Enter")
    expect(message_with(alice, "thinking about it!")).to_have_count(1)
    expect(typing).to_have_text("")

    # Bob leaves: alice's list follows.
    bob.context.close()
    expect(online.locator("li")).to_have_text([re.compile("^alice")])


def test_rejected_send_is_marked_failed_and_retry_reuses_the_client_id(
    gateway: Gateway, new_page, room: str
) -> None:
    # The server's own limit (10 per 10 s per connection) is tested server-side; how many
    # sends a slow machine fits into its window is not something to rely on here. So the
    # route answers the first attempt of one message with `rate_limited`, as the server would.
    page = new_page()
    sent: list[dict] = []
    refused: list[str] = []

    def refuse_once(_n: int, frame: dict, ws: Any) -> bool:
        sent.append(frame)
        if frame.get("text") != "burst 03" or refused:
            return False
        refused.append(frame["client_id"])
        ws.send(json.dumps({
            "type": "error", "code": "rate_limited", "client_id": frame["client_id"],
            "message": "more than 10 messages in 10 seconds; slow down",
        }))
        return True

    Proxy(page, refuse_once)
    join(page, gateway, "eve", room)
    for n in range(1, 6):
        send(page, f"burst {n:02d}")
    expect(log(page).locator(".msg.pending")).to_have_count(0)
    failed = log(page).locator(".msg.failed")
    expect(failed).to_have_count(1)
    expect(failed.locator(".body")).to_have_text("burst 03")
    expect(failed.locator(".state-text")).to_have_text("Not sent: sending too fast, wait a moment")
    expect(log(page).locator(".msg.failed[data-id]")).to_have_count(0)
    # One message in flight at a time: the others were stored in the order they were typed,
    # and the refusal did not hold up the ones after it.
    expect(messages(page)).to_have_count(4)
    assert texts(page) == ["burst 01", "burst 02", "burst 04", "burst 05"]
    assert ids(page) == sorted(ids(page))

    # Retry sends the same client_id; this time it goes through, once, after the others.
    failed.get_by_role("button", name="Retry").click()
    expect(log(page).locator(".msg.failed, .msg.pending")).to_have_count(0)
    expect(message_with(page, "burst 03")).to_have_count(1)
    expect(message_with(page, "burst 03")).to_have_attribute("data-id", re.compile("."))
    expect(messages(page)).to_have_count(5)
    assert texts(page) == ["burst 01", "burst 02", "burst 04", "burst 05", "burst 03"]
    assert ids(page) == sorted(ids(page))
    attempts = [f for f in sent if f.get("action") == "new_message" and f["text"] == "burst 03"]
    assert len(attempts) == 2
    assert {f["client_id"] for f in attempts} == set(refused)
    # Typed order is also the order the frames left in, apart from the retry.
    order = [f["text"] for f in sent if f.get("action") == "new_message"]
    assert order == ["burst 01", "burst 02", "burst 03", "burst 04", "burst 05", "burst 03"]


def test_gateway_restart_reconnects_and_catches_up_without_duplicates(
    gateway_factory, new_page, artifacts
) -> None:
    gw = gateway_factory()
    room = room_name("restart")
    page = new_page()
    received: list[dict] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: received.append(json.loads(payload))))
    join(page, gw, "alice", room)
    with WsClient(gw, "bob", room) as other:
        other.say("before the restart")
    send(page, "mine, before")
    expect(messages(page)).to_have_count(2)
    before_ids = ids(page)

    gw.stop()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Reconnecting")
    expect(status).to_have_attribute("data-state", "reconnecting")
    # Hold the page off the network while the gateway comes back and bob speaks, so his
    # message can only reach the page through the catch-up, not as a live event.
    page.context.set_offline(True)
    expect(status).to_have_text("Offline")
    gw.start()
    with WsClient(gw, "bob", room) as other:
        missed = other.say("sent while you were away")
        # Typed while offline: shown at once, sent when the connection is back.
        send(page, "queued while offline")
        expect(log(page).locator(".msg.pending")).to_contain_text("queued while offline")
        page.screenshot(path=artifacts / "offline.png")
        page.context.set_offline(False)
        expect(status).to_have_text("Online")
        expect(message_with(page, "sent while you were away")).to_have_count(1)
        expect(message_with(page, "queued while offline")).to_have_count(1)
        other.recv_until(
            lambda e: e.get("type") == "message" and e["text"] == "queued while offline"
        )
    assert message_with(page, "sent while you were away").get_attribute("data-id") == missed["id"]
    # It came in a history page (the catch-up), never as a live event.
    assert not [e for e in received if e.get("type") == "message" and e["id"] == missed["id"]]
    assert [e for e in received if e.get("type") == "history"
            and missed["id"] in [m["id"] for m in e["messages"]]]
    final_ids = ids(page)
    assert len(final_ids) == len(set(final_ids)) == 4
    assert final_ids[:2] == before_ids
    expected = [
        "before the restart", "mine, before", "sent while you were away", "queued while offline"
    ]
    assert texts(page) == expected

    # A plain restart, nobody holding the page back: backoff finds the gateway again and
    # the catch-up adds nothing twice.
    gw.stop()
    expect(status).to_contain_text("Reconnecting")
    gw.start()
    expect(status).to_have_text("Online", timeout=60_000)
    send(page, "back again")
    expect(message_with(page, "back again")).to_have_count(1)
    assert texts(page) == [*expected, "back again"]
    assert ids(page)[:4] == final_ids


def test_server_errors_are_handled_and_pings_keep_the_socket_alive(
    gateway: Gateway, new_page, room: str
) -> None:
    """Frames the real server sends rarely, injected between the page and the gateway."""
    page = new_page()
    page.clock.install()
    sent: list[dict] = []
    failed_once: list[str] = []

    def fail_once(_n: int, frame: dict, ws: Any) -> bool:
        sent.append(frame)
        if frame.get("text") != "please fail" or failed_once:
            return False
        failed_once.append(frame["client_id"])
        ws.send(json.dumps({"type": "error", "code": "internal",
                            "message": "storage is down", "client_id": frame["client_id"]}))
        return True

    proxy = Proxy(page, fail_once)
    join(page, gateway, "hana", room)

    # API Gateway's own failure frame has no type: a notice, and the page carries on.
    proxy.routes[0].send(json.dumps({"message": "Internal server error",
                               "connectionId": "abc=", "requestId": "req-1"}))
    expect(page.locator("#notice")).to_contain_text("Internal server error")
    expect(page.get_by_role("status")).to_have_text("Online")

    # An error for our client_id marks that message failed; Retry resends the same id.
    send(page, "please fail")
    failed = log(page).locator(".msg.failed")
    expect(failed).to_contain_text("Not sent: storage is down")
    failed.get_by_role("button", name="Retry").click()
    expect(message_with(page, "please fail")).to_have_count(1)
    expect(log(page).locator(".msg.failed, .msg.pending")).to_have_count(0)
    attempts = [f for f in sent if f.get("text") == "please fail"]
    assert len(attempts) == 2 and attempts[0]["client_id"] == attempts[1]["client_id"]

    # Idle for 5 minutes: the page has pinged (API Gateway drops sockets idle for 10).
    assert not any(f.get("action") == "ping" for f in sent)
    page.clock.fast_forward("05:00")
    wait_until(page, lambda: any(f.get("action") == "ping" for f in sent))
    expect(page.get_by_role("status")).to_have_text("Online")


def test_catch_up_after_a_long_gap_pages_back_until_the_last_message_seen(
    gateway: Gateway, new_page, room: str
) -> None:
    page = new_page()
    history_requests: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: history_requests.append(
        json.loads(payload)) if '"history"' in str(payload) else None))
    join(page, gateway, "ivan", room)
    with ExitStack() as stack:
        watcher = stack.enter_context(WsClient(gateway, "seed0", room))
        send(page, "the last one I saw")
        expect(message_with(page, "the last one I saw")).to_have_count(1)
        page.context.set_offline(True)
        expect(page.get_by_role("status")).to_have_text("Offline")
        watcher.recv_until(lambda e: e.get("type") == "presence" and e["event"] == "leave")
        history_requests.clear()
        # 70 messages while away: more than one 50-message history page.
        senders = [watcher] + [stack.enter_context(WsClient(gateway, f"seed{i}", room))
                               for i in range(1, 8)]
        for n in range(1, 71):
            senders[n % 8].say(f"gap {n:02d}")
        page.context.set_offline(False)
        expect(page.get_by_role("status")).to_have_text("Online")
        expect(messages(page)).to_have_count(71)
    assert texts(page) == ["the last one I saw"] + [f"gap {n:02d}" for n in range(1, 71)]
    assert len(set(ids(page))) == 71
    # Newest page first, then one page further back with its cursor, then it stopped.
    assert [("before" in r) for r in history_requests] == [False, True]


def test_a_connection_that_cannot_load_the_room_is_replaced(
    gateway: Gateway, new_page, room: str
) -> None:
    # What a client sees when the server lost its record of the connection: `internal`
    # for every frame. The first socket gets that for its history request.
    page = new_page()

    def fail_first_history(n: int, frame: dict, ws: Any) -> bool:
        if n != 0 or frame.get("action") != "history":
            return False
        ws.send(json.dumps({"type": "error", "code": "internal",
                            "message": "this connection is not registered; reconnect"}))
        return True

    sockets = Proxy(page, fail_first_history).routes
    with WsClient(gateway, "lee", room) as other:
        other.say("already here")
        join(page, gateway, "kim", room)
        expect(message_with(page, "already here")).to_have_count(1)
        assert len(sockets) == 2
        send(page, "hello from the second socket")
        other.recv_until(lambda e: e.get("text") == "hello from the second socket")


def test_a_room_that_never_loads_backs_off_then_waits_for_the_user(
    gateway: Gateway, new_page, room: str
) -> None:
    # Every socket opens fine, but every `history` fails with `internal`: the page replaces
    # the socket, yet each replacement must wait longer than the last, and after a few it
    # stops and offers "Retry now" instead of reconnecting about once a second forever.
    page = new_page()
    failing = [True]

    def fail_history(_n: int, frame: dict, ws: Any) -> bool:
        if not failing[0] or frame.get("action") != "history":
            return False
        ws.send(json.dumps({"type": "error", "code": "internal", "message": "storage is down"}))
        return True

    opened = Proxy(page, fail_history).opened
    page.goto(gateway.url)
    page.locator("input[name=username]").fill("olga")
    page.locator("input[name=room]").fill(room)
    page.locator("#join-form button[type=submit]").click()
    status = page.get_by_role("status")
    expect(status).to_have_text("Offline", timeout=60_000)
    expect(page.locator("#notice")).to_contain_text("cannot be loaded")
    retry_now = page.get_by_role("button", name="Retry now")
    expect(retry_now).to_be_visible()
    # Four sockets (the page's cap), each replacement after a longer wait: the backoff's
    # floor is 0.5 s, 1 s, 2 s (equal jitter on 1, 2, 4 s). The times are taken here, as
    # the route reports each socket, so allow some slack for delivery noise.
    assert len(opened) == 4, opened
    gaps = [b - a for a, b in pairwise(opened)]
    for n, gap in enumerate(gaps):
        assert gap >= 0.5 * 2**n - 0.3, gaps
    assert opened[-1] - opened[0] >= 3.5 - 0.3, gaps
    # Given up means given up: no timer brings another socket.
    page.wait_for_timeout(1500)
    assert len(opened) == 4

    # The user retries once the server is well again: the room loads.
    failing[0] = False
    retry_now.click()
    expect_online(page)
    assert len(opened) == 5


def test_a_reconnect_before_the_first_history_page_still_loads_it(
    gateway: Gateway, new_page, room: str
) -> None:
    # The first socket's history request goes unanswered; a live message arrives meanwhile,
    # then the socket drops. The new socket must ask for the newest page (not a catch-up
    # from that live message), or "Load older" and "This is the start" never appear.
    page = new_page()
    # Dropped: the first socket's history request never reaches the gateway.
    sockets = Proxy(page, lambda n, frame, _ws: n == 0 and frame.get("action") == "history").routes
    with WsClient(gateway, "seed0", room) as other:
        other.say("from before you came")
        page.goto(gateway.url)
        page.locator("input[name=username]").fill("pia")
        page.locator("input[name=room]").fill(room)
        page.locator("#join-form button[type=submit]").click()
        expect(page.get_by_role("status")).to_have_text("Online")
        other.recv_until(lambda e: e.get("type") == "presence" and e["event"] == "join")
        other.say("live, while you loaded")
        expect(message_with(page, "live, while you loaded")).to_have_count(1)
        expect(page.locator("#history-start, #load-older").locator("visible=true")).to_have_count(0)
        sockets[0].close()
        wait_until(page, lambda: len(sockets) == 2)
        expect_online(page)
    expect(page.get_by_text(f"This is the start of #{room}.")).to_be_visible()
    assert texts(page) == ["from before you came", "live, while you loaded"]


def test_a_burst_of_leaves_costs_one_who_and_keeps_a_second_tab_listed(
    gateway: Gateway, new_page, room: str
) -> None:
    # Four people leave and so does one of twin's two tabs. The route holds the `leave`
    # events back and hands them to the page together, a burst whatever the machine's speed.
    page = new_page()
    sent: list[dict] = []
    held: list[str] = []
    leaving = 5

    def on_socket(ws) -> None:
        server = ws.connect_to_server()

        def from_page(message) -> None:
            sent.append(json.loads(message))
            server.send(message)

        def from_server(message) -> None:
            event = json.loads(message)
            if event.get("type") == "presence" and event.get("event") == "leave":
                held.append(message)
                if len(held) == leaving:
                    for m in held:
                        ws.send(m)
            else:
                ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)

    page.route_web_socket(re.compile(r"/local"), on_socket)
    online = page.get_by_label("Online", exact=True).locator("li")
    with ExitStack() as stack:
        join(page, gateway, "quin", room)
        twin = stack.enter_context(WsClient(gateway, "twin", room))
        with ExitStack() as goers:
            for name in ("ann", "ben", "cy", "dot"):
                goers.enter_context(WsClient(gateway, name, room))
            goers.enter_context(WsClient(gateway, "twin", room))
            expect(online).to_have_count(6)
            before = len(sent)
        wait_until(page, lambda: len(held) == leaving)
        expect(online).to_have_text([re.compile("^quin"), re.compile("^twin")])
        page.wait_for_timeout(1000)
        whos = [f for f in sent[before:] if f.get("action") == "who"]
        assert 1 <= len(whos) <= 2, whos
        twin.say("still here")
        expect(message_with(page, "still here")).to_have_count(1)
