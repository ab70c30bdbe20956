"""Connections that drop or cannot serve the room: a gateway restart, a socket the server
lost track of, and a server that keeps failing (backoff, then the user's "Retry now")."""

from __future__ import annotations

import json
from itertools import pairwise
from typing import Any

from tests.browser import helpers as h
from tests.browser.conftest import Gateway, room_name
from tests.browser.helpers import expect


def test_gateway_restart_reconnects_and_catches_up_without_duplicates(
    gateway_factory, new_page, artifacts
) -> None:
    gw = gateway_factory()
    room = room_name("restart")
    page = new_page()
    received: list[dict] = []
    page.on("websocket", lambda ws: ws.on(
        "framereceived", lambda payload: received.append(json.loads(payload))))
    h.join(page, gw, "alice", room)
    with h.WsClient(gw, "bob", room) as other:
        other.say("before the restart")
    h.send(page, "mine, before")
    expect(h.messages(page)).to_have_count(2)
    before_ids = h.ids(page)

    gw.stop()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Reconnecting")
    expect(status).to_have_attribute("data-state", "reconnecting")
    # Hold the page off the network while the gateway comes back and bob speaks, so his
    # message can only reach the page through the catch-up, not as a live event.
    page.context.set_offline(True)
    expect(status).to_have_text("Offline")
    gw.start()
    with h.WsClient(gw, "bob", room) as other:
        missed = other.say("sent while you were away")
        # Typed while offline: shown at once, sent when the connection is back.
        h.send(page, "queued while offline")
        expect(h.log(page).locator(".msg.pending")).to_contain_text("queued while offline")
        page.screenshot(path=artifacts / "offline.png")
        page.context.set_offline(False)
        expect(status).to_have_text("Online")
        expect(h.message_with(page, "sent while you were away")).to_have_count(1)
        expect(h.message_with(page, "queued while offline")).to_have_count(1)
        other.recv_until(
            lambda e: e.get("type") == "message" and e["text"] == "queued while offline"
        )
    assert h.message_with(page, "sent while you were away").get_attribute("data-id") == missed["id"]
    # It came in a history page (the catch-up), never as a live event.
    assert not [e for e in received if e.get("type") == "message" and e["id"] == missed["id"]]
    assert [e for e in received if e.get("type") == "history"
            and missed["id"] in [m["id"] for m in e["messages"]]]
    final_ids = h.ids(page)
    assert len(final_ids) == len(set(final_ids)) == 4
    assert final_ids[:2] == before_ids
    expected = [
        "before the restart", "mine, before", "sent while you were away", "queued while offline"
    ]
    assert h.texts(page) == expected

    # A plain restart, nobody holding the page back: backoff finds the gateway again and
    # the catch-up adds nothing twice.
    gw.stop()
    expect(status).to_contain_text("Reconnecting")
    gw.start()
    expect(status).to_have_text("Online", timeout=60_000)
    h.send(page, "back again")
    expect(h.message_with(page, "back again")).to_have_count(1)
    assert h.texts(page) == [*expected, "back again"]
    assert h.ids(page)[:4] == final_ids


def test_a_connection_that_cannot_load_the_room_is_replaced(
    gateway: Gateway, new_page, room: str
) -> None:
    # What a client sees when the server lost its record of the connection: `internal`
    # for every frame. The first socket gets that for its history request.
    page = new_page()

    def fail_first_history(n: int, frame: dict, ws: Any) -> bool:
        if n != 0 or frame.get("action") != "history":
            return False
        ws.send(json.dumps({"type": "error", "code": "internal",
                            "message": "this connection is not registered; reconnect"}))
        return True

    sockets = h.Proxy(page, fail_first_history).routes
    with h.WsClient(gateway, "lee", room) as other:
        other.say("already here")
        h.join(page, gateway, "kim", room)
        expect(h.message_with(page, "already here")).to_have_count(1)
        assert len(sockets) == 2
        h.send(page, "hello from the second socket")
        other.recv_until(lambda e: e.get("text") == "hello from the second socket")


def test_a_room_that_never_loads_backs_off_then_waits_for_the_user(
    gateway: Gateway, new_page, room: str
) -> None:
    # Every socket opens fine, but every `history` fails with `internal`: the page replaces
    # the socket, yet each replacement must wait longer than the last, and after a few it
    # stops and offers "Retry now" instead of reconnecting about once a second forever.
    page = new_page()
    failing = [True]

    def fail_history(_n: int, frame: dict, ws: Any) -> bool:
        if not failing[0] or frame.get("action") != "history":
            return False
        ws.send(json.dumps({"type": "error", "code": "internal", "message": "storage is down"}))
        return True

    created_at = h.record_sockets(page)
    page.clock.install()  # time flows as usual until the test jumps it, below
    h.Proxy(page, fail_history)
    h.submit_join(page, gateway, "olga", room)
    status = page.get_by_role("status")
    expect(status).to_have_text("Offline", timeout=60_000)
    expect(page.locator("#notice")).to_contain_text("cannot be loaded")
    retry_now = page.get_by_role("button", name="Retry now")
    expect(retry_now).to_be_visible()
    # Four sockets (the page's cap), each replacement after a longer wait: the backoff's
    # floor is 0.5 s, 1 s, 2 s (equal jitter on 1, 2, 4 s). The times are the page's own,
    # taken as it creates each socket, so a busy machine can only make the gaps longer.
    times = created_at()
    assert len(times) == 4, times
    gaps = [b - a for a, b in pairwise(times)]
    for n, gap in enumerate(gaps):
        assert gap >= 0.5 * 2**n - 0.005, gaps  # 5 ms: timers are scheduled in whole ms
    # Given up means given up. A timer left behind would bring a socket within the
    # backoff's cap (30 s) of giving up: rather than sleep that long, jump the page's clock
    # past it from here, the moment it gave up. Due timers run before fast_forward returns,
    # and a socket is created as its timer runs, so the count is final at once.
    page.clock.fast_forward("00:31")
    assert len(created_at()) == 4
    expect(status).to_have_text("Offline")

    # The user retries once the server is well again: the room loads.
    failing[0] = False
    retry_now.click()
    h.expect_online(page)
    assert len(created_at()) == 5
