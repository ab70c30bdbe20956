"""The gateway's own throttle answer ({"message": "Too Many Requests", ...}, no type, no
client_id) in a real browser: the page takes it as "slow down" and sends again what was
not answered, a new_message under the same client_id, so it is posted once."""

from __future__ import annotations

import json
from typing import Any

from tests.browser import helpers as h
from tests.browser.conftest import Gateway
from tests.browser.helpers import expect

THROTTLED = {"message": "Too Many Requests", "connectionId": "L0SM9cOFvHcCIhw=",
             "requestId": "L0SM9FGSvHcFjWQ="}


def test_a_throttled_message_is_sent_again_under_its_client_id_and_posted_once(
    gateway: Gateway, new_page, room: str
) -> None:
    page = new_page()
    refused: list[dict] = []

    def throttle(_n: int, frame: dict, ws: Any) -> bool:
        # The gateway drops the frame and answers for itself: the first two tries of one
        # message, and the first history request.
        wanted = (frame.get("text") == "slow please" and len(
            [f for f in refused if f.get("text") == "slow please"]) < 2) or (
            frame.get("action") == "history" and not any(
                f.get("action") == "history" for f in refused))
        if not wanted:
            return False
        refused.append(frame)
        ws.send(json.dumps(THROTTLED))
        return True

    proxy = h.Proxy(page, throttle)
    with h.WsClient(gateway, "other", room) as other:
        other.say("before")
        h.join(page, gateway, "tess", room)  # its first history page was refused once
        expect(h.message_with(page, "before")).to_have_count(1)
        assert len(proxy.frames("history")) >= 2

        h.send(page, "slow please")
        expect(h.message_with(page, "slow please")).to_have_count(1)
        expect(h.log(page).locator(".msg.failed, .msg.pending")).to_have_count(0)
        other.recv_until(lambda e: e.get("type") == "message" and e.get("text") == "slow please")

    attempts = [f for f in proxy.frames("new_message") if f["text"] == "slow please"]
    assert len(attempts) == 3
    assert len({f["client_id"] for f in attempts}) == 1
    # Posted once: a reload's history holds it once.
    page.reload()
    page.locator("#join-form button[type=submit]").click()
    h.expect_online(page)
    expect(h.message_with(page, "slow please")).to_have_count(1)
    assert page.errors == []
