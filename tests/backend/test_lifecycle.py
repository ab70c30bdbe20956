"""A message's life (PROTOCOL.md): edits, deletes, reactions, read markers and rooms.

Through the real handlers, in this process, against moto, with a real HTTP
``@connections`` (``ScriptedConnections``); rooms beyond one shard through moto's SQS and
the real fan-out worker (``InProcessStage.run_queue``).
"""

from __future__ import annotations

import re
import time

import pytest

from chat.model import RateLimit
from chat.service import Chat
from tests.backend.conftest import items, messages_in

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def post(gw, cid: str, text: str, **extra) -> dict:
    """Send a message and return its event as the sender got it (earlier events to the
    sender are dropped)."""
    gw.take(cid)
    gw.send(cid, {"action": "new_message", "text": text, **extra})
    events = [e for e in gw.take(cid) if e["type"] == "message"]
    assert len(events) == 1, events
    return events[0]


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [e for e in events if e["type"] == kind]


def errors(gw, cid: str) -> list[str]:
    return [e["code"] for e in gw.take(cid) if e["type"] == "error"]


def history(gw, cid: str) -> dict:
    gw.send(cid, {"action": "history"})
    [event] = of_type(gw.take(cid), "history")
    return event


def stored(aws, message_id: str) -> dict:
    [item] = [i for i in messages_in(aws) if i["id"]["S"] == message_id]
    return item


@pytest.fixture
def pair(gw):
    alice, bob = gw.join("alice", "lobby"), gw.join("bob", "lobby")
    gw.take(alice)
    return alice, bob


# --- edit_message -------------------------------------------------------------------------


def test_an_edit_reaches_the_whole_room_with_the_next_version_and_history_has_it(
    gw, aws, pair
) -> None:
    alice, bob = pair
    outsider = gw.join("carol", "kitchen")
    sent = post(gw, alice, "helo", client_id="c-1")
    gw.take(bob)
    assert sent["version"] == 1 and "edited_at" not in sent

    gw.send(alice, {"action": "edit_message", "id": sent["id"], "text": "  hello  "})

    [mine], [theirs] = gw.take(alice), gw.take(bob)
    assert mine == theirs
    assert mine["type"] == "message_updated"
    assert set(mine) == {"type", "id", "room", "username", "text", "created_at", "version",
                         "edited_at", "reactions"}
    assert (mine["id"], mine["room"], mine["username"]) == (sent["id"], "lobby", "alice")
    assert mine["text"] == "hello" and mine["version"] == 2
    assert mine["created_at"] == sent["created_at"] and TIME.fullmatch(mine["edited_at"])
    assert gw.take(outsider) == []
    [entry] = history(gw, bob)["messages"]
    assert (entry["text"], entry["version"], entry["edited_at"]) == ("hello", 2, mine["edited_at"])
    assert stored(aws, sent["id"])["text"]["S"] == "hello"

    gw.send(alice, {"action": "edit_message", "id": sent["id"], "text": "hello!"})
    assert [e["version"] for e in gw.take(bob)] == [3]


def test_only_the_author_edits_and_only_in_the_messages_room(gw, aws, pair) -> None:
    alice, bob = pair
    sent = post(gw, alice, "mine")
    gw.take(bob)
    mallory = gw.join("mallory", "kitchen")

    gw.send(bob, {"action": "edit_message", "id": sent["id"], "text": "yours now",
                  "client_id": "e-1"})
    assert gw.take(bob) == [{"type": "error", "code": "forbidden", "client_id": "e-1",
                             "message": "only the author may edit or delete a message"}]
    # Another room's message does not exist for this connection: not_found, not forbidden.
    gw.send(mallory, {"action": "edit_message", "id": sent["id"], "text": "x"})
    assert errors(gw, mallory) == ["not_found"]
    # The same name in another room is still not in the message's room.
    alice_elsewhere = gw.join("alice", "kitchen")
    gw.take(mallory)
    gw.send(alice_elsewhere, {"action": "delete_message", "id": sent["id"]})
    assert errors(gw, alice_elsewhere) == ["not_found"]
    assert gw.take(alice) == [] and gw.take(bob) == []
    assert stored(aws, sent["id"])["text"]["S"] == "mine"


