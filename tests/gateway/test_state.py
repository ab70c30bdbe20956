"""Tables survive restarts: a journal of every write moto accepted, compacted now and then
into ``<state-dir>/state.json`` (``local_gateway.journal``)."""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from chat.tables import CONNECTIONS, MESSAGES
from local_gateway import journal, moto_fence
from local_gateway.dynamodb import LocalDynamoDB
from local_gateway.journal import STATE_FILE, Snapshot, StateError, write_snapshot
from tests.gateway.conftest import fake_gateway, open_client

pytestmark = pytest.mark.timeout(120)


def stored(client, put=None):
    frame = {"action": "store"} if put is None else {"action": "store", "put": put}
    return client.request(frame, "stored")["items"]


def client_of(gw):
    ddb = gw.gateway.dynamodb
    return boto3.client("dynamodb", endpoint_url=ddb.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="t", aws_secret_access_key="t")


def test_items_survive_a_restart(state_dir):
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client, "m1") == ["m1"]
        assert stored(client, "m2") == ["m1", "m2"]
    assert (state_dir / STATE_FILE).exists()
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client) == ["m1", "m2"]


def test_state_is_compacted_every_few_seconds_while_it_changes(state_dir):
    path = state_dir / STATE_FILE
    with fake_gateway(state_dir=state_dir, save_interval_s=0.2) as gw:
        with open_client(gw.websocket_url) as client:
            stored(client, "early")
        deadline = time.monotonic() + 30
        while True:  # no stop, no explicit save: the periodic compaction must write it
            if path.exists() and "early" in path.read_text():
                break
            assert time.monotonic() < deadline, "state was not compacted while running"
            time.sleep(0.05)
        saved = json.loads(path.read_text())
        items = saved["tables"]["Messages"]
        assert {"pk": {"S": "ROOM#t"}, "sk": {"S": "early"}, "text": {"S": "early"}} in items
    # The segments the last snapshot includes are gone; the one written since is after it.
    saved = json.loads(path.read_text())
    assert journal.segment_numbers(state_dir) == [saved["journal"] + 1]


def test_writes_after_the_last_snapshot_are_replayed_from_the_journal(state_dir):
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        stored(client, "in the snapshot")
        gw.call(gw.gateway.save())
        stored(client, "in the journal only")
        gw.gateway.state.save = _no_final_save  # as if killed: no compaction at the end
    saved = json.loads((state_dir / STATE_FILE).read_text())
    assert "in the journal only" not in json.dumps(saved)
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client) == ["in the journal only", "in the snapshot"]


async def _no_final_save() -> None:
    return None


@pytest.mark.parametrize("content", [
    "{not json",
    "",
    '{"format": "something-else", "tables": {}}',
    '{"format": "serverless-chat-local-state/1", "tables": {"Messages": "oops"}}',
    '{"format": "serverless-chat-local-state/1", "tables": {"Messages": [{"pk": {"S": "a"}',
])
def test_a_corrupt_state_file_is_refused_and_left_as_it_was(state_dir, content):
    state_dir.mkdir(parents=True)
    path = state_dir / STATE_FILE
    path.write_text(content)
    with pytest.raises(StateError) as refused:
        fake_gateway(state_dir=state_dir).start()
    message = str(refused.value)
    assert str(path) in message and "not starting" in message and f"mv {path}" in message
    assert "\n" not in message
    assert path.read_text() == content  # never written over
    assert [p.name for p in state_dir.iterdir() if p.name != ".lock"] == [STATE_FILE]


def test_items_dynamodb_refuses_are_refused_too(state_dir):
    state_dir.mkdir(parents=True)
    bad = {"format": journal.STATE_FORMAT, "tables": {"Messages": [{"no_key": {"S": "x"}}]}}
    (state_dir / STATE_FILE).write_text(json.dumps(bad))
    with pytest.raises(StateError, match="has items DynamoDB refuses in table Messages"):
        fake_gateway(state_dir=state_dir).start()
    assert json.loads((state_dir / STATE_FILE).read_text()) == bad


