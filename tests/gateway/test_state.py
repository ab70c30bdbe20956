"""Tables survive restarts through ``<state-dir>/state.json``, written atomically."""

from __future__ import annotations

import json
import logging
import time

import pytest

from local_gateway import state
from local_gateway.state import STATE_FILE, decode_item, encode_item, load_state, save_state
from tests.gateway.conftest import fake_gateway, open_client

pytestmark = pytest.mark.timeout(90)


def stored(client, put=None):
    frame = {"action": "store"} if put is None else {"action": "store", "put": put}
    return client.request(frame, "stored")["items"]


def test_items_survive_a_restart(state_dir):
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client, "m1") == ["m1"]
        assert stored(client, "m2") == ["m1", "m2"]
    assert (state_dir / STATE_FILE).exists()
    with fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client) == ["m1", "m2"]


def test_state_is_saved_every_few_seconds_while_it_changes(state_dir):
    path = state_dir / STATE_FILE
    with fake_gateway(state_dir=state_dir, save_interval_s=0.2) as gw:
        with open_client(gw.websocket_url) as client:
            stored(client, "early")
        deadline = time.monotonic() + 10
        while True:  # no stop, no explicit save: the periodic save must write it
            if path.exists() and "early" in path.read_text():
                break
            assert time.monotonic() < deadline, "state was not saved while running"
            time.sleep(0.05)
        saved = json.loads(path.read_text())
        items = saved["tables"]["Messages"]
        assert {"pk": {"S": "ROOM#t"}, "sk": {"S": "early"}, "text": {"S": "early"}} in items


@pytest.mark.parametrize("content", [
    "{not json",
    "",
    '{"format": "something-else", "tables": {}}',
    '{"format": "serverless-chat-local-state/1", "tables": {"Messages": "oops"}}',
])
def test_a_corrupt_state_file_gives_a_clear_message_and_a_fresh_start(state_dir, caplog,
                                                                      content):
    state_dir.mkdir(parents=True)
    (state_dir / STATE_FILE).write_text(content)
    with caplog.at_level(logging.WARNING, logger="local_gateway"), \
            fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client) == []
        assert stored(client, "after") == ["after"]
    assert any("unreadable" in r.getMessage() and "empty tables" in r.getMessage()
               for r in caplog.records)
    aside = list(state_dir.glob(f"{STATE_FILE}.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_text() == content  # kept for inspection
    # The new file is good: the next start restores from it, no second warning.
    assert "after" in (state_dir / STATE_FILE).read_text()


def test_items_dynamodb_refuses_give_a_fresh_start(state_dir, caplog):
    state_dir.mkdir(parents=True)
    bad = {"format": state.STATE_FORMAT,
           "tables": {"Messages": [{"no_key": {"S": "x"}}]}}
    (state_dir / STATE_FILE).write_text(json.dumps(bad))
    with caplog.at_level(logging.WARNING, logger="local_gateway"), \
            fake_gateway(state_dir=state_dir) as gw, open_client(gw.websocket_url) as client:
        assert stored(client) == []
    assert any("could not be loaded" in r.getMessage() for r in caplog.records)
    assert len(list(state_dir.glob(f"{STATE_FILE}.corrupt-*"))) == 1  # kept, not overwritten


def test_a_missing_state_file_is_a_fresh_start(state_dir, caplog):
    with caplog.at_level(logging.INFO, logger="local_gateway"):
        assert load_state(state_dir) is None
    assert any("No saved state" in r.getMessage() for r in caplog.records)


def test_writes_are_atomic_a_failed_save_leaves_the_previous_file(state_dir, monkeypatch):
    save_state(state_dir, {"Messages": [{"pk": {"S": "a"}, "sk": {"S": "b"}}]})
    before = (state_dir / STATE_FILE).read_text()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(state.json, "dump", crash)
    with pytest.raises(OSError):
        save_state(state_dir, {"Messages": []})
    assert (state_dir / STATE_FILE).read_text() == before
    assert [p.name for p in state_dir.iterdir()] == [STATE_FILE]  # no temp file left


def test_every_attribute_type_round_trips_through_the_file(state_dir):
    item = {
        "pk": {"S": "p"}, "sk": {"S": "s"}, "n": {"N": "1.5"}, "b": {"B": b"\x00\xff"},
        "bs": {"BS": [b"a", b"b"]}, "ss": {"SS": ["x"]}, "ns": {"NS": ["1"]},
        "m": {"M": {"inner": {"B": b"\x01"}, "l": {"L": [{"BOOL": True}, {"NULL": True}]}}},
    }
    save_state(state_dir, {"T": [encode_item(item)]})
    assert decode_item(load_state(state_dir).tables["T"][0]) == item


def test_concurrent_updates_to_one_item_are_atomic_as_on_dynamodb():
    # moto alone loses increments under concurrent requests; the handlers' rate limit
    # relies on DynamoDB's atomic "ADD".
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    from chat.tables import CONNECTIONS
    from local_gateway.dynamodb import LocalDynamoDB

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


def test_expired_items_are_deleted_like_dynamodb_ttl_and_not_saved(state_dir):
    import boto3

    from chat.tables import CONNECTIONS

    with fake_gateway(state_dir=state_dir) as gw:
        ddb = gw.gateway.dynamodb
        client = boto3.client("dynamodb", endpoint_url=ddb.endpoint_url,
                              region_name="us-east-1", aws_access_key_id="t",
                              aws_secret_access_key="t")
        table = ddb.table_names[CONNECTIONS]
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