@pytest.mark.parametrize("frame", [
    {"text": "x"},
    {"id": "not-an-id", "text": "x"},
    {"id": 5, "text": "x"},
    {"id": "ID", "text": "   "},
    {"id": "ID", "text": "x" * 4001},
    {"id": "ID"},
])
def test_edits_follow_the_text_rules(gw, aws, pair, frame) -> None:
    alice, bob = pair
    sent = post(gw, alice, "original")
    gw.take(bob)
    frame = {k: sent["id"] if v == "ID" else v for k, v in frame.items()}
    gw.send(alice, {"action": "edit_message", **frame})
    assert errors(gw, alice) == ["invalid_message"]
    assert stored(aws, sent["id"])["text"]["S"] == "original"
    assert gw.take(bob) == []


def test_an_unknown_message_is_not_found(gw, aws, pair) -> None:
    alice, _ = pair
    for action in ("edit_message", "delete_message", "mark_read"):
        gw.send(alice, {"action": action, "id": "01JDX4M8Q2XKZP5V7T9RWB3C4D", "text": "x"})
        assert errors(gw, alice) == ["not_found"], action
    gw.send(alice, {"action": "react", "id": "01JDX4M8Q2XKZP5V7T9RWB3C4D", "emoji": "👍",
                    "on": True})
    assert errors(gw, alice) == ["not_found"]


# --- delete_message -------------------------------------------------------------------------


def test_a_delete_leaves_a_tombstone_and_removes_the_text_and_reactions_for_real(
    gw, aws, pair
) -> None:
    alice, bob = pair
    sent = post(gw, alice, "secret")
    gw.take(bob)
    gw.send(alice, {"action": "edit_message", "id": sent["id"], "text": "more secret"})
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
    gw.take(alice), gw.take(bob)

    gw.send(alice, {"action": "delete_message", "id": sent["id"]})

    [mine], [theirs] = gw.take(alice), gw.take(bob)
    assert mine == theirs
    assert set(mine) == {"type", "id", "room", "version", "deleted_at"}
    assert (mine["type"], mine["id"], mine["room"], mine["version"]) == (
        "message_deleted", sent["id"], "lobby", 3)
    item = stored(aws, sent["id"])
    assert "text" not in item and not any(name.startswith("x") for name in item)
    assert "secret" not in repr(item)
    [entry] = history(gw, bob)["messages"]
    assert entry == {
        "id": sent["id"], "room": "lobby", "username": "alice", "text": "",
        "created_at": sent["created_at"], "version": 3, "edited_at": entry["edited_at"],
        "deleted": True, "deleted_at": mine["deleted_at"], "reactions": {}, "type": "message",
    }

    # A tombstone cannot be edited, deleted again or reacted to.
    gw.send(alice, {"action": "edit_message", "id": sent["id"], "text": "back"})
    gw.send(alice, {"action": "delete_message", "id": sent["id"]})
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "🎉", "on": True})
    assert errors(gw, alice) == ["not_found", "not_found"]
    assert errors(gw, bob) == ["not_found"]
    assert "text" not in stored(aws, sent["id"])


def test_only_the_author_deletes(gw, aws, pair) -> None:
    alice, bob = pair
    sent = post(gw, alice, "stays")
    gw.take(bob)
    gw.send(bob, {"action": "delete_message", "id": sent["id"]})
    assert errors(gw, bob) == ["forbidden"]
    assert stored(aws, sent["id"])["text"]["S"] == "stays"


# --- idempotence --------------------------------------------------------------------------


def test_a_retried_new_message_gets_the_current_version_never_the_original_text(
    gw, aws, pair
) -> None:
    alice, bob = pair
    sent = post(gw, alice, "first draft", client_id="c-9")
    gw.send(alice, {"action": "edit_message", "id": sent["id"], "text": "final"})
    gw.take(alice), gw.take(bob)

    again = gw.join("alice", "lobby")  # a reconnect retries the same client_id
    gw.take(alice), gw.take(bob)
    gw.send(again, {"action": "new_message", "text": "first draft", "client_id": "c-9"})
    [replay] = gw.take(again)
    assert replay["type"] == "message" and replay["id"] == sent["id"]
    assert (replay["text"], replay["version"], replay["client_id"]) == ("final", 2, "c-9")
    assert "edited_at" in replay
    assert gw.take(bob) == [] and len(messages_in(aws)) == 1

    gw.send(alice, {"action": "delete_message", "id": sent["id"]})
    gw.take(again)
    gw.send(again, {"action": "new_message", "text": "first draft", "client_id": "c-9"})
    [replay] = gw.take(again)
    assert (replay["text"], replay["deleted"], replay["version"]) == ("", True, 3)
    assert [e["type"] for e in gw.take(bob)] == ["message_deleted"]  # not the replay
    assert len(messages_in(aws)) == 1


