"""Where the reader is, in a real browser against the real local gateway, in both auth
modes: the "New messages" divider at the read marker when a room is opened, the marker
following what was seen (and the person's other tabs following it), the room list with
unread counts, and switching rooms without reloading the page."""

from __future__ import annotations

import re

from tests.browser import helpers as h
from tests.browser.conftest import room_name
from tests.browser.helpers import expect

# The tab in the background, or back in front, as the browser would say it.
SET_VISIBILITY = """(state) => {
  Object.defineProperty(document, 'visibilityState', { get: () => state, configurable: true });
  Object.defineProperty(document, 'hidden', { get: () => state !== 'visible', configurable: true });
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def divider_before(page, text: str) -> None:
    """The "New messages" divider is there once, right before the message `text`."""
    divider = h.log(page).locator(".new-divider")
    expect(divider).to_have_count(1)
    expect(divider).to_have_text("New messages")
    expect(divider.locator("xpath=following-sibling::div[contains(@class,'msg')][1]")
           .locator(".body")).to_have_text(text)


def test_new_messages_divider_and_the_marker_in_other_tabs(chat, new_page, room) -> None:
    ana, bob = new_page(), new_page()
    chat.enter(ana, "ana", room)
    chat.enter(bob, "bob", room)
    # A second tab of bob's, in the background: what arrives is unread there...
    tab = new_page()
    chat.second_tab(tab, "bob", room)
    tab.evaluate(SET_VISIBILITY, "hidden")
    h.send(ana, "seen by bob")
    expect(h.message_with(tab, "seen by bob")).to_have_count(1)
    # ...until the tab in front has seen it: its mark_read reaches the other tab (so the
    # marker is stored). No divider while bob reads live.
    expect(h.message_with(bob, "seen by bob")).to_be_in_viewport()
    expect(tab).to_have_title(f"#{room} · Chat")
    expect(bob).to_have_title(f"#{room} · Chat")
    expect(h.log(bob).locator(".new-divider")).to_have_count(0)

    bob.locator("#leave").click()
    expect(bob.locator("#join-view")).to_be_visible()
    h.send(ana, "while away 1")
    h.send(ana, "while away 2")
    expect(tab).to_have_title(f"(2) #{room} · Chat")
    chat.rejoin(bob)
    divider_before(bob, "while away 1")
    expect(h.log(ana).locator(".new-divider")).to_have_count(0)  # ana wrote them
    expect(h.message_with(bob, "while away 2")).to_be_in_viewport()
    expect(tab).to_have_title(f"#{room} · Chat")

    # Everything read and stored: a reload shows no divider.
    bob.reload()
    chat.rejoin(bob)
    expect(h.message_with(bob, "while away 2")).to_have_count(1)
    expect(h.log(bob).locator(".new-divider")).to_have_count(0)


def test_a_hidden_tab_counts_unread_in_its_title(chat, new_page, room) -> None:
    ana, bob = new_page(), new_page()
    chat.enter(ana, "ana", room)
    chat.enter(bob, "bob", room)
    bob.evaluate(SET_VISIBILITY, "hidden")
    h.send(ana, "one")
    h.send(ana, "two")
    expect(bob).to_have_title(f"(2) #{room} · Chat")
    bob.evaluate(SET_VISIBILITY, "visible")
    expect(bob).to_have_title(f"#{room} · Chat")


def test_room_list_unread_counts_and_switching_rooms_without_a_reload(
    chat, new_page, room
) -> None:
    other = room_name("other")
    third = room_name("third")
    ana, bob = new_page(), new_page()
    chat.enter(ana, "ana", room)
    chat.enter(bob, "bob", room)
    h.send(ana, "first")
    expect(h.message_with(bob, "first")).to_be_in_viewport()
    bob.evaluate("window.__samePage = true")

    # Another room from the side panel's form: a new connection, the same page.
    go = bob.locator("#room-go-name")
    go.fill(other)
    go.press("Enter")
    h.expect_online(bob)
    expect(bob.locator("#room-name")).to_have_text(f"#{other}")
    expect(bob).to_have_url(re.compile(f"room={other}"))
    expect(h.messages(bob)).to_have_count(0)
    rooms = bob.get_by_role("navigation", name="Rooms")
    expect(rooms.locator("[aria-current=page]")).to_have_text(f"#{other}")
    expect(rooms.locator(f"[data-room={room}]")).to_be_visible()

    # News in the first room while bob is elsewhere: its count in the list.
    h.send(ana, "news 1")
    h.send(ana, "news 2")
    h.send(ana, "news 3")
    expect(h.message_with(ana, "news 3")).to_have_attribute("data-id", re.compile("."))
    go.fill(third)
    go.press("Enter")
    h.expect_online(bob)
    badge = rooms.locator(f"[data-room={room}] .badge")
    expect(badge).to_have_text("3")
    expect(rooms.locator(f"[data-room={room}]")).to_contain_text("3 unread")

    # Back to it from the list: the divider where the news starts, the count gone.
    rooms.locator(f"[data-room={room}]").click()
    h.expect_online(bob)
    expect(bob.locator("#room-name")).to_have_text(f"#{room}")
    divider_before(bob, "news 1")
    expect(rooms.locator(f"[data-room={room}]")).to_have_attribute("aria-current", "page")
    expect(rooms.locator(f"[data-room={room}] .badge")).to_have_count(0)
    assert bob.evaluate("window.__samePage") is True  # never reloaded
    # Still live in the room it switched back to, and only there.
    h.send(ana, "live again")
    expect(h.message_with(bob, "live again")).to_have_count(1)
    h.send(bob, "bob is back")
    expect(h.message_with(ana, "bob is back")).to_have_count(1)
