"""Rooms beyond one shard: the fan-out queue, the worker, throttling, failures.

The shard size is 3 here (``configure``), so a room of a dozen connections spreads over
four shards. The queue is moto's SQS; ``InProcessStage.run_queue`` is its event source
(the same event and deletion rules as the local gateway's), invoking the real worker.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from chat import bootstrap
from chat.adapters.management_api import ManagementApi
from tests.backend.conftest import TEST_MAX_RECEIVES, items

SHARD = 3


@pytest.fixture
def big(configure):
    configure(fanout_shard_size=SHARD)


def messages(events: list[dict]) -> list[str]:
    return [e["text"] for e in events if e["type"] == "message"]


def join_room(gw, n: int, room: str = "big") -> list[str]:
    members = [gw.join(f"u{i}", room) for i in range(n)]
    for cid in members:
        gw.take(cid)  # join announcements of the first shard
    return members


def shards_of(aws, room: str = "big") -> Counter[str]:
    return Counter(
        i["pk"]["S"] for i in items(aws, "chat-connections")
        if i["pk"]["S"].startswith(f"ROOM#{room}") and i["sk"]["S"].startswith("CONN#")
    )


def test_a_small_room_never_touches_the_queue(gw, aws, big, fanout_queue) -> None:
    members = join_room(gw, SHARD)
    gw.send(members[0], {"action": "new_message", "text": "small"})
    assert all(messages(gw.take(m)) == ["small"] for m in members)
    assert fanout_queue.depth() == 0
    assert list(shards_of(aws)) == ["ROOM#big"]  # one partition, as always


def test_joins_fill_shards_of_the_set_size_and_leaves_free_seats(gw, aws, big) -> None:
    members = join_room(gw, 10)
    assert sorted(shards_of(aws).values()) == [1, 3, 3, 3]
    gw.disconnect(members[1])  # a seat in shard 0
    newcomer = gw.join("late", "big")
    assert shards_of(aws)["ROOM#big"] == 3  # took the free seat in the first shard
    assert gw.take(newcomer) == []


def test_a_message_reaches_every_member_of_every_shard_once(gw, aws, big, fanout_queue) -> None:
    members = join_room(gw, 11)
    gw.send(members[5], {"action": "new_message", "text": "to all", "client_id": "c-1"})
    assert fanout_queue.depth() == 3  # one work item per shard beyond shard 0
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    for cid in members:
        assert messages(gw.take(cid)) == ["to all"], cid  # once each, the sender included


def test_a_shard_under_a_storm_of_429s_still_delivers_everything(
    gw, aws, big, fanout_queue, recorder
) -> None:
    members = join_room(gw, 12)
    for cid in members[SHARD:]:
        recorder.throttle[cid] = 4  # more 429s than one post's retries
    gw.send(members[0], {"action": "new_message", "text": "eventually"})
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    for cid in members:
        assert messages(gw.take(cid)) == ["eventually"], cid
    assert all(recorder.attempts[cid] == 5 for cid in members[SHARD:])
    assert fanout_queue.depth(fanout_queue.dead_letter_url) == 0


def test_shard_zero_posts_refused_past_their_retries_go_to_the_queue(
    gw, aws, big, fanout_queue, recorder
) -> None:
    # new_message posts shard 0 itself; what API Gateway still throttles after a post's
    # three attempts is not lost: the workers deliver it, as they do their own shards'.
    members = join_room(gw, 6)
    throttled = members[1:SHARD]
    before = [recorder.attempts[cid] for cid in throttled]  # the join announcements
    for cid in throttled:
        recorder.throttle[cid] = 4  # more 429s than one post's retries
    gw.send(members[0], {"action": "new_message", "text": "shard zero too"})
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    for cid in members:
        assert messages(gw.take(cid)) == ["shard zero too"], cid
    # Three attempts from new_message, then the worker's: 429, then taken.
    assert [recorder.attempts[cid] - n for cid, n in zip(throttled, before, strict=True)] == [5, 5]


def test_what_is_left_when_time_runs_out_is_requeued_exactly(
    gw, aws, big, fanout_queue, recorder, monkeypatch
) -> None:
    # A worker that has almost no time left posts nothing and re-queues the connections
    # it owes, not the whole shard: the re-queued item names them.
    members = join_room(gw, 6)
    gw.send(members[0], {"action": "new_message", "text": "later"})
    monkeypatch.setattr(bootstrap, "DEADLINE_MARGIN_MS", 29_000)  # of the worker's 30 s
    assert gw.run_queue_once(fanout_queue.sqs, fanout_queue.url)
    (requeued,) = fanout_queue.sqs.receive_message(
        QueueUrl=fanout_queue.url, WaitTimeSeconds=3)["Messages"]
    body = json.loads(requeued["Body"])
    assert sorted(body["connection_ids"]) == sorted(members[SHARD:])
    assert body["attempt"] == 1


def test_a_worker_that_dies_mid_shard_loses_nobody(
    gw, aws, big, fanout_queue, monkeypatch
) -> None:
    members = join_room(gw, 6)
    real_post = ManagementApi.post
    posts = Counter()

    def dies_after_one(self, connection_id, data):
        posts["n"] += 1
        if posts["n"] == 2:  # the worker's second post: the process is gone
            raise SystemExit("killed")
        return real_post(self, connection_id, data)

    gw.send(members[0], {"action": "new_message", "text": "survives"})
    monkeypatch.setattr(ManagementApi, "post", dies_after_one)
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)  # redelivered after the visibility
    for cid in members:
        got = messages(gw.take(cid))
        assert got and set(got) == {"survives"}, cid  # at least once; the page dedupes


def test_a_shard_that_cannot_be_read_is_requeued_whole_and_delivered(
    gw, aws, big, fanout_queue, monkeypatch
) -> None:
    from chat.adapters.dynamodb import Store
    from chat.model import StorageError

    members = join_room(gw, 6)
    gw.send(members[0], {"action": "new_message", "text": "after a hiccup"})
    real = Store.room_shard
    failures = Counter()

    def flaky(self, room, shard=0):
        if shard > 0 and not failures[shard]:
            failures[shard] += 1
            raise StorageError("read timed out")
        return real(self, room, shard)

    monkeypatch.setattr(Store, "room_shard", flaky)
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    assert failures == {1: 1}
    for cid in members:
        assert messages(gw.take(cid)) == ["after a hiccup"], cid
    assert fanout_queue.depth(fanout_queue.dead_letter_url) == 0


def test_a_poison_item_goes_to_the_dead_letter_queue(gw, aws, big, fanout_queue) -> None:
    fanout_queue.sqs.send_message(QueueUrl=fanout_queue.url, MessageBody='{"not": "work"}')
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    assert fanout_queue.depth() == 0
    assert fanout_queue.depth(fanout_queue.dead_letter_url) == 1
    (dead,) = fanout_queue.sqs.receive_message(
        QueueUrl=fanout_queue.dead_letter_url, AttributeNames=["All"])["Messages"]
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= TEST_MAX_RECEIVES


def test_a_410_in_a_shard_removes_only_that_connection(
    gw, aws, big, fanout_queue, recorder
) -> None:
    members = join_room(gw, 7)
    ghost = members[4]  # shard 1
    recorder.gone.add(ghost)
    # Old enough not to be in its own $connect (the 15 s grace): backdate it.
    aws.update_item(
        TableName="chat-connections",
        Key={"pk": {"S": "ROOM#big#1"}, "sk": {"S": f"CONN#{ghost}"}},
        UpdateExpression="SET connected_at = :old",
        ExpressionAttributeValues={":old": {"N": "1"}},
    )
    gw.send(members[0], {"action": "new_message", "text": "hi"})
    gw.run_queue(fanout_queue.sqs, fanout_queue.url)
    left = [i["sk"]["S"] for i in items(aws, "chat-connections")
            if i["sk"]["S"].startswith("CONN#") and i["pk"]["S"].startswith("ROOM#")]
    assert f"CONN#{ghost}" not in left
    assert len(left) == 6
    for cid in members:
        if cid != ghost:
            assert messages(gw.take(cid)) == ["hi"]


def test_typing_and_presence_are_not_sent_beyond_one_shard(gw, aws, big, fanout_queue) -> None:
    members = join_room(gw, 5)  # shards of 3 and 2
    gw.send(members[0], {"action": "typing"})
    late = gw.join("late", "big")
    gw.disconnect(members[4])
    assert fanout_queue.depth() == 0
    for cid in [*members[:4], late]:
        assert gw.take(cid) == [], cid


def test_who_in_a_big_room_gives_a_count_and_a_capped_sorted_list(gw, aws, big) -> None:
    members = join_room(gw, 8)
    gw.send(members[7], {"action": "who"})
    (who,) = gw.take(members[7])
    assert who["count"] == 8
    assert who["users"] == sorted(who["users"]) and 1 <= len(who["users"]) <= SHARD