# --- reactions ----------------------------------------------------------------------------


def test_a_reaction_reaches_the_room_and_twice_is_a_no_op(gw, aws, pair, fanout_queue) -> None:
    alice, bob = pair
    sent = post(gw, alice, "react to me")
    gw.take(bob)

    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
    expected = {"type": "reactions", "id": sent["id"], "room": "lobby",
                "reactions": {"👍": {"count": 1, "users": ["bob"]}}}
    assert gw.take(alice) == [expected] and gw.take(bob) == [expected]

    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
    gw.send(alice, {"action": "react", "id": sent["id"], "emoji": "🎉", "on": False})
    assert gw.take(alice) == [] and gw.take(bob) == []
    assert fanout_queue.depth() == 0  # nothing changed: nothing to send later either
    assert stored(aws, sent["id"])["x:👍"]["SS"] == ["bob"]
    [entry] = history(gw, alice)["messages"]
    assert entry["reactions"] == {"👍": {"count": 1, "users": ["bob"]}}
    assert entry["version"] == 1  # reactions are not versions


@pytest.mark.parametrize("emoji", ["a", "👍👍", "", ":+1:", " 👍", "1", "\u200d", "\ud83d",
                                   5, None, ["👍"]])
def test_a_reaction_is_exactly_one_emoji(gw, aws, pair, emoji) -> None:
    alice, bob = pair
    sent = post(gw, alice, "x")
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": emoji, "on": True})
    assert errors(gw, bob) == ["invalid_message"]
    assert not any(n.startswith("x") for n in stored(aws, sent["id"]))


@pytest.mark.parametrize("on", [None, 1, "true"])
def test_on_must_be_a_boolean(gw, aws, pair, on) -> None:
    alice, bob = pair
    sent = post(gw, alice, "x")
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "👍", "on": on})
    assert errors(gw, bob) == ["invalid_message"]


def test_sequences_flags_and_skin_tones_are_one_emoji_each(gw, aws, pair, configure) -> None:
    configure(rate_limit=RateLimit(10, 10, 100))
    alice, bob = pair
    sent = post(gw, alice, "x")
    for emoji in ("👍🏽", "🇪🇸", "👨‍👩‍👧", "1️⃣", "❤️"):
        gw.send(bob, {"action": "react", "id": sent["id"], "emoji": emoji, "on": True})
        assert errors(gw, bob) == [], emoji
    assert sorted(history(gw, bob)["messages"][0]["reactions"]) == sorted(
        ["👍🏽", "🇪🇸", "👨‍👩‍👧", "1️⃣", "❤️"])


def test_at_most_20_distinct_emoji_and_removing_the_last_user_frees_one(
    gw, aws, pair, configure
) -> None:
    configure(rate_limit=RateLimit(10, 10, 100))
    alice, bob = pair
    sent = post(gw, alice, "x")
    twenty = [chr(0x1F600 + i) for i in range(20)]
    for emoji in twenty:
        gw.send(bob, {"action": "react", "id": sent["id"], "emoji": emoji, "on": True})
    assert errors(gw, bob) == []
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "🎉", "on": True})
    assert errors(gw, bob) == ["invalid_message"]
    gw.send(alice, {"action": "react", "id": sent["id"], "emoji": twenty[0], "on": True})
    assert errors(gw, alice) == []  # one more user on an emoji already there is fine
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": twenty[1], "on": False})
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "🎉", "on": True})
    assert errors(gw, bob) == []
    reactions = history(gw, bob)["messages"][0]["reactions"]
    assert len(reactions) == 20 and "🎉" in reactions and twenty[1] not in reactions
    assert reactions[twenty[0]] == {"count": 2, "users": ["alice", "bob"]}


def test_an_event_names_at_most_20_users_and_says_it_clipped(gw, aws) -> None:
    author = gw.join("author", "crowd")
    sent = post(gw, author, "popular")
    fans = [gw.join(f"fan{i:02d}", "crowd") for i in range(25)]
    for fan in fans:
        gw.send(fan, {"action": "react", "id": sent["id"], "emoji": "🎉", "on": True})
    [entry] = history(gw, author)["messages"]
    assert entry["reactions"] == {"🎉": {"count": 25, "users": [f"fan{i:02d}" for i in range(20)],
                                        "clipped": True}}


