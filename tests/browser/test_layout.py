"""The page on a 375 px phone: nothing may make it scroll sideways."""

from __future__ import annotations

from chat.protocol import client_rules
from tests.browser import helpers as h
from tests.browser.conftest import Gateway
from tests.browser.helpers import expect

RULES = client_rules()


def page_width(page) -> dict:
    return page.evaluate(
        "({scroll: document.documentElement.scrollWidth, viewport: window.innerWidth})"
    )


def assert_fits(page, where: str) -> None:
    width = page_width(page)
    assert width["scroll"] <= width["viewport"], f"{where}: the page scrolls sideways: {width}"


def test_nothing_scrolls_sideways_at_375_px(gateway: Gateway, new_page, room: str) -> None:
    page = new_page(**h.PHONE)
    page.goto(gateway.url)
    # The join form, as it opens and with its hints and errors showing.
    expect(page.locator("#username-hint")).not_to_be_empty()
    assert_fits(page, "join form")
    longest_name = "w" * RULES["usernameMaxLength"]
    page.locator("input[name=username]").fill(longest_name + "x")
    page.locator("input[name=room]").fill("r" * (RULES["roomMaxLength"] + 1))
    page.locator("#join-form button[type=submit]").click()
    expect(page.locator("input[name=room]")).to_have_attribute("aria-invalid", "true")
    assert_fits(page, "join form with errors")

    # In a room, with the longest names the server allows and words that do not break.
    unbroken = "x" * 300
    url = "https://example.com/" + "a" * 200
    with h.WsClient(gateway, "W" * RULES["usernameMaxLength"], room) as other:
        h.join(page, gateway, longest_name, room)
        other.say(unbroken)
        h.send(page, url)
        expect(h.message_with(page, unbroken)).to_have_count(1)
        expect(h.message_with(page, url)).to_have_count(1)
        expect(page.get_by_label("Online", exact=True).locator("li")).to_have_count(2)
        assert_fits(page, "room with long words and names")
        expect(page.locator("#composer button[type=submit]")).to_be_in_viewport()
