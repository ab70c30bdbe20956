"""Signing in, in Chromium, against ``python -m local_gateway --auth cognito``: sign up,
confirm (any code works locally), sign in, chat between two signed-in people, errors in
plain words, an expired ID token refreshed without losing the session, and signing out.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_gateway.testing import GatewayProcess
from tests.browser import helpers as h
from tests.browser.conftest import GATEWAY_START_S, room_name
from tests.browser.helpers import expect

PASSWORD = "Sup3r-secret!"

# In the page, before its scripts: the subprotocols each WebSocket offered, and its URL.
RECORD_OFFERS = """(() => {
  const Native = window.WebSocket;
  window.__offers = [];
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      super(url, protocols);
      window.__offers.push({ url: String(url), protocols: protocols ?? null });
    }
  };
})();"""


class SignInGateway:
    def __init__(self, proc: GatewayProcess) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{proc.port}/"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SignInGateway]:
    proc = GatewayProcess(args=["--auth", "cognito"])
    proc.start(timeout=GATEWAY_START_S)
    try:
        assert "ANY confirmation code works locally" in proc.output
        yield SignInGateway(proc)
    finally:
        proc.stop(timeout=20)


def username(prefix: str) -> str:
    return f"{prefix}_{os.urandom(3).hex()}"


def sign_up(page, gateway: SignInGateway, name: str, password: str = PASSWORD) -> None:
    """Open the page, create an account, confirm it, and land on the join form."""
    page.goto(gateway.url)
    expect(page.locator("#signin-form")).to_be_visible()
    page.get_by_role("button", name="Create an account").click()
    page.locator("#signup-username").fill(name)
    page.locator("#signup-email").fill(f"{name}@example.com")
    page.locator("#signup-password").fill(password)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#confirm-form")).to_be_visible()
    page.locator("#confirm-code").fill("000000")  # any code works locally
    page.get_by_role("button", name="Confirm").click()
    expect(page.locator("#join-view")).to_be_visible()
    expect(page.locator("#username")).to_have_value(name)


def join(page, room: str) -> None:
    page.locator("input[name=room]").fill(room)
    page.locator("#join-form button[type=submit]").click()
    h.expect_online(page)


def offers(page) -> list[dict]:
    return page.evaluate("window.__offers")


def bearer(offer: dict) -> str:
    (token,) = [p for p in offer["protocols"] if p.startswith("bearer.")]
    return token.removeprefix("bearer.")


def test_sign_up_confirm_sign_in_and_chat(gateway, new_page) -> None:
    room = room_name("signed-in")
    ana, ben = username("ana"), username("ben")
    a, b = new_page(), new_page()
    for page in (a, b):
        page.add_init_script(RECORD_OFFERS)
    sign_up(a, gateway, ana)
    join(a, room)
    sign_up(b, gateway, ben)
    join(b, room)
    h.send(a, "hola from a verified name")
    for page in (a, b):
        msg = h.message_with(page, "hola from a verified name")
        expect(msg).to_have_count(1)
        expect(msg.locator(".author")).to_have_text(ana)
    # The token travels as a subprotocol only: never in the URL, never in localStorage.
    (offer,) = offers(a)
    assert offer["protocols"][0] == "chat.v1"
    assert re.search(r"\?room=[^&]+$", offer["url"]) and "bearer" not in offer["url"]
    token = bearer(offer)
    assert token not in a.evaluate("JSON.stringify(localStorage)")
    assert token not in a.evaluate("JSON.stringify(sessionStorage)")  # memory only
    assert token not in a.url
    # A reload in the same tab stays signed in (the refresh token is in sessionStorage).
    a.reload()
    expect(a.locator("#join-view")).to_be_visible()
    expect(a.locator("#username")).to_have_value(ana)


def test_errors_are_said_in_plain_words(gateway, new_page) -> None:
    page = new_page()
    taken = username("cleo")
    sign_up(page, gateway, taken)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#signin-form")).to_be_visible()

    page.get_by_role("button", name="Create an account").click()
    page.locator("#signup-username").fill(taken)
    page.locator("#signup-email").fill("c@example.com")
    page.locator("#signup-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#signup-error")).to_have_text("That name is taken: pick another one.")

    page.locator("#signup-username").fill(username("dan"))
    page.locator("#signup-password").fill("weakweak")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#signup-error")).to_contain_text("That password is too weak")

    page.locator("#signup-username").fill("no spaces")
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#signup-error")).to_contain_text("letters, digits")

    unconfirmed = username("eve")
    page.locator("#signup-username").fill(unconfirmed)
    page.locator("#signup-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign up").click()
    expect(page.locator("#confirm-form")).to_be_visible()
    page.reload()  # leave without confirming
    expect(page.locator("#signin-form")).to_be_visible()
    page.locator("#signin-username").fill(unconfirmed)
    page.locator("#signin-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#confirm-form")).to_be_visible()
    expect(page.locator("#confirm-error")).to_contain_text("not confirmed yet")

    page.reload()
    page.locator("#signin-username").fill(taken)
    page.locator("#signin-password").fill("Wrong-pass1!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-error")).to_have_text("Wrong username or password.")


def test_an_expired_token_is_refreshed_without_losing_the_session(gateway, new_page) -> None:
    page = new_page()
    page.clock.install()
    page.add_init_script(RECORD_OFFERS)
    room = room_name("refresh")
    name = username("fay")
    refreshes: list[str] = []
    page.on("request", lambda r: refreshes.append(r.url) if r.post_data and
            "REFRESH_TOKEN_AUTH" in r.post_data else None)
    sign_up(page, gateway, name)
    join(page, room)
    h.send(page, "before the hour")
    expect(h.message_with(page, "before the hour")).to_have_count(1)
    first = bearer(offers(page)[0])

    # An hour and more passes for the page: its ID token has expired by its own clock.
    page.clock.fast_forward("01:05:00")
    h.wait_until(page, lambda: len(refreshes) >= 1)
    # The connection drops (the network goes away and comes back): the page reconnects
    # with the refreshed token, in the same room, signed in all along.
    page.context.set_offline(True)
    expect(page.get_by_role("status")).not_to_have_text("Online")
    page.context.set_offline(False)
    h.wait_until(page, lambda: len(offers(page)) >= 2)
    h.expect_online(page)
    second = bearer(offers(page)[-1])
    assert second != first
    assert json.loads(_payload(second))["cognito:username"] == name
    expect(page.locator("#auth-view")).to_be_hidden()
    expect(h.message_with(page, "before the hour")).to_have_count(1)
    h.send(page, "after the hour")
    expect(h.message_with(page, "after the hour")).to_have_count(1)


def test_sign_out_ends_the_session_in_this_tab(gateway, new_page, artifacts: Path) -> None:
    page = new_page()
    name = username("gus")
    sign_up(page, gateway, name)
    join(page, room_name("sign-out"))
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#signin-form")).to_be_visible()
    expect(page.locator("#chat-view")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('chat.session')") is None
    page.reload()
    expect(page.locator("#signin-form")).to_be_visible()
    page.screenshot(path=str(artifacts / "sign-in.png"))
    # Signing in again works, with the same name.
    page.locator("#signin-username").fill(name)
    page.locator("#signin-password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#username")).to_have_value(name)


def _payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()
