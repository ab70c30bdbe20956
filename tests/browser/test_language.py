"""The page in Spanish and English, in a real browser, in both auth modes: the language
comes from the browser, the switch in the header changes every word at once (and the
server's error codes with them), and the choice is remembered across a reload, in
localStorage, as the language code only."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.browser import helpers as h
from tests.browser.helpers import expect


def test_spanish_from_the_browser_english_from_the_switch_and_remembered(
    chat, new_page, room
) -> None:
    page = new_page(locale="es-ES")
    page.goto(chat.url)
    expect(page.locator("html")).to_have_attribute("lang", "es")
    expect(page.get_by_role("combobox", name="Idioma")).to_have_value("es")
    first_form = "#signin-form" if chat.mode == "cognito" else "#join-form"
    expect(page.locator(f"{first_form} button[type=submit]")).to_have_text(
        "Iniciar sesión" if chat.mode == "cognito" else "Entrar")
    expect(page).to_have_title("Chat")

    # A server error code, said in Spanish: the proxy refuses one message as the server would.
    def refuse(_n: int, frame: dict, ws: Any) -> bool:
        if frame.get("text") != "demasiado rápido":
            return False
        ws.send(json.dumps({
            "type": "error", "code": "rate_limited", "client_id": frame["client_id"],
            "message": "more than 10 messages in 10 seconds; slow down",
        }))
        return True

    h.Proxy(page, refuse)
    chat.enter(page, "lola", room, expect_status="En línea")
    expect(page.get_by_role("status")).to_have_text("En línea")
    box = page.locator("textarea[name=text]")
    expect(box).to_have_attribute("placeholder", f"Mensaje para #{room}")
    expect(page.locator("#composer button[type=submit]")).to_have_text("Enviar")
    h.send(page, "hola")
    mine = h.message_with(page, "hola")
    expect(mine).to_have_attribute("data-id", re.compile("."))
    h.send(page, "demasiado rápido")
    failed = h.log(page).locator(".msg.failed .state-text")
    expect(failed).to_have_text("No enviado: envías demasiado rápido, espera un momento")
    # Times are the language's: a 24-hour "HH:MM" in Spanish.
    expect(mine.locator("time")).to_have_text(re.compile(r"^\d\d:\d\d$"))
    mine.get_by_role("button", name="Acciones del mensaje").click()
    expect(page.get_by_role("menuitem", name="Editar")).to_be_visible()
    page.keyboard.press("Escape")

    # The switch: every word changes at once, without leaving the room.
    page.get_by_role("combobox", name="Idioma").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("status")).to_have_text("Online")
    expect(page.locator("#composer button[type=submit]")).to_have_text("Send")
    expect(box).to_have_attribute("placeholder", f"Message #{room}")
    expect(failed).to_have_text("Not sent: sending too fast, wait a moment")
    expect(page.get_by_role("navigation", name="Rooms")).to_be_visible()
    expect(page.locator("#leave")).to_have_text("Leave room")
    expect(mine.get_by_role("button", name="Message actions")).to_be_attached()

    # Remembered: a reload comes back in English, although the browser says Spanish.
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("combobox", name="Language")).to_have_value("en")
    stored = page.evaluate("({...localStorage})")
    assert stored.get("chat.lang") == "en"
    assert set(stored) <= {"chat.lang", "chat.username"}  # the language is the code, nothing more
    chat.rejoin(page)
    expect(page.locator("#composer button[type=submit]")).to_have_text("Send")
    # And back to Spanish from the switch, the message list with it.
    page.get_by_role("combobox", name="Language").select_option("es")
    expect(page.get_by_role("status")).to_have_text("En línea")
    expect(h.log(page)).to_have_attribute("aria-label", f"Mensajes en #{room}")
