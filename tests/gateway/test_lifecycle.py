"""A message's life over real sockets: the local gateway, the real functions, moto.

Edits, deletes, reactions (with the delayed send of a coalesced burst through the
gateway's SQS emulation), read markers and rooms, exactly as PROTOCOL.md shows them, and
a room beyond one shard whose edits travel through the fan-out queue.
"""

from __future__ import annotations

import random

import pytest
from websockets.sync.client import connect

from chat.protocol import SUBPROTOCOL
from local_gateway.settings import GatewaySettings
from local_gateway.testing import GatewayThread
from tests.gateway.conftest import Client, open_client, unique_room

pytestmark = pytest.mark.timeout(180)


def join(gw: GatewayThread, name: str, room: str) -> Client:
    return open_client(gw.websocket_url, f"username={name}&room={room}")


def apply(state: dict[str, dict], event: dict) -> None:
    """What a client keeps: per id, the highest version seen (PROTOCOL.md)."""
    kept = state.get(event["id"])
    if kept is None or event["version"] > kept["version"]:
        state[event["id"]] = event


def test_two_clients_see_the_same_versions_whatever_order_they_arrive_in(chat_gw) -> None:
    room = unique_room()
    with join(chat_gw, "alice", room) as alice, join(chat_gw, "bob", room) as bob:
        alice.recv_type("presence")
        sent = alice.request({"action": "new_message", "text": "v1", "client_id": "c-1"},
                             "message")
        # Each frame once the previous one is answered: frames in flight at once may run
        # in any order (on API Gateway too).
        seen: dict[str, list[dict]] = {"alice": [sent], "bob": []}
        for frame, answer in (({"action": "edit_message", "text": "v2"}, "message_updated"),
                              ({"action": "edit_message", "text": "v3"}, "message_updated"),
                              ({"action": "delete_message"}, "message_deleted")):
            seen["alice"].append(alice.request({**frame, "id": sent["id"]}, answer))
        while len(seen["bob"]) < 4:
            seen["bob"].append(bob.recv_until(lambda e: e.get("id") == sent["id"]))
        assert [e["version"] for e in seen["alice"]] == [1, 2, 3, 4]
        assert seen["alice"][1:] == seen["bob"][1:]  # the same bytes for both
        assert [e["type"] for e in seen["bob"]] == [
            "message", "message_updated", "message_updated", "message_deleted"]
        # Any arrival order ends in the same state: the tombstone, version 4.
        for _ in range(10):
            state: dict[str, dict] = {}
            for event in random.sample(seen["bob"], k=4):
                apply(state, event)
            assert state[sent["id"]]["type"] == "message_deleted"
            assert state[sent["id"]]["version"] == 4
        entry = bob.request({"action": "history"}, "history")["messages"][0]
        assert (entry["version"], entry["deleted"], entry["text"]) == (4, True, "")


