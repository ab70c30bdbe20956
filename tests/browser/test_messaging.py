"""Sending and receiving in a real browser: two people, another room, hostile text, and
how the page handles a refused or failed send and the server's rarer frames."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.browser import helpers as h
from tests.browser.conftest import Gateway, room_name
from tests.browser.helpers import expect


def test_two_users_exchange_messages_and_another_room_sees_none(
    gateway: Gateway, new_page, room: str, artifacts
) -> None:
    alice = new_page()
    bob = new_page(**h.PHONE)
    carol = new_page()
    other_room = room_name("elsewhere")
    h.join(alice, gateway, "alice", room)
    h.join(bob, gateway, "bob", room)
    h.join(carol, gateway, "carol", other_room)

    h.send(alice, "hello bob")
    expect(h.message_with(bob, "hello bob")).to_have_count(1)
    h.send(bob, "hi alice, all good?")
    expect(h.message_with(alice, "hi alice, all good?")).to_have_count(1)
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
    expect(h.messages(bob).filter(has_text="the notes are here:")).to_have_count(1)
    expect(h.log(bob).locator("a")).to_have_count(0)
    assert h.texts(bob)[-1] == long_text

    # Both sides hold the same messages, in the same order, each once, confirmed by id.
    for page in (alice, bob):
        expect(h.messages(page)).to_have_count(3)
        assert h.texts(page) == ["hello bob", "hi alice, all good?", long_text]
    assert h.ids(alice) == h.ids(bob)
    assert h.ids(alice) == sorted(h.ids(alice))
    # Own messages are distinguished; a second message of one author is grouped.
    expect(h.message_with(alice, "hello bob")).to_have_class(re.compile(r"\bown\b"))
    expect(h.message_with(bob, "hello bob")).not_to_have_class(re.compile(r"\bown\b"))
    expect(h.message_with(bob, "hello bob").locator(".author")).to_have_text("alice")
    expect(h.message_with(bob, "hello bob").locator("time")).to_have_attribute(
        "datetime", re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
    )
    # Online lists: each room sees its own people.
    expect(alice.get_by_label("Online", exact=True)).to_contain_text("bob")
    expect(bob.get_by_label("Online", exact=True)).to_contain_text("alice")
    expect(carol.get_by_label("Online", exact=True).locator("li")).to_have_count(1)

    # Carol's room: she saw nothing of theirs, and her message does not reach them. Bob
    # speaks after her message is confirmed, so once alice has his line she would already
    # have carol's if it leaked.
    h.send(carol, "anyone here?")
    expect(h.message_with(carol, "anyone here?")).to_have_count(1)
    h.send(bob, "barrier")
    expect(h.message_with(alice, "barrier")).to_have_count(1)
    assert h.texts(carol) == ["anyone here?"]
    for page in (alice, bob):
        expect(h.log(page)).not_to_contain_text("anyone here?")

    # Readable at 375 px: nothing wider than the screen, the composer in view.
    expect(h.message_with(bob, "barrier")).to_be_in_viewport()
    assert bob.evaluate("document.documentElement.scrollWidth") <= h.PHONE["width"]
    expect(bob.locator("textarea[name=text]")).to_be_in_viewport()
    expect(bob.locator("#composer button[type=submit]")).to_be_in_viewport()

    alice.screenshot(path=artifacts / "desktop.png")
    bob.screenshot(path=artifacts / "phone-375.png")


HOSTILE = [
    "<img src=x onerror=alert(1)>",
    "<script>alert(2)</script>",
    '"><svg onload=alert(3)> & &amp; <b>bold</b> https://example.com/?a=1&b=<i>',
]


def test_hostile_text_is_shown_literally_and_runs_nothing(
    gateway: Gateway, new_page, room: str
) -> None:
    alice, bob = new_page(), new_page()
    h.join(alice, gateway, "alice", room)
    h.join(bob, gateway, "bob", room)
    for text in HOSTILE:
        h.send(alice, text)
    expect(h.messages(bob)).to_have_count(len(HOSTILE))
    assert h.texts(bob) == HOSTILE
    # Live, and again from history after a reload.
    bob.reload()
    bob.locator("#join-form button[type=submit]").click()
    h.expect_online(bob)
    expect(h.messages(bob)).to_have_count(len(HOSTILE))
    assert h.texts(bob) == HOSTILE
    for page in (alice, bob):
        for tag in ("img", "script", "svg", "b", "i", "a"):
            expect(h.log(page).locator(tag)).to_have_count(0)
        assert page.dialogs == []
    # The policy that would stop an injection anyway: only self and the WebSocket.
    csp = alice.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp
    assert re.search(r"connect-src 'self' [^;]*ws://127\.0\.0\.1:\*", csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp


def test_rejected_send_is_marked_failed_and_retry_reuses_the_client_id(
    gateway: Gateway, new_page, room: str
) -> None:
    # The server's own limit (10 per 10 s per connection) is tested server-side; how many
    # sends a slow machine fits into its window is not something to rely on here. So the
    # route answers the first attempt of one message with `rate_limited`, as the server would.
    page = new_page()
    refused: list[str] = []

    def refuse_once(_n: int, frame: dict, ws: Any) -> bool:
        if frame.get("text") != "burst 03" or refused:
            return False
        refused.append(frame["client_id"])
        ws.send(json.dumps({
            "type": "error", "code": "rate_limited", "client_id": frame["client_id"],
            "message": "more than 10 messages in 10 seconds; slow down",
        }))
        return True

    proxy = h.Proxy(page, refuse_once)
    h.join(page, gateway, "eve", room)
    for n in range(1, 6):
        h.send(page, f"burst {n:02d}")
    expect(h.log(page).locator(".msg.pending")).to_have_count(0)
    failed = h.log(page).locator(".msg.failed")
    expect(failed).to_have_count(1)
    expect(failed.locator(".body")).to_have_text("burst 03")
    expect(failed.locator(".state-text")).to_have_text("Not sent: sending too fast, wait a moment")
    expect(h.log(page).locator(".msg.failed[data-id]")).to_have_count(0)
    # One message in flight at a time: the others were stored in the order they were typed,
    # and the refusal did not hold up the ones after it.
    expect(h.messages(page)).to_have_count(4)
    assert h.texts(page) == ["burst 01", "burst 02", "burst 04", "burst 05"]
    assert h.ids(page) == sorted(h.ids(page))

    # Retry sends the same client_id; this time it goes through, once, after the others.
    failed.get_by_role("button", name="Retry").click()
    expect(h.log(page).locator(".msg.failed, .msg.pending")).to_have_count(0)
    expect(h.message_with(page, "burst 03")).to_have_count(1)
    expect(h.message_with(page, "burst 03")).to_have_attribute("data-id", re.compile("."))
    expect(h.messages(page)).to_have_count(5)
    assert h.texts(page) == ["burst 01", "burst 02", "burst 04", "burst 05", "burst 03"]
    assert h.ids(page) == sorted(h.ids(page))
    attempts = [f for f in proxy.frames("new_message") if f["text"] == "burst 03"]
    assert len(attempts) == 2
    assert {f["client_id"] for f in attempts} == set(refused)
    # Typed order is also the order the frames left in, apart from the retry.
    order = [f["text"] for f in proxy.frames("new_message")]
    assert order == ["burst 01", "burst 02", "burst 03", "burst 04", "burst 05", "burst 03"]


def test_server_errors_are_handled_and_pings_keep_the_socket_alive(
    gateway: Gateway, new_page, room: str
) -> None:
    """Frames the real server sends rarely, injected between the page and the gateway."""
    page = new_page()
    page.clock.install()
    failed_once: list[str] = []

    def fail_once(_n: int, frame: dict, ws: Any) -> bool:
        if frame.get("text") != "please fail" or failed_once:
            return False
        failed_once.append(frame["client_id"])
        ws.send(json.dumps({"type": "error", "code": "internal",
                            "message": "storage is down", "client_id": frame["client_id"]}))
        return True

    proxy = h.Proxy(page, fail_once)
    h.join(page, gateway, "hana", room)

    # API Gateway's own failure frame has no type: a notice, and the page carries on.
    proxy.routes[0].send(json.dumps({"message": "Internal server error",
                                     "connectionId": "abc=", "requestId": "req-1"}))
    expect(page.locator("#notice")).to_contain_text("Internal server error")
    expect(page.get_by_role("status")).to_have_text("Online")

    # An error for our client_id marks that message failed; Retry resends the same id.
    h.send(page, "please fail")
    failed = h.log(page).locator(".msg.failed")
    # The code is said in the page's words (the server's English message is not shown).
    expect(failed).to_contain_text("Not sent: the server hit a problem")
    failed.get_by_role("button", name="Retry").click()
    expect(h.message_with(page, "please fail")).to_have_count(1)
    expect(h.log(page).locator(".msg.failed, .msg.pending")).to_have_count(0)
    attempts = [f for f in proxy.sent if f.get("text") == "please fail"]
    assert len(attempts) == 2 and attempts[0]["client_id"] == attempts[1]["client_id"]

    # Idle for 5 minutes: the page has pinged (API Gateway drops sockets idle for 10).
    assert not proxy.frames("ping")
    page.clock.fast_forward("05:00")
    h.wait_until(page, lambda: proxy.frames("ping"))
    expect(page.get_by_role("status")).to_have_text("Online")
