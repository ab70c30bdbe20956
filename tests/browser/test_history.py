"""A room's past in the browser: the newest page, "load older", a reload, and the
catch-up after a gap, each message once and in id order."""

from __future__ import annotations

import json
import re
from contextlib import ExitStack

from tests.browser import helpers as h
from tests.browser.conftest import Gateway
from tests.browser.helpers import expect


def test_reload_shows_history_and_load_older_pages_back_in_order(
    gateway: Gateway, new_page, room: str
) -> None:
    # 56 messages: more than one 50-message page. Several connections share the work
    # because the server allows 10 messages per 10 s per connection. They stay open until
    # the end: on the local gateway (moto underneath) a burst of $disconnects while the
    # page's $connect runs has been seen to lose the new connection's record.
    seeders = ExitStack()
    senders = [seeders.enter_context(h.WsClient(gateway, f"seed{i}", room)) for i in range(8)]
    for n in range(1, 57):
        senders[n % 8].say(f"m{n:02d}")

    page = new_page(height=600)
    h.join(page, gateway, "dana", room)
    # The newest page: m07..m56, oldest first, scrolled to the newest.
    expect(h.messages(page)).to_have_count(50)
    assert h.texts(page) == [f"m{n:02d}" for n in range(7, 57)]
    expect(h.message_with(page, "m56")).to_be_in_viewport()
    h.send(page, "dana was here")
    expect(h.message_with(page, "dana was here")).to_have_count(1)

    # Load older keeps what the reader is looking at in place.
    page.locator("#scroller").evaluate("el => el.scrollTop = 0")
    anchor = h.message_with(page, "m07")
    top_before = anchor.bounding_box()["y"]
    page.get_by_role("button", name="Load older messages").click()
    expect(h.messages(page)).to_have_count(57)
    assert h.texts(page) == [f"m{n:02d}" for n in range(1, 57)] + ["dana was here"]
    assert abs(anchor.bounding_box()["y"] - top_before) < 4
    expect(page.get_by_text(f"This is the start of #{room}.")).to_be_visible()
    expect(page.get_by_role("button", name="Load older messages")).to_be_hidden()

    # Reload: the form remembers the name (localStorage) and the room (address bar);
    # joining again shows the history, including what this page sent.
    page.reload()
    expect(page.locator("input[name=username]")).to_have_value("dana")
    expect(page.locator("input[name=room]")).to_have_value(room)
    page.locator("#join-form button[type=submit]").click()
    h.expect_online(page)
    expect(h.messages(page)).to_have_count(50)
    assert h.texts(page) == [f"m{n:02d}" for n in range(8, 57)] + ["dana was here"]
    expect(h.message_with(page, "dana was here")).to_have_class(re.compile(r"\bown\b"))
    seeders.close()


def test_catch_up_after_a_long_gap_pages_back_until_the_last_message_seen(
    gateway: Gateway, new_page, room: str
) -> None:
    page = new_page()
    history_requests: list[dict] = []
    page.on("websocket", lambda ws: ws.on("framesent", lambda payload: history_requests.append(
        json.loads(payload)) if '"history"' in str(payload) else None))
    h.join(page, gateway, "ivan", room)
    with ExitStack() as stack:
        watcher = stack.enter_context(h.WsClient(gateway, "seed0", room))
        h.send(page, "the last one I saw")
        expect(h.message_with(page, "the last one I saw")).to_have_count(1)
        page.context.set_offline(True)
        expect(page.get_by_role("status")).to_have_text("Offline")
        watcher.recv_until(lambda e: e.get("type") == "presence" and e["event"] == "leave")
        history_requests.clear()
        # 70 messages while away: more than one 50-message history page.
        senders = [watcher] + [stack.enter_context(h.WsClient(gateway, f"seed{i}", room))
                               for i in range(1, 8)]
        for n in range(1, 71):
            senders[n % 8].say(f"gap {n:02d}")
        page.context.set_offline(False)
        expect(page.get_by_role("status")).to_have_text("Online")
        expect(h.messages(page)).to_have_count(71)
    assert h.texts(page) == ["the last one I saw"] + [f"gap {n:02d}" for n in range(1, 71)]
    assert len(set(h.ids(page))) == 71
    # Newest page first, then one page further back with its cursor, then it stopped.
    assert [("before" in r) for r in history_requests] == [False, True]


def test_a_reconnect_before_the_first_history_page_still_loads_it(
    gateway: Gateway, new_page, room: str
) -> None:
    # The first socket's history request goes unanswered; a live message arrives meanwhile,
    # then the socket drops. The new socket must ask for the newest page (not a catch-up
    # from that live message), or "Load older" and "This is the start" never appear.
    page = new_page()
    # Dropped: the first socket's history request never reaches the gateway.
    proxy = h.Proxy(page, lambda n, frame, _ws: n == 0 and frame.get("action") == "history")
    sockets = proxy.routes
    with h.WsClient(gateway, "seed0", room) as other:
        other.say("from before you came")
        h.submit_join(page, gateway, "pia", room)
        expect(page.get_by_role("status")).to_have_text("Online")
        other.recv_until(lambda e: e.get("type") == "presence" and e["event"] == "join")
        other.say("live, while you loaded")
        expect(h.message_with(page, "live, while you loaded")).to_have_count(1)
        expect(page.locator("#history-start, #load-older").locator("visible=true")).to_have_count(0)
        with page.expect_websocket():
            sockets[0].close()
        h.expect_online(page)
        assert len(sockets) == 2
    expect(page.get_by_text(f"This is the start of #{room}.")).to_be_visible()
    assert h.texts(page) == ["from before you came", "live, while you loaded"]