def test_every_frame_of_a_messages_life_end_to_end(chat_gw) -> None:
    room = unique_room()
    with join(chat_gw, "ana", room) as ana, join(chat_gw, "ben", room) as ben, \
            join(chat_gw, "ana", room) as ana_tab:
        ana.recv_type("presence"), ana.recv_type("presence"), ben.recv_type("presence")
        sent = ana.request({"action": "new_message", "text": "hola"}, "message")
        ben.recv_type("message"), ana_tab.recv_type("message")

        # Only the author edits; another user is told so.
        error = ben.request({"action": "edit_message", "id": sent["id"], "text": "mine",
                             "client_id": "e-1"}, "error")
        assert (error["code"], error["client_id"]) == ("forbidden", "e-1")
        ana.send({"action": "edit_message", "id": sent["id"], "text": "hola, mundo"})
        updated = ben.recv_type("message_updated")
        assert (updated["text"], updated["version"]) == ("hola, mundo", 2)
        assert ana.recv_type("message_updated") == updated

        # A reaction reaches the room; a burst ends with its latest summary.
        ben.send({"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
        assert ana.recv_type("reactions")["reactions"] == {"👍": {"count": 1, "users": ["ben"]}}
        ben.send({"action": "react", "id": sent["id"], "emoji": "🎉", "on": True})
        ana.send({"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
        latest = {"👍": {"count": 2, "users": ["ana", "ben"]},
                  "🎉": {"count": 1, "users": ["ben"]}}
        for client in (ana, ben, ana_tab):
            client.recv_until(lambda e: e.get("type") == "reactions"
                              and e["reactions"] == latest, timeout=30)
        bad = ben.request({"action": "react", "id": sent["id"], "emoji": "ab", "on": True},
                          "error")
        assert bad["code"] == "invalid_message"

        # The read marker: forward only, the other tab follows, history carries it.
        ana.send({"action": "mark_read", "id": sent["id"]})
        assert ana_tab.recv_type("read_marker") == {
            "type": "read_marker", "room": room, "id": sent["id"]}
        history = ana.request({"action": "history"}, "history")
        assert history["read_marker"] == sent["id"]
        assert history["messages"][0]["reactions"] == latest

        # rooms: unread counts what others sent after the marker.
        ben.request({"action": "new_message", "text": "¿qué tal?"}, "message")
        rooms = ana.request({"action": "rooms"}, "rooms")["rooms"]
        assert [(r["room"], r["unread"]) for r in rooms if r["room"] == room] == [(room, 1)]

        # Delete: a tombstone for everyone, and nothing more can be done to it.
        ana.send({"action": "delete_message", "id": sent["id"]})
        deleted = ben.recv_type("message_deleted")
        assert (deleted["id"], deleted["version"]) == (sent["id"], 3)
        gone = ben.request({"action": "react", "id": sent["id"], "emoji": "👍", "on": False},
                           "error")
        assert gone["code"] == "not_found"
        assert ana.recv_type("message_deleted") == deleted
        ana.assert_no_events()


def test_a_room_beyond_one_shard_gets_edits_through_the_queue_and_no_live_reactions() -> None:
    settings = GatewaySettings(port=0, state_dir=None)
    settings.function_settings["FANOUT_SHARD_SIZE"] = "3"
    room = unique_room()
    with GatewayThread(settings) as gw:
        clients = [join(gw, f"u{i}", room) for i in range(8)]
        try:
            sent = clients[0].request({"action": "new_message", "text": "before"}, "message")
            for client in clients[1:]:
                client.recv_type("message")
            clients[0].send({"action": "edit_message", "id": sent["id"], "text": "after"})
            for client in clients:
                event = client.recv_type("message_updated")
                assert (event["text"], event["version"]) == ("after", 2)
            clients[4].send({"action": "react", "id": sent["id"], "emoji": "🎉", "on": True})
            assert clients[4].recv_type("reactions")["reactions"]["🎉"]["count"] == 1
            for client in clients:  # nothing twice, no reactions to anyone else
                client.assert_no_events()
                assert not [e for e in client.skipped
                            if e.get("type") in ("message_updated", "reactions")]
            entry = clients[7].request({"action": "history"}, "history")["messages"][0]
            assert entry["reactions"] == {"🎉": {"count": 1, "users": ["u4"]}}
        finally:
            for client in clients:
                client.close()


def test_signed_in_authorship_is_the_verified_name_not_the_urls() -> None:
    from tests.gateway.test_auth import People, cognito_settings

    room = unique_room()
    with GatewayThread(cognito_settings()) as gw:
        people = People(gw)
        # Ben claims to be ana in the URL: the name is his token's, so he is not her.
        url = f"{gw.websocket_url}?room={room}&username=ana"
        tokens = {name: people.token(name) for name in ("ana", "ben")}
        ana, ben = (Client(connect(url, subprotocols=[SUBPROTOCOL, "bearer." + tokens[name]],
                                   open_timeout=15, legacy=True)) for name in ("ana", "ben"))
        with ana, ben:
            sent = ana.request({"action": "new_message", "text": "mine"}, "message")
            assert sent["username"] == "ana"
            refused = ben.request({"action": "edit_message", "id": sent["id"], "text": "x"},
                                  "error")
            assert refused["code"] == "forbidden"
            ben.send({"action": "delete_message", "id": sent["id"]})
            assert ben.recv_type("error")["code"] == "forbidden"
            ana.send({"action": "edit_message", "id": sent["id"], "text": "still mine"})
            for client in (ana, ben):
                event = client.recv_type("message_updated")
                assert (event["username"], event["text"], event["version"]) == (
                    "ana", "still mine", 2)
            ben.send({"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
            assert ana.recv_type("reactions")["reactions"] == {
                "👍": {"count": 1, "users": ["ben"]}}
