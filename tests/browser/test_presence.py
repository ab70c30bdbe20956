"""Who is here: the online list, the typing line, and presence bursts."""

from __future__ import annotations

import json
import re
import time
from contextlib import ExitStack
from typing import Any

from tests.browser import helpers as h
from tests.browser.conftest import Gateway
from tests.browser.helpers import expect


def test_typing_indicator_and_online_list_follow_the_room(
    gateway: Gateway, new_page, room: str
) -> None:
    alice = new_page()
    h.join(alice, gateway, "alice", room)
    online = alice.get_by_label("Online", exact=True)
    expect(online.locator("li")).to_have_text([re.compile("^alice")])

    bob = new_page()
    typing_frames: list[str] = []

    def watch(ws) -> None:
        ws.on("framesent", lambda payload: typing_frames.append(payload)
              if '"typing"' in str(payload) else None)

    bob.on("websocket", watch)
    h.join(bob, gateway, "bob", room)
    expect(online.locator("li")).to_have_text([re.compile("^alice"), re.compile("^bob")])
    expect(bob.get_by_label("Online", exact=True).locator("li")).to_have_count(2)

    # Bob types for a while: alice sees it, and bob sent at most one typing frame per 3 s.
    typing = alice.locator("#typing")
    box = bob.locator("textarea[name=text]")
    started = time.monotonic()
    box.press_sequentially("thinking about it", delay=60)
    expect(typing).to_have_text("bob is typing…")
    # Every typing frame left between `started` and now, so a slow machine only loosens
    # the bound (a longer `elapsed`), never breaks it.
    elapsed = time.monotonic() - started
    assert 1 <= len(typing_frames) <= 1 + int(elapsed // 3)
    # It disappears on its own about 5 s after the last typing event...
    expect(typing).to_have_text("", timeout=15_000)
    # ...and at once when bob's message arrives.
    box.press_sequentially("!", delay=0)
    expect(typing).to_have_text("bob is typing…")
    box.press("Enter")
    expect(h.message_with(alice, "thinking about it!")).to_have_count(1)
    expect(typing).to_have_text("")

    # Bob leaves: alice's list follows.
    bob.context.close()
    expect(online.locator("li")).to_have_text([re.compile("^alice")])


def test_a_burst_of_leaves_costs_one_who_and_keeps_a_second_tab_listed(
    gateway: Gateway, new_page, room: str
) -> None:
    # Four people leave and so does one of twin's two tabs. The route holds the `leave`
    # events back and hands them to the page together, a burst whatever the machine's speed.
    page = new_page()
    page.clock.install()  # time flows as usual until the test jumps it, below
    held: list[dict] = []
    leaving = 5

    def hold_leaves(_n: int, event: dict, ws: Any) -> bool:
        if event.get("type") != "presence" or event.get("event") != "leave":
            return False
        held.append(event)
        if len(held) == leaving:
            for e in held:
                ws.send(json.dumps(e))
        return True

    proxy = h.Proxy(page, from_server=hold_leaves)
    online = page.get_by_label("Online", exact=True).locator("li")
    with ExitStack() as stack:
        h.join(page, gateway, "quin", room)
        twin = stack.enter_context(h.WsClient(gateway, "twin", room))
        with ExitStack() as goers:
            for name in ("ann", "ben", "cy", "dot"):
                goers.enter_context(h.WsClient(gateway, name, room))
            goers.enter_context(h.WsClient(gateway, "twin", room))
            expect(online).to_have_count(6)
            before = len(proxy.sent)
        h.wait_until(page, lambda: len(held) == leaving)
        expect(online).to_have_text([re.compile("^quin"), re.compile("^twin")])
        # One `who` answered the burst. Any other `who` a leave scheduled would go within
        # 4 s of it (1.5 s + up to 2.5 s of jitter): jump the page's clock past that
        # instead of sleeping, then send a message of our own. Frames leave a socket in
        # order, so once the route has that message it has every `who` sent before it.
        page.clock.fast_forward("00:05")
        h.send(page, "barrier")
        h.wait_until(page, lambda: any(f.get("text") == "barrier" for f in proxy.sent))
        whos = [f for f in proxy.sent[before:] if f.get("action") == "who"]
        assert 1 <= len(whos) <= 2, whos
        twin.say("still here")
        expect(h.message_with(page, "still here")).to_have_count(1)