def test_a_missing_state_file_is_a_fresh_start(state_dir, caplog):
    with caplog.at_level(logging.INFO, logger="local_gateway"), \
            fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client) == []
    assert any("starting with empty tables" in r.getMessage() for r in caplog.records)


def test_a_torn_last_journal_record_is_dropped_and_the_rest_replayed(state_dir, caplog):
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        stored(client, "kept")
        stored(client, "torn")
        gw.gateway.state.save = _no_final_save
    [number] = journal.segment_numbers(state_dir)
    path = journal.segment_path(state_dir, number)
    data = path.read_bytes()
    start = data.rfind(b"\n", 0, data.index(b'"torn"')) + 1
    end = data.index(b"\n", start)
    path.write_bytes(data[:(start + end) // 2])  # a crash in the middle of that write
    with caplog.at_level(logging.WARNING, logger="local_gateway"), \
            fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client) == ["kept"]
    assert any("was cut short" in r.getMessage() and str(path) in r.getMessage()
               for r in caplog.records)


def test_a_journal_damaged_before_its_end_is_refused(state_dir):
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        stored(client, "one")
        stored(client, "two")
        gw.gateway.state.save = _no_final_save
    [number] = journal.segment_numbers(state_dir)
    path = journal.segment_path(state_dir, number)
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"PutItem", b"PutItex")
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(StateError, match=f"Journal {path} is corrupt at byte"):
        fake_gateway(state_dir=state_dir).start()


def test_a_failed_snapshot_leaves_the_previous_file(state_dir, monkeypatch):
    write_snapshot(state_dir, Snapshot({"Messages": [{"pk": {"S": "a"}, "sk": {"S": "b"}}]},
                                       [], 0))
    before = (state_dir / STATE_FILE).read_text()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(journal.json, "dump", crash)
    with pytest.raises(OSError):
        write_snapshot(state_dir, Snapshot({"Messages": []}, [], 1))
    assert (state_dir / STATE_FILE).read_text() == before
    assert [p.name for p in state_dir.iterdir()] == [STATE_FILE]  # no temp file left


EVERY_TYPE = {
    "pk": {"S": "p"}, "sk": {"S": "s"}, "n": {"N": "1.5"}, "b": {"B": b"\x00\xff"},
    "bs": {"BS": [b"a", b"b"]}, "ss": {"SS": ["x"]}, "ns": {"NS": ["1"]},
    "m": {"M": {"inner": {"B": b"\x01"}, "l": {"L": [{"BOOL": True}, {"NULL": True}]}}},
}


def test_every_attribute_type_round_trips_through_the_snapshot_and_the_journal(state_dir):
    table = CONNECTIONS.logical_id
    with fake_gateway(state_dir=state_dir) as gw:
        c, name = client_of(gw), gw.gateway.dynamodb.table_names[CONNECTIONS]
        c.put_item(TableName=name, Item=EVERY_TYPE)
        gw.call(gw.gateway.save())
        c.put_item(TableName=name, Item={**EVERY_TYPE, "sk": {"S": "after"}})
        gw.gateway.state.save = _no_final_save
    saved = json.loads((state_dir / STATE_FILE).read_text())["tables"][table]
    assert len(saved) == 1
    with fake_gateway(state_dir=state_dir) as gw:
        c, name = client_of(gw), gw.gateway.dynamodb.table_names[CONNECTIONS]
        for sk in ("s", "after"):
            key = {"pk": {"S": "p"}, "sk": {"S": sk}}
            assert c.get_item(TableName=name, Key=key)["Item"] == {**EVERY_TYPE, "sk": {"S": sk}}


