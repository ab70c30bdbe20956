"""The real handlers behind the local gateway, end to end over real sockets.

Two rooms, three users (alice and bob in one room, carol in another), every action and
error of PROTOCOL.md. Each test uses fresh rooms, so tests share one gateway.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from websockets.exceptions import InvalidStatus

from tests.gateway.conftest import Client, open_client, unique_room

pytestmark = pytest.mark.timeout(120)


def join(gw, username: str, room: str | None) -> Client:
    query = {"username": username} if room is None else {"username": username, "room": room}
    return open_client(gw.websocket_url, urlencode(query))


def presence(client: Client, username: str, event: str) -> dict:
    return client.recv_until(lambda e: e.get("type") == "presence"
                             and e.get("username") == username and e.get("event") == event)


@pytest.fixture
def rooms(chat_gw):
    """alice and bob in room A, carol in room B, with the joins already seen."""
    room_a, room_b = unique_room(), unique_room()
    alice = join(chat_gw, "alice", room_a)
    bob = join(chat_gw, "bob", room_a)
    presence(alice, "bob", "join")
    carol = join(chat_gw, "carol", room_b)
    yield room_a, room_b, alice, bob, carol
    for client in (alice, bob, carol):
        client.close()


def test_a_message_reaches_its_room_only_sender_included(rooms):
    room_a, _, alice, bob, carol = rooms
    alice.send({"action": "new_message", "text": "  hola  ", "client_id": "c-1"})
    mine = alice.recv_type("message")
    theirs = bob.recv_type("message")
    assert mine == theirs
    assert mine["text"] == "hola"  # trimmed
    assert (mine["room"], mine["username"], mine["client_id"]) == (room_a, "alice", "c-1")
    assert mine["created_at"].endswith("Z") and len(mine["created_at"]) == 24
    carol.assert_no_events()


def test_client_id_is_echoed_only_when_given_and_ids_sort_by_time(rooms):
    _, _, alice, _bob, _ = rooms
    ids = []
    for text in ("one", "two", "three"):
        event = alice.request({"action": "new_message", "text": text}, "message")
        assert "client_id" not in event
        ids.append(event["id"])
    assert ids == sorted(ids) and len(set(ids)) == 3


def test_a_frame_cannot_change_who_sent_a_message(rooms):
    room_a, _, alice, bob, _ = rooms
    alice.send({"action": "new_message", "text": "hi", "username": "mallory",
                "room": "elsewhere"})
    event = bob.recv_type("message")
    assert (event["username"], event["room"]) == ("alice", room_a)


def test_history_pages_oldest_first_with_a_cursor(rooms):
    _, _, alice, bob, carol = rooms
    texts = [f"m{i}" for i in range(5)]
    for text in texts:
        alice.request({"action": "new_message", "text": text}, "message")
    page = bob.request({"action": "history", "limit": 2}, "history")
    assert [m["text"] for m in page["messages"]] == ["m3", "m4"]
    assert page["before"]
    older = bob.request({"action": "history", "limit": 2, "before": page["before"]}, "history")
    assert [m["text"] for m in older["messages"]] == ["m1", "m2"]
    everything = bob.request({"action": "history"}, "history")
    assert [m["text"] for m in everything["messages"]] == texts
    # The other room's history is its own.
    assert carol.request({"action": "history"}, "history")["messages"] == []


def test_who_lists_the_rooms_users_sorted_and_once(chat_gw, rooms):
    room_a, _room_b, alice, _bob, carol = rooms
    second_tab = join(chat_gw, "bob", room_a)
    try:
        presence(alice, "bob", "join")
        assert alice.request({"action": "who"}, "who") == {
            "type": "who", "room": room_a, "users": ["alice", "bob"], "count": 2}
        assert carol.request({"action": "who"}, "who")["users"] == ["carol"]
    finally:
        second_tab.close()


def test_typing_goes_to_the_others_in_the_room(rooms):
    room_a, _, alice, bob, carol = rooms
    alice.send({"action": "typing"})
    assert bob.recv_type("typing") == {"type": "typing", "room": room_a, "username": "alice"}
    alice.assert_no_events()  # not to the sender
    carol.assert_no_events()


def test_presence_join_and_leave(chat_gw, rooms):
    room_a, _, alice, bob, _ = rooms
    dave = join(chat_gw, "dave", room_a)
    assert presence(alice, "dave", "join")["room"] == room_a
    presence(bob, "dave", "join")
    dave.close()
    assert presence(alice, "dave", "leave") == {
        "type": "presence", "room": room_a, "username": "dave", "event": "leave"}


def test_ping_is_answered_pong(rooms):
    _, _, alice, _, _ = rooms
    assert alice.request({"action": "ping"}, "pong") == {"type": "pong"}


def test_a_missing_room_means_general(chat_gw):
    with join(chat_gw, "erin", None) as erin:
        assert erin.request({"action": "who"}, "who")["room"] == "general"


@pytest.mark.parametrize("query", [
    {"username": "<b>"},
    {"username": ""},
    {"room": "general"},
    {"username": "x" * 33},
    {"username": "alice", "room": "Not-Lower"},
    {"username": "alice", "room": "r" * 49},
])
def test_bad_identities_are_refused_at_the_handshake_with_400(chat_gw, query):
    with pytest.raises(InvalidStatus) as refused:
        open_client(chat_gw.websocket_url, urlencode(query))
    assert refused.value.response.status_code == 400


def test_unicode_usernames_are_accepted(chat_gw):
    room = unique_room()
    with join(chat_gw, "josé", room) as jose:
        event = jose.request({"action": "new_message", "text": "olá"}, "message")
        assert event["username"] == "josé"


@pytest.mark.parametrize(("frame", "code"), [
    ("not json", "invalid_json"),
    ("[1, 2]", "invalid_json"),
    ("[" * 5000 + "]" * 5000, "invalid_json"),  # nested too deep for a JSON parser
    ('{"text": "no action"}', "unknown_action"),
    ('{"action": "\\ud800"}', "unknown_action"),  # a lone surrogate in the action
    ('{"action": "shout"}', "unknown_action"),
    ('{"action": "new_message", "text": "   "}', "invalid_message"),
    ('{"action": "new_message"}', "invalid_message"),
    ('{"action": "new_message", "text": "' + "x" * 4001 + '"}', "invalid_message"),
    ('{"action": "history", "limit": 0}', "invalid_message"),
    ('{"action": "history", "limit": 101}', "invalid_message"),
    ('{"action": "history", "limit": "5"}', "invalid_message"),
])
def test_errors_go_to_the_sender_only_and_the_connection_stays(rooms, frame, code):
    _, _, alice, bob, _ = rooms
    error = alice.request(frame, "error")
    assert error["code"] == code and error["message"]
    assert alice.request({"action": "ping"}, "pong") == {"type": "pong"}  # still open
    bob.assert_no_events()


def test_errors_echo_a_valid_client_id(rooms):
    _, _, alice, _, _ = rooms
    error = alice.request({"action": "new_message", "text": "", "client_id": "c-9"}, "error")
    assert (error["code"], error["client_id"]) == ("invalid_message", "c-9")


def test_4000_code_points_are_accepted(rooms):
    _, _, alice, _, _ = rooms
    text = "é" * 4000
    assert alice.request({"action": "new_message", "text": text}, "message")["text"] == text


def test_rate_limit_after_ten_messages(chat_gw):
    # The window slides (PROTOCOL.md): ten frames within any 10 s pass, an eleventh is
    # refused, wherever the burst falls on the clock.
    with join(chat_gw, "fast", unique_room()) as fast:
        for i in range(10):
            assert fast.request({"action": "new_message", "text": f"n{i}"},
                                "message")["text"] == f"n{i}"
        error = fast.request({"action": "new_message", "text": "one too many",
                              "client_id": "c-11"}, "error")
        assert (error["code"], error["client_id"]) == ("rate_limited", "c-11")


def test_a_burst_of_eleven_concurrent_frames_is_rate_limited_exactly_once(chat_gw):
    # Frames are routed concurrently, as by API Gateway, so this needs DynamoDB's atomic
    # counter to hold locally too.
    with join(chat_gw, "burst", unique_room()) as burst:
        for i in range(11):
            burst.send({"action": "new_message", "text": f"b{i}", "client_id": f"b-{i}"})
        events = [burst.recv() for _ in range(11)]
        assert sorted(e["type"] for e in events) == ["error"] + ["message"] * 10
        assert [e["code"] for e in events if e["type"] == "error"] == ["rate_limited"]


def test_a_retry_with_the_same_client_id_is_stored_and_broadcast_once(chat_gw, rooms):
    room_a, _, alice, bob, _ = rooms
    original = alice.request({"action": "new_message", "text": "once", "client_id": "k-1"},
                             "message")
    assert bob.recv_type("message") == original
    # Retried over a new connection, as after a reconnect.
    with join(chat_gw, "alice", room_a) as alice2:
        presence(bob, "alice", "join")
        retry = alice2.request({"action": "new_message", "text": "once", "client_id": "k-1"},
                               "message")
        assert retry == original
        bob.request({"action": "ping"}, "pong")
        # Any broadcast of the retry would have been skipped on the way to the pong.
        assert not [e for e in bob.skipped
                    if e.get("type") == "message" and e["id"] == original["id"]]
        history = bob.request({"action": "history"}, "history")["messages"]
        assert [m["id"] for m in history].count(original["id"]) == 1
    # The same client_id from another user is another message.
    other = bob.request({"action": "new_message", "text": "once", "client_id": "k-1"},
                        "message")
    assert other["id"] != original["id"]


def test_a_frame_over_the_limits_closes_the_connection_and_the_room_forgets_it(rooms):
    _, _, alice, bob, _ = rooms
    bob.send_refused("x" * (33 * 1024))
    assert bob.wait_closed()[0] == 1009
    # The leave is announced by bob's $disconnect, which has forgotten him by then.
    presence(alice, "bob", "leave")
    assert alice.request({"action": "who"}, "who")["users"] == ["alice"]
