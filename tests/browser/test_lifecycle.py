"""A message's life in a real browser, against the real local gateway: edit (from the
menu, and Up in an empty composer), delete after a confirmation, reactions as chips,
the "New messages" divider at the read marker, other tabs following the marker, the
room list with unread counts and switching rooms without a reload, and the language
switch. Each runs in both auth modes (open, and signed in with Cognito)."""

from __future__ import annotations

import re

from tests.browser import helpers as h
from tests.browser.helpers import expect


def menu_item(page, message, name: str):
    message.get_by_role("button", name="Message actions").click()
    return page.get_by_role("menuitem", name=name)


def test_edit_from_the_menu_and_with_up_then_delete_after_confirming(chat, new_page, room) -> None:
    ana, bob = new_page(), new_page()
    chat.enter(ana, "ana", room)
    chat.enter(bob, "bob", room)
    h.send(ana, "helo wrold")
    mine = h.message_with(ana, "helo wrold")
    expect(mine).to_have_attribute("data-id", re.compile("."))
    # Others' messages have no edit menu; ours has.
    theirs = h.message_with(bob, "helo wrold")
    expect(theirs.get_by_role("button", name="Message actions")).to_be_hidden()

    # Edit from the menu: the composer takes the text; Enter saves.
    menu_item(ana, mine, "Edit").click()
    box = ana.locator("textarea[name=text]")
    expect(box).to_have_value("helo wrold")
    expect(ana.locator("#editing")).to_be_visible()
    box.fill("hello world")
    box.press("Enter")
    for page in (ana, bob):
        edited = h.message_with(page, "hello world")
        expect(edited).to_have_count(1)
        expect(edited.locator(".edited")).to_have_text("(edited)")
    expect(ana.locator("#editing")).to_be_hidden()
    expect(box).to_have_value("")

    # Up in an empty composer edits our last message; Escape cancels, nothing is sent.
    box.press("ArrowUp")
    expect(box).to_have_value("hello world")
    box.fill("never saved")
    box.press("Escape")
    expect(box).to_have_value("")
    box.press("ArrowUp")
    box.fill("hello, world")
    box.press("Enter")
    expect(h.message_with(bob, "hello, world")).to_have_count(1)
    expect(h.log(bob)).not_to_contain_text("never saved")

    # Delete: a confirmation first (Cancel keeps it), then a placeholder for everyone.
    mine = h.message_with(ana, "hello, world")
    menu_item(ana, mine, "Delete").click()
    dialog = ana.get_by_role("dialog")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(h.message_with(bob, "hello, world")).to_have_count(1)
    menu_item(ana, mine, "Delete").click()
    ana.get_by_role("dialog").get_by_role("button", name="Delete").click()
    for page in (ana, bob):
        gone = h.log(page).locator(".msg.deleted")
        expect(gone).to_have_count(1)
        expect(gone.locator(".body")).to_have_text("This message was deleted.")
        expect(gone.locator(".author")).to_have_text(chat.name("ana"))
        expect(h.log(page)).not_to_contain_text("hello, world")
    # After a reload, history keeps the tombstone in place; the text is gone.
    bob.reload()
    chat.rejoin(bob)
    expect(h.log(bob).locator(".msg.deleted .body")).to_have_text("This message was deleted.")
    expect(h.log(bob)).not_to_contain_text("hello")
    assert ana.dialogs == [] and bob.dialogs == []


def test_reactions_are_chips_toggled_by_one_click_and_by_keyboard(chat, new_page, room) -> None:
    ana, bob = new_page(), new_page()
    chat.enter(ana, "ana", room)
    chat.enter(bob, "bob", room)
    h.send(ana, "react to me")
    theirs = h.message_with(bob, "react to me")
    expect(theirs).to_have_attribute("data-id", re.compile("."))
    # Bob opens the picker from the keyboard and picks the first emoji.
    picker_button = theirs.get_by_role("button", name="Add a reaction")
    picker_button.focus()
    picker_button.press("Enter")
    picker = bob.get_by_role("menu", name="Pick a reaction")
    expect(picker).to_be_visible()
    expect(bob.get_by_role("menuitem", name="thumbs up")).to_be_focused()
    bob.keyboard.press("ArrowRight")
    expect(bob.get_by_role("menuitem", name="heart")).to_be_focused()
    bob.keyboard.press("ArrowLeft")
    bob.keyboard.press("Enter")
    expect(picker).to_be_hidden()
    bob_name = chat.name("bob")
    for page in (ana, bob):
        chip = h.message_with(page, "react to me").locator(".chip")
        expect(chip).to_have_count(1)
        expect(chip).to_contain_text("👍")
        expect(chip.locator(".n")).to_have_text("1")
        expect(chip).to_have_attribute("title", bob_name)
    mine = h.message_with(bob, "react to me").locator(".chip")
    expect(mine).to_have_attribute("aria-pressed", "true")
    anas = h.message_with(ana, "react to me").locator(".chip")
    expect(anas).to_have_attribute("aria-pressed", "false")
    # Ana adds hers with one click on the chip: two, both names in the tooltip.
    h.message_with(ana, "react to me").locator(".chip").click()
    for page in (ana, bob):
        chip = h.message_with(page, "react to me").locator(".chip")
        expect(chip.locator(".n")).to_have_text("2")
        expect(chip).to_have_attribute("title", re.compile(re.escape(bob_name)))
    # One click takes bob's off again.
    mine.click()
    for page in (ana, bob):
        expect(h.message_with(page, "react to me").locator(".chip .n")).to_have_text("1")
    expect(mine).to_have_attribute("aria-pressed", "false")


def test_the_message_menu_and_the_delete_dialog_from_the_keyboard(chat, new_page, room) -> None:
    ana = new_page()
    chat.enter(ana, "ana", room)
    h.send(ana, "keyboard only")
    mine = h.message_with(ana, "keyboard only")
    expect(mine).to_have_attribute("data-id", re.compile("."))
    more = mine.get_by_role("button", name="Message actions")
    # The actions are buttons, in the tab order with the message.
    more.focus()
    expect(more).to_have_attribute("aria-haspopup", "menu")
    expect(more).to_have_attribute("aria-expanded", "false")
    ana.keyboard.press("ArrowDown")
    menu = ana.get_by_role("menu", name="Message actions")
    expect(menu).to_be_visible()
    expect(more).to_have_attribute("aria-expanded", "true")
    expect(ana.get_by_role("menuitem", name="Edit")).to_be_focused()
    ana.keyboard.press("Escape")  # closes, and the focus goes back to the button
    expect(menu).to_have_count(0)
    expect(more).to_be_focused()
    ana.keyboard.press("Enter")
    ana.keyboard.press("End")
    expect(ana.get_by_role("menuitem", name="Delete")).to_be_focused()
    ana.keyboard.press("Enter")
    dialog = ana.get_by_role("dialog", name="Delete this message?")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()  # the safe choice
    ana.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(h.message_with(ana, "keyboard only")).to_have_count(1)
    more.focus()
    ana.keyboard.press("Enter")
    expect(ana.get_by_role("menuitem", name="Edit")).to_be_focused()
    ana.keyboard.press("ArrowUp")  # wraps to the last item
    expect(ana.get_by_role("menuitem", name="Delete")).to_be_focused()
    ana.keyboard.press("Enter")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    ana.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Delete")).to_be_focused()
    ana.keyboard.press("Enter")
    expect(h.log(ana).locator(".msg.deleted")).to_have_count(1)