def test_a_snapshot_never_holds_the_functions_calls(state_dir, monkeypatch):
    """The snapshot is written by a copy of moto's process: calls made while it is being
    written are answered at once, not after it."""
    # The copy Scans through moto's API (~1 s for these items), not its fast read.
    monkeypatch.setenv(moto_fence.PATCHES_ENV, "off")
    with fake_gateway(state_dir=state_dir) as gw:
        c, name = client_of(gw), gw.gateway.dynamodb.table_names[MESSAGES]
        for start in range(0, 3000, 25):
            c.batch_write_item(RequestItems={name: [
                {"PutRequest": {"Item": {"pk": {"S": f"ROOM#{n % 7}"}, "sk": {"S": f"{n:06d}"},
                                         "text": {"S": "x" * 200}}}}
                for n in range(start, start + 25)]})
        saving = threading.Thread(target=gw.call, args=(gw.gateway.save(),), daemon=True)
        answered = []
        saving.start()
        while saving.is_alive():
            c.get_item(TableName=name, Key={"pk": {"S": "ROOM#1"}, "sk": {"S": "000001"}})
            answered.append(saving.is_alive())
            if len(answered) >= 5:
                break
        saving.join(timeout=120)
        # Five reads came back while the snapshot of 3,000 items was still being written.
        assert answered == [True] * 5
        saved = json.loads((state_dir / STATE_FILE).read_text())
        assert len(saved["tables"][MESSAGES.logical_id]) == 3000


def test_one_gateway_per_state_directory(state_dir):
    with fake_gateway(state_dir=state_dir):
        second = LocalDynamoDB()
        second.start()
        try:
            started = time.monotonic()
            with pytest.raises(StateError, match="is in use by another local gateway"):
                second.open_state(state_dir)
            assert time.monotonic() - started > 1  # it waited for the lock first
        finally:
            second.stop()


def test_concurrent_updates_to_one_item_are_atomic_as_on_dynamodb():
    # moto alone loses increments under concurrent requests; the handlers' rate limit
    # relies on DynamoDB's atomic "ADD".
    ddb = LocalDynamoDB()
    ddb.start()
    try:
        client = boto3.client("dynamodb", endpoint_url=ddb.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="t", aws_secret_access_key="t")

        def add(_):
            answer = client.update_item(
                TableName=ddb.table_names[CONNECTIONS],
                Key={"pk": {"S": "RATE#x"}, "sk": {"S": "1"}},
                UpdateExpression="ADD n :one",
                ExpressionAttributeValues={":one": {"N": "1"}},
                ReturnValues="UPDATED_NEW",
            )
            return int(answer["Attributes"]["n"]["N"])

        with ThreadPoolExecutor(32) as pool:
            totals = sorted(pool.map(add, range(300)))
        assert totals == list(range(1, 301))
    finally:
        ddb.stop()


def test_expired_items_are_deleted_like_dynamodb_ttl_and_not_kept(state_dir):
    with fake_gateway(state_dir=state_dir) as gw:
        client = client_of(gw)
        table = gw.gateway.dynamodb.table_names[CONNECTIONS]
        now = int(time.time())
        for sk, expires in (("old", now - 5), ("new", now + 3600)):
            client.put_item(TableName=table, Item={
                "pk": {"S": "ttl"}, "sk": {"S": sk}, "expires_at": {"N": str(expires)}})
        client.put_item(TableName=table, Item={"pk": {"S": "ttl"}, "sk": {"S": "forever"}})
        gw.call(gw.gateway.save())
        left = client.query(TableName=table, KeyConditionExpression="pk = :p",
                            ExpressionAttributeValues={":p": {"S": "ttl"}})["Items"]
        assert sorted(i["sk"]["S"] for i in left) == ["forever", "new"]
    saved = json.loads((state_dir / STATE_FILE).read_text())["tables"]["Connections"]
    assert sorted(i["sk"]["S"] for i in saved if i["pk"]["S"] == "ttl") == ["forever", "new"]
    with fake_gateway(state_dir=state_dir) as gw:
        left = client_of(gw).query(
            TableName=gw.gateway.dynamodb.table_names[CONNECTIONS],
            KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "ttl"}})
        assert sorted(i["sk"]["S"] for i in left["Items"]) == ["forever", "new"]