def test_a_burst_of_reactions_is_one_event_now_and_one_with_the_latest_summary_later(
    gw, aws, pair, fanout_queue, monkeypatch
) -> None:
    # The functions' clock stands still during the burst, however slow this machine is,
    # and moves past the interval before the delayed send runs.
    now = [time.time()]
    monkeypatch.setitem(Chat.__init__.__kwdefaults__, "clock", lambda: now[0])
    alice, bob = pair
    carol = gw.join("carol", "lobby")
    gw.take(alice), gw.take(bob)
    sent = post(gw, alice, "burst")
    gw.take(bob), gw.take(carol)

    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
    gw.send(carol, {"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
    gw.send(alice, {"action": "react", "id": sent["id"], "emoji": "🎉", "on": True})
    gw.send(bob, {"action": "react", "id": sent["id"], "emoji": "👍", "on": False})

    # The first change went out at once; the rest wait for one delayed send.
    for cid in (alice, bob, carol):
        assert [e["reactions"] for e in gw.take(cid)] == [{"👍": {"count": 1, "users": ["bob"]}}]
    assert fanout_queue.depth() == 1
    now[0] += 1.5
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    latest = {"👍": {"count": 1, "users": ["carol"]}, "🎉": {"count": 1, "users": ["alice"]}}
    for cid in (alice, bob, carol):
        assert [e["reactions"] for e in gw.take(cid)] == [latest]


def test_reactions_have_their_own_rate_limit(gw, aws, pair, configure) -> None:
    configure(rate_limit=RateLimit(messages=2, window_s=60, reactions=3))
    alice, bob = pair
    sent = post(gw, alice, "one")
    for emoji in ("😀", "😁", "😂", "🤣"):
        gw.send(bob, {"action": "react", "id": sent["id"], "emoji": emoji, "on": True})
    assert errors(gw, bob) == ["rate_limited"]
    post(gw, bob, "bob still may talk")  # reactions did not use up the message rate
    assert len(history(gw, bob)["messages"][0]["reactions"]) == 3


def test_edits_and_deletes_count_toward_the_message_rate(gw, aws, pair, configure) -> None:
    configure(rate_limit=RateLimit(messages=3, window_s=60))
    alice, _ = pair
    sent = post(gw, alice, "one")
    gw.send(alice, {"action": "edit_message", "id": sent["id"], "text": "two"})
    gw.send(alice, {"action": "delete_message", "id": sent["id"]})
    gw.take(alice)
    gw.send(alice, {"action": "new_message", "text": "four"})
    assert errors(gw, alice) == ["rate_limited"]
    gw.send(alice, {"action": "edit_message", "id": sent["id"], "text": "five"})
    assert errors(gw, alice) == ["rate_limited"]


# --- read markers and rooms ---------------------------------------------------------------


def test_the_marker_moves_forward_only_and_the_users_other_tabs_follow(gw, aws, pair) -> None:
    alice, bob = pair
    tab2 = gw.join("alice", "lobby")
    elsewhere = gw.join("alice", "kitchen")
    gw.take(alice), gw.take(bob)
    first, second = post(gw, bob, "1"), post(gw, bob, "2")
    gw.take(alice), gw.take(tab2)
    assert history(gw, alice)["read_marker"] is None

    gw.send(alice, {"action": "mark_read", "id": second["id"]})
    assert gw.take(tab2) == [{"type": "read_marker", "room": "lobby", "id": second["id"]}]
    assert gw.take(alice) == [] and gw.take(bob) == [] and gw.take(elsewhere) == []
    gw.send(tab2, {"action": "mark_read", "id": first["id"]})  # back: nothing happens
    gw.send(tab2, {"action": "mark_read", "id": second["id"]})  # the same: nothing
    assert gw.take(alice) == [] and gw.take(tab2) == []
    assert history(gw, tab2)["read_marker"] == second["id"]
    assert history(gw, bob)["read_marker"] is None  # markers are per user
    assert history(gw, elsewhere)["read_marker"] is None  # and per room


def test_mark_read_needs_a_message_of_the_room_and_takes_a_deleted_one(gw, aws, pair) -> None:
    alice, bob = pair
    kitchen = gw.join("alice", "kitchen")
    sent = post(gw, bob, "gone soon")
    gw.send(bob, {"action": "delete_message", "id": sent["id"]})
    gw.send(kitchen, {"action": "mark_read", "id": sent["id"]})
    assert errors(gw, kitchen) == ["not_found"]
    gw.send(alice, {"action": "mark_read", "id": sent["id"]})
    assert errors(gw, alice) == []
    assert history(gw, alice)["read_marker"] == sent["id"]


def test_rooms_lists_unread_counts_newest_activity_first(gw, aws, configure) -> None:
    configure(rate_limit=RateLimit(messages=500, window_s=10))
    me = {room: gw.join("ana", room) for room in ("quiet", "busy", "mine")}
    other = {room: gw.join("ben", room) for room in ("quiet", "busy", "mine")}
    q = post(gw, other["quiet"], "q0")
    gw.send(me["quiet"], {"action": "mark_read", "id": q["id"]})
    b = post(gw, other["busy"], "b0")
    gw.send(me["busy"], {"action": "mark_read", "id": b["id"]})
    m = post(gw, me["mine"], "m0")
    gw.send(me["mine"], {"action": "mark_read", "id": m["id"]})
    post(gw, other["quiet"], "q1")
    for i in range(105):
        post(gw, other["busy"], f"b{i + 1}")
    gone = post(gw, other["mine"], "deleted")
    gw.send(other["mine"], {"action": "delete_message", "id": gone["id"]})
    last = post(gw, me["mine"], "my own is not unread")
    for cid in me.values():
        gw.take(cid)

    gw.send(me["quiet"], {"action": "rooms"})
    [event] = gw.take(me["quiet"])
    assert event == {"type": "rooms", "rooms": [
        {"room": "mine", "unread": 0, "last_message_at": last["created_at"]},
        {"room": "busy", "unread": 100, "last_message_at": event["rooms"][1]["last_message_at"]},
        {"room": "quiet", "unread": 1, "last_message_at": event["rooms"][2]["last_message_at"]},
    ]}
    assert event["rooms"][1]["last_message_at"] > event["rooms"][2]["last_message_at"]
    gw.send(other["busy"], {"action": "rooms"})
    assert gw.take(other["busy"]) == [{"type": "rooms", "rooms": []}]  # ben marked nothing


# --- big rooms ----------------------------------------------------------------------------


SHARD = 3


def test_beyond_one_shard_edits_and_deletes_reach_everyone_through_the_queue(
    gw, aws, configure, fanout_queue
) -> None:
    configure(fanout_shard_size=SHARD)
    members = [gw.join(f"u{i}", "big") for i in range(8)]
    for cid in members:
        gw.take(cid)
    gw.send(members[4], {"action": "new_message", "text": "v1"})
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    [sent] = of_type(gw.take(members[4]), "message")
    for cid in members:
        gw.take(cid)

    gw.send(members[4], {"action": "edit_message", "id": sent["id"], "text": "v2"})
    assert [e["type"] for e in gw.take(members[4])] == ["message_updated"]  # the sender first
    assert fanout_queue.depth() == 2  # the two shards beyond shard 0
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    gw.send(members[4], {"action": "delete_message", "id": sent["id"]})
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    for cid in members:
        got = gw.take(cid)
        if cid != members[4]:
            assert [(e["type"], e["version"]) for e in got] == [
                ("message_updated", 2), ("message_deleted", 3)], cid


def test_beyond_one_shard_only_the_reactor_hears_of_its_reaction(
    gw, aws, configure, fanout_queue
) -> None:
    configure(fanout_shard_size=SHARD)
    members = [gw.join(f"u{i}", "big") for i in range(7)]
    sent = post(gw, members[0], "big news")
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    for cid in members:
        gw.take(cid)
    for cid in members[1:4]:
        gw.send(cid, {"action": "react", "id": sent["id"], "emoji": "👍", "on": True})
    gw.send(members[5], {"action": "mark_read", "id": sent["id"]})
    tab = gw.join("u5", "big")
    gw.send(members[5], {"action": "mark_read", "id": post(gw, members[0], "later")["id"]})
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    for cid in members:
        reactions = of_type(gw.take(cid), "reactions")
        if cid in members[1:4]:
            assert len(reactions) == 1 and reactions[0]["reactions"]["👍"]["count"] >= 1
        else:
            assert reactions == [], cid
    assert of_type(gw.take(tab), "read_marker") == []
    [entry, _] = history(gw, members[6])["messages"]
    assert entry["reactions"] == {"👍": {"count": 3, "users": ["u1", "u2", "u3"]}}


def test_the_marker_item_lives_in_the_users_partition(gw, aws, pair) -> None:
    alice, bob = pair
    sent = post(gw, bob, "x")
    gw.send(alice, {"action": "mark_read", "id": sent["id"]})
    markers = [i for i in items(aws, "chat-messages") if i["pk"]["S"] == "USER#alice"]
    assert [(i["sk"]["S"], i["marker"]["S"]) for i in markers] == [("READ#lobby", sent["id"])]
