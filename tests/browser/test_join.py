"""The join form: validation from the protocol's rules, the keyboard path, and what the
page says when it cannot start or cannot connect."""

from __future__ import annotations

import pytest

from chat.protocol import ProtocolError, client_rules, page_config, parse_room, parse_username
from tests.browser import helpers as h
from tests.browser.conftest import Gateway, dead_port
from tests.browser.helpers import expect

RULES = client_rules()


def test_join_form_validates_and_works_from_the_keyboard(gateway: Gateway, new_page, room) -> None:
    page = new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(gateway.url + f"?username=jos%C3%A9&room={room}")
    name, room_input = page.locator("input[name=username]"), page.locator("input[name=room]")
    # Prefilled from the page URL; the standing hints come from config.json's rules.
    expect(name).to_have_value("josé")
    expect(room_input).to_have_value(room)
    expect(page.locator("#username-hint")).to_contain_text(f"1–{RULES['usernameMaxLength']} ")
    expect(page.locator("#room-hint")).to_contain_text(f"empty means {RULES['defaultRoom']}.")

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
    h.expect_online(page)
    assert len(sockets) == 1
    assert sockets[0].endswith(f"?username=ana_1&room={room}")
    expect(page.locator("textarea[name=text]")).to_be_focused()
    page.keyboard.type("typed, never clicked")
    page.keyboard.press("Enter")
    expect(h.message_with(page, "typed, never clicked")).to_have_count(1)


def test_the_default_room_comes_from_the_server(gateway: Gateway, new_page) -> None:
    page = new_page()
    page.goto(gateway.url)
    room_input = page.locator("input[name=room]")
    expect(room_input).to_have_value(RULES["defaultRoom"])
    expect(room_input).to_have_attribute("placeholder", RULES["defaultRoom"])


NAMES = [
    "ana_1", "josé", "jose\u0301", "Ωmega", "١٢٣", "a.b-c", "a" * 32, "a" * 33, "𝒜" * 32,
    "𝒜" * 33, "<b>", "a b", "²", "Ⅻ", "x\u200by", "emoji😀", "",
]
ROOMS = ["general", "a-1", "r" * 48, "r" * 49, "a_1", "dé", "no spaces", "ｆｕｌｌ"]


def accepts(parse, value: str) -> bool:
    try:
        parse(value)
    except ProtocolError:
        return False
    return True


def test_the_page_refuses_exactly_what_connect_refuses(gateway: Gateway, new_page) -> None:
    # One home for the rules: the page builds its checks from config.json, which the
    # server builds from chat.protocol. Ask both about the same names and rooms.
    page = new_page()
    page.goto(gateway.url)
    verdicts = page.evaluate(
        """async ([names, rooms]) => {
            const { rules, normalizeUsername } = await import('./js/protocol.js');
            const config = await (await fetch('config.json')).json();
            const r = rules(config.protocol);
            return {
              names: names.map((n) => r.usernameProblem(normalizeUsername(n)) === ''),
              rooms: rooms.map((x) => r.roomProblem(x) === ''),
            };
        }""",
        [NAMES, ROOMS],
    )
    assert dict(zip(NAMES, verdicts["names"], strict=True)) == {
        n: accepts(parse_username, n) for n in NAMES
    }
    assert dict(zip(ROOMS, verdicts["rooms"], strict=True)) == {
        r: accepts(parse_room, r) for r in ROOMS
    }


@pytest.mark.parametrize("config", [None, {"websocketUrl": "ws://127.0.0.1:9/local"}],
                         ids=["unavailable", "without-rules"])
def test_join_says_when_the_chat_cannot_start(
    gateway: Gateway, new_page, room, config: dict | None
) -> None:
    page = new_page()
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    if config is None:
        page.route("**/config.json", lambda route: route.fulfill(status=404))
    else:
        page.route("**/config.json", lambda route: route.fulfill(json=config))
    h.submit_join(page, gateway, "gina", room)
    expect(page.locator("#join-error")).to_contain_text("Cannot start the chat: config.json")
    expect(page.locator("#join-form")).to_be_visible()
    assert sockets == []


def test_join_explains_a_refused_or_unreachable_server(gateway: Gateway, new_page, room) -> None:
    # A browser cannot see the handshake's 400; a first connection that never opens is
    # reported on the join form (here: config.json points at a port nobody listens on).
    page = new_page()
    with dead_port() as port:
        dead = f"ws://127.0.0.1:{port}/local"
        page.route("**/config.json", lambda route: route.fulfill(json=page_config(dead)))
        h.submit_join(page, gateway, "gina", room)
        expect(page.get_by_role("alert").filter(has_text="Could not join")).to_contain_text(
            f"#{room} as “gina”"
        )
    expect(page.locator("#join-form")).to_be_visible()
    expect(page.locator("input[name=username]")).to_be_focused()
