"""The page's screenshots for the docs, taken in Chromium against a real local gateway:

    .venv/bin/python -m tests.browser.screenshots        # writes docs/screenshots/*.png

One conversation per language (its people write in that language), seen by bob, who
read the start of #plaza, went to two other rooms, and came back: edited and deleted
messages, reactions (his own highlighted), the "New messages" divider at his read
marker, and the room list with an unread count. docs/screenshot.png (the README's) is
the English one.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

from local_gateway.testing import GatewayProcess
from tests.browser import helpers as h
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, GATEWAY_START_S, TIMEOUT_MS

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "screenshots"

TEXT = {
    "en": {
        "early": ["Morning all! Standup in 10?", "I pushed the history paging fix."],
        "bob_early": "Reviewing it now.",
        "typo": "Does the cursor survive a reconect?",
        "fixed": "Does the cursor survive a reconnect?",
        "oops": "wrong room, sorry",
        "answer": "It does: the page pages back to the last id it saw, and merges by id.",
        "late": ["Nice. And edits keep their place in history.", "Shipping it after lunch."],
        "random": ["anyone up for lunch?", "the new coffee machine works"],
        "design": "New icons are in the drive.",
    },
    "es": {
        "early": ["¡Buenos días! ¿Reunión en 10?", "Subí el arreglo de la paginación."],
        "bob_early": "Lo estoy revisando.",
        "typo": "¿El cursor sobrevive a una reconexion?",
        "fixed": "¿El cursor sobrevive a una reconexión?",
        "oops": "sala equivocada, perdón",
        "answer": "Sí: la página retrocede hasta el último id que vio y junta por id.",
        "late": ["Bien. Y las ediciones conservan su sitio.", "Lo publico después de comer."],
        "random": ["¿alguien para comer?", "la cafetera nueva funciona"],
        "design": "Los iconos nuevos están en la carpeta.",
    },
}


class Gw:
    """What the helpers need of a gateway: its page and WebSocket URLs."""

    def __init__(self, proc: GatewayProcess) -> None:
        self.url = f"http://127.0.0.1:{proc.port}/"
        self.ws_url = proc.websocket_url


def seen(page, text: str) -> None:
    expect(h.message_with(page, text)).to_be_in_viewport()


ONLINE = {"en": "Online", "es": "En línea"}


def go(page, room: str, lang: str) -> None:
    """Another room, from the side panel's form."""
    box = page.locator("#room-go-name")
    box.fill(room)
    box.press("Enter")
    expect(page.locator("#room-name")).to_have_text(f"#{room}")
    h.expect_online(page, ONLINE[lang])


def scene(browser, gw: Gw, lang: str) -> Path:
    t = TEXT[lang]
    plaza, random, design = "plaza", "random", "design"
    ctx = browser.new_context(viewport={"width": 1280, "height": 860}, locale=lang,
                              color_scheme="light")
    ctx.set_default_timeout(TIMEOUT_MS)
    bob = ctx.new_page()
    with h.WsClient(gw, "maya", plaza) as maya, h.WsClient(gw, "noah", plaza) as noah, \
            h.WsClient(gw, "maya", random) as maya_r, h.WsClient(gw, "noah", design) as noah_d:
        for text in t["early"]:
            maya.say(text)
        h.submit_join(bob, gw, "bob", plaza)
        h.expect_online(bob, ONLINE[lang])
        h.send(bob, t["bob_early"])
        seen(bob, t["bob_early"])
        maya_r.say(t["random"][0])
        noah_d.say(t["design"])
        bob.wait_for_timeout(800)  # bob's mark_read for what he saw goes out
        go(bob, random, lang)
        seen(bob, t["random"][0])
        go(bob, design, lang)
        seen(bob, t["design"])

        # While bob is in #design: the conversation in #plaza goes on, and #random too.
        typo = noah.say(t["typo"])
        noah.send({"action": "edit_message", "id": typo["id"], "text": t["fixed"]})
        noah.recv_until(lambda e: e.get("type") == "message_updated")
        oops = maya.say(t["oops"])
        maya.send({"action": "delete_message", "id": oops["id"]})
        maya.recv_until(lambda e: e.get("type") == "message_deleted")
        answer = maya.say(t["answer"])
        for who, emoji in ((noah, "👍"), (maya, "🎉"), (noah, "🎉")):
            who.send({"action": "react", "id": answer["id"], "emoji": emoji, "on": True})
        for text in t["late"]:
            noah.say(text)
        for text in t["random"][1:]:
            maya_r.say(text)

        # Back to #plaza from the room list: the divider where the news starts.
        bob.get_by_role("navigation").locator(f"[data-room={plaza}]").click()
        expect(bob.locator("#room-name")).to_have_text(f"#{plaza}")
        h.expect_online(bob, ONLINE[lang])
        expect(bob.locator(f"[data-room={random}] .badge")).to_be_visible()
        expect(h.log(bob).locator(".new-divider")).to_have_count(1)
        # Bob reacts too (his chip is highlighted), and fixes his own message.
        chip = h.message_with(bob, t["answer"]).locator(".chip", has_text="👍")
        expect(chip).to_have_count(1)
        expect(h.message_with(bob, t["answer"]).locator(".chip")).to_have_count(2)
        chip.click()
        expect(chip).to_have_attribute("aria-pressed", "true")
        box = bob.locator("textarea[name=text]")
        box.click()
        box.press("ArrowUp")
        box.fill(t["bob_early"].replace(".", " 👀"))
        box.press("Enter")
        edited = h.message_with(bob, t["bob_early"].replace(".", " 👀"))
        expect(edited.locator(".edited")).not_to_be_empty()
        box.fill("")
        bob.locator("#scroller").evaluate("(s) => { s.scrollTop = 0; }")
        h.message_with(bob, t["answer"]).locator(".body").hover()  # its actions show
        path = OUT / f"chat-{lang}.png"
        bob.screenshot(path=path)
    ctx.close()
    return path


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    paths = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for lang in ("en", "es"):
            # A gateway of its own per language: bob's room list shows that scene's rooms only.
            with tempfile.TemporaryDirectory() as tmp:
                proc = GatewayProcess(state_dir=Path(tmp))
                proc.start(timeout=GATEWAY_START_S)
                try:
                    paths.append(scene(browser, Gw(proc), lang))
                finally:
                    proc.stop(timeout=20)
        browser.close()
    shutil.copyfile(OUT / "chat-en.png", REPO / "docs" / "screenshot.png")
    for p in paths:
        print(p.relative_to(REPO))
    return 0


if __name__ == "__main__":
    sys.exit(main())
