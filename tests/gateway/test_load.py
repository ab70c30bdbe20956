"""The local gateway under load: every message delivered once, to its room only.

The short seed load here runs through ``python -m local_gateway`` exactly as
``bench/e2e.py`` and ``make soak`` do (``bench.e2e.run_load``) and asserts counts only:
how fast it went is the bench's business, never a test's. Also here: what the gateway
does to keep up must not change what the handlers see (moto's answers and transactions)
and the recovery after a crash must not starve the clients that come back.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest

from bench.e2e import load_local_gateway
from local_gateway.dynamodb import (
    fast_body,
    install_cheap_transactions,
    install_fast_results,
    install_partition_queries,
)
from local_gateway.testing import GatewayProcess
from tests.gateway.conftest import open_client, run_async, unique_room

pytestmark = pytest.mark.timeout(300)


def test_a_short_seed_load_delivers_every_message_once_and_only_to_its_room():
    # ~50 clients in two rooms, each sending every 2.5 s for a few seconds: the seed's
    # load shape (bench/e2e.py --clients 50 --rate-per-client 0.4), shortened.
    result, output = run_async(load_local_gateway(
        clients=50, rooms=2, rate_per_client=0.4, seconds=4, grace_s=180))
    summary = result.summary()
    assert result.sent >= 50, summary
    assert result.expected == result.sent * 25, summary
    assert (result.lost, result.duplicates, result.cross_room) == (0, 0, 0), (summary, output)
    assert (result.throttled, result.errors) == (0, {}), summary
    assert "TIMEOUT" not in output and "Traceback" not in output, output


# -- moto as the handlers see it --------------------------------------------------------


@pytest.fixture
def moto_dynamodb(monkeypatch) -> Any:
    """moto in this process, with the fast serializer checked against moto's own on
    every answer, and the plain results, cheap transaction snapshot and partition queries installed
    (all undone after)."""
    from moto import mock_aws
    from moto.dynamodb import models, responses
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoResult

    original = DynamoResult.execute_result
    checked: list[str] = []

    def execute_result(self: Any, context: Any) -> Any:
        status, headers, body = original(self, context)
        fast = fast_body(context.operation_model, self.result)
        if fast is not None:
            assert json.loads(fast) == json.loads(body), context.operation_model.name
            assert status == 200 and headers["Content-Type"] == "application/x-amz-json-1.0"
            checked.append(context.operation_model.name)
        return status, headers, body

    monkeypatch.setattr(DynamoResult, "execute_result", execute_result)
    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items",
                        models.DynamoDBBackend.transact_write_items)
    assert install_cheap_transactions()
    monkeypatch.setattr(Table, "query", Table.query)
    assert install_partition_queries()
    monkeypatch.setattr(responses, "dynamo_to_dict", responses.dynamo_to_dict)
    assert install_fast_results()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1",
                              aws_access_key_id="t", aws_secret_access_key="t")
        client.create_table(
            TableName="t",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        client.checked = checked
        yield client


EVERY_TYPE = {
    "pk": {"S": "p"}, "sk": {"S": "1"}, "n": {"N": "1.5"}, "b": {"B": b"\x00\xffbin"},
    "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2"]}, "bs": {"BS": [b"x", b"y"]},
    "bool": {"BOOL": False}, "null": {"NULL": True},
    "m": {"M": {"s": {"S": "josé"}, "l": {"L": [{"N": "3"}, {"B": b"z"}, {"M": {}}]}}},
}


def test_moto_answers_item_operations_exactly_as_its_own_serializer(moto_dynamodb):
    c = moto_dynamodb
    key = {"pk": {"S": "p"}, "sk": {"S": "1"}}
    c.put_item(TableName="t", Item=EVERY_TYPE, ReturnConsumedCapacity="TOTAL")
    assert c.get_item(TableName="t", Key=key)["Item"] == EVERY_TYPE
    c.get_item(TableName="t", Key={"pk": {"S": "none"}, "sk": {"S": "1"}})
    page = c.query(TableName="t", KeyConditionExpression="pk = :p", Limit=1,
                   ExpressionAttributeValues={":p": {"S": "p"}}, ReturnConsumedCapacity="TOTAL")
    assert page["Items"] == [EVERY_TYPE] and page["Count"] == 1
    c.query(TableName="t", KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": {"S": "nobody"}})
    c.update_item(TableName="t", Key=key, UpdateExpression="ADD n :one",
                  ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="ALL_NEW")
    c.put_item(TableName="t", Item={**key, "sk": {"S": "2"}})
    c.scan(TableName="t")
    c.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {**key, "sk": {"S": "3"}}}}]})
    c.batch_get_item(RequestItems={"t": {"Keys": [key]}})
    c.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": key}}])
    c.delete_item(TableName="t", Key=key, ReturnValues="ALL_OLD")
    assert {"PutItem", "GetItem", "Query", "UpdateItem", "Scan", "BatchGetItem",
            "DeleteItem"} <= set(c.checked)


def test_moto_results_become_plain_values_exactly_as_moto_makes_them(monkeypatch):
    from moto.dynamodb import responses
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    moto_own = responses.dynamo_to_dict
    calls: list[Any] = []

    def counted(obj: Any) -> Any:
        calls.append(obj)
        return moto_own(obj)

    monkeypatch.setattr(responses, "dynamo_to_dict", counted)
    assert install_fast_results()
    plain = responses.dynamo_to_dict
    assert plain is not counted
    every_type = Item(DynamoType({"S": "p"}), DynamoType({"S": "1"}), EVERY_TYPE)
    wire_binary = DynamoType({"B": "AP9iaW4="})  # as it arrives: base64 text
    result = {
        "Items": [every_type.attrs, {"pk": DynamoType({"S": "q"}), "b": wire_binary}],
        "Count": 2, "ScannedCount": 2, "Attributes": every_type.attrs,
        "ConsumedCapacity": {"TableName": "t", "CapacityUnits": 1.0},
        "LastEvaluatedKey": {"pk": {"S": "p"}}, "Nothing": None,
        "When": datetime.datetime(2026, 12, 2, tzinfo=datetime.UTC),
        "Item": every_type,
    }
    assert plain(result) == moto_own(result)
    # A page of members (strings and numbers) never takes moto's own walk.
    member = Item(DynamoType({"S": "ROOM#r#0"}), DynamoType({"S": "CONN#c"}), {
        "pk": {"S": "ROOM#r#0"}, "sk": {"S": "CONN#c"}, "username": {"S": "ana"},
        "connected_at": {"N": "1764633600"}, "flag": {"BOOL": True}, "none": {"NULL": True}})
    calls.clear()
    page = {"Items": [member.attrs] * 3, "Count": 3, "ScannedCount": 3}
    assert plain(page) == moto_own(page) and calls == []


def test_a_cancelled_transaction_leaves_every_item_it_touched_as_it_was(moto_dynamodb):
    c = moto_dynamodb
    counter = {"pk": {"S": "p"}, "sk": {"S": "counter"}}
    c.put_item(TableName="t", Item={**counter, "n": {"N": "1"}})
    c.put_item(TableName="t", Item={"pk": {"S": "p"}, "sk": {"S": "old"}, "v": {"S": "a"}})
    untouched = {"pk": {"S": "u"}, "sk": {"S": "1"}, "v": {"S": "kept"}}
    c.put_item(TableName="t", Item=untouched)
    with pytest.raises(c.exceptions.TransactionCanceledException):
        c.transact_write_items(TransactItems=[
            {"Update": {"TableName": "t", "Key": counter, "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": "t",
                     "Item": {"pk": {"S": "p"}, "sk": {"S": "old"}, "v": {"S": "b"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": "new"}}}},
            {"Put": {"TableName": "t", "Item": {"pk": {"S": "q"}, "sk": {"S": "1"}}}},
            {"ConditionCheck": {"TableName": "t", "Key": {"pk": {"S": "p"}, "sk": {"S": "x"}},
                                "ConditionExpression": "attribute_exists(pk)"}},
        ])
    items = c.query(TableName="t", KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "p"}})["Items"]
    assert {i["sk"]["S"]: i for i in items} == {
        "counter": {**counter, "n": {"N": "1"}},
        "old": {"pk": {"S": "p"}, "sk": {"S": "old"}, "v": {"S": "a"}},
    }
    assert c.scan(TableName="t")["Count"] == 3  # nothing in the new partition "q"
    assert c.get_item(TableName="t", Key={"pk": {"S": "u"}, "sk": {"S": "1"}})["Item"] == untouched
    c.transact_write_items(TransactItems=[
        {"Update": {"TableName": "t", "Key": counter, "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": "t", "Key": {"pk": {"S": "p"}, "sk": {"S": "old"}}}},
    ])
    items = c.query(TableName="t", KeyConditionExpression="pk = :p",
                    ExpressionAttributeValues={":p": {"S": "p"}})["Items"]
    assert items == [{**counter, "n": {"N": "2"}}]


# -- recovery after a crash ---------------------------------------------------------------


def _wait_for(check: Any, what: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def _open_in_state(state_dir: Path) -> int:
    try:
        document = json.loads((state_dir / "state.json").read_text())
    except (OSError, ValueError):
        return 0
    return len(document.get("open_connections", []))


async def _join_many(url: str, room: str, count: int) -> list[Any]:
    import websockets

    sockets = []
    for n in range(count):
        query = urlencode({"username": f"crash{n}", "room": room})
        sockets.append(await websockets.connect(f"{url}?{query}", open_timeout=60))
    return sockets


def test_a_restart_after_a_crash_under_load_recovers_in_the_background(tmp_path):
    """The next start runs every orphan's $disconnect, one at a time, while a new client
    is served from the first frame: no invocation times out, no frame gets internal."""
    state_dir = tmp_path / "state"
    room, orphans = unique_room(), 40
    first = GatewayProcess(state_dir=state_dir, args=["--save-interval", "0.5"]).start()

    async def crash_with_connections_open() -> None:
        sockets = await _join_many(first.websocket_url, room, orphans)
        await asyncio.to_thread(
            _wait_for, lambda: _open_in_state(state_dir) >= orphans, "the state file to list them")
        first.stop(signal.SIGKILL)
        for ws in sockets:
            ws.transport.abort()

    try:
        run_async(crash_with_connections_open())
    finally:
        first.stop(signal.SIGKILL)

    with GatewayProcess(state_dir=state_dir) as second:
        assert f"{orphans} connection(s) were open" in second.output
        with open_client(second.websocket_url, urlencode({"username": "late", "room": room})) as c:
            for n in range(5):
                text = f"still here {n} {uuid.uuid4().hex[:6]}"
                event = c.request({"action": "new_message", "text": text}, "message")
                assert event["text"] == text, event
            assert not [e for e in c.skipped if e.get("type") == "error"], c.skipped

            def recovered() -> bool:
                return c.request({"action": "who"}, "who")["users"] == ["late"]

            _wait_for(recovered, "every orphan's $disconnect")
        _wait_for(lambda: "Ran $disconnect for" in second.output, "the recovery's last line")
        assert f"Ran $disconnect for {orphans} of {orphans}" in second.output
        assert "TIMEOUT" not in second.output, second.output
