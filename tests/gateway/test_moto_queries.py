"""The local DynamoDB: its Query reads only the partition it names (moto alone sorts the
whole table for it), with DynamoDB's order, paging and conditions intact; its server
keeps connections alive; what it returns stays detached from the table; and moto's
internals are used only in ``local_gateway.moto_fence``, whose patches check what they
rely on. The tests here pass with the patches on and off (``LOCAL_GATEWAY_MOTO_PATCHES``).
"""

from __future__ import annotations

import ast
import logging
from pathlib import Path
from typing import Any

import boto3
import pytest

from chat.tables import CONNECTIONS
from local_gateway import moto_fence
from local_gateway.dynamodb import DUMMY_CREDENTIALS, LocalDynamoDB
from local_gateway.settings import REPO_ROOT


def test_a_query_sees_its_partition_only_in_key_order_page_by_page():
    ddb = LocalDynamoDB((CONNECTIONS,))
    ddb.start()
    try:
        client = boto3.client(
            "dynamodb", endpoint_url=ddb.endpoint_url, region_name="us-east-1",
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"])
        table = ddb.table_names[CONNECTIONS]
        for pk in ("a", "b", "c"):
            for n in (3, 1, 4, 0, 2):
                client.put_item(TableName=table, Item={"pk": {"S": pk}, "sk": {"S": f"k{n}"}})

        def page(**kwargs):
            return client.query(TableName=table, KeyConditionExpression="pk = :p",
                                ExpressionAttributeValues={":p": {"S": "b"}}, **kwargs)

        assert [(i["pk"]["S"], i["sk"]["S"]) for i in page()["Items"]] == [
            ("b", f"k{n}") for n in range(5)]
        first = page(Limit=2, ScanIndexForward=False)
        assert [i["sk"]["S"] for i in first["Items"]] == ["k4", "k3"]
        rest = page(Limit=10, ScanIndexForward=False, ExclusiveStartKey=first["LastEvaluatedKey"])
        assert [i["sk"]["S"] for i in rest["Items"]] == ["k2", "k1", "k0"]
        below = client.query(
            TableName=table, KeyConditionExpression="pk = :p AND sk < :s",
            ExpressionAttributeValues={":p": {"S": "c"}, ":s": {"S": "k2"}})
        assert [i["sk"]["S"] for i in below["Items"]] == ["k0", "k1"]
        empty = client.query(TableName=table, KeyConditionExpression="pk = :p",
                             ExpressionAttributeValues={":p": {"S": "nobody"}})
        assert empty["Items"] == []
    finally:
        ddb.stop()


def test_the_local_dynamodb_keeps_connections_alive_and_answers_every_kind_of_request():
    """boto3's pooled connections stay open across calls (werkzeug's server closed each
    one), JSON-protocol calls and moto's other paths both answer, and an error is
    DynamoDB's own, on the same connection."""
    import http.client
    import json as json_

    ddb = LocalDynamoDB((CONNECTIONS,))
    ddb.start()
    try:
        host, port = ddb.endpoint_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)

        def call(target: str, body: dict) -> tuple[int, dict, str]:
            conn.request("POST", "/", body=json_.dumps(body), headers={
                "X-Amz-Target": f"DynamoDB_20120810.{target}",
                "Content-Type": "application/x-amz-json-1.0",
                "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20261202/us-east-1/"
                                 "dynamodb/aws4_request, SignedHeaders=host, Signature=x"})
            answer = conn.getresponse()
            return answer.status, dict(answer.getheaders()), answer.read().decode()

        status, headers, body = call("ListTables", {})
        sock = conn.sock
        assert status == 200 and ddb.table_names[CONNECTIONS] in json_.loads(body)["TableNames"]
        assert headers.get("Connection", "").lower() != "close"
        status, _, body = call("DescribeTable", {"TableName": "no-such-table"})
        assert status == 400 and "ResourceNotFoundException" in body
        status, _, _ = call("DescribeTable", {"TableName": ddb.table_names[CONNECTIONS]})
        assert status == 200
        assert conn.sock is sock  # three answers, one TCP connection
        conn.request("GET", "/moto-api/data.json")  # moto's own pages, outside DynamoDB's API
        answer = conn.getresponse()
        assert answer.status == 200 and "dynamodb" in json_.loads(answer.read())
        conn.close()
    finally:
        ddb.stop()


# -- the fence: moto's internals in one module ----------------------------------------

PATCHES_ON = moto_fence.patches_enabled()


@pytest.fixture
def fenced_moto(monkeypatch) -> Any:
    """moto in this process with the fence's patches as the environment asks for them
    (``LOCAL_GATEWAY_MOTO_PATCHES``), undone after, and a table ``t`` (pk, sk) with an
    index ``by_user`` (user, sk)."""
    from moto import mock_aws
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table

    monkeypatch.setattr(Table, "query", Table.query)
    monkeypatch.setattr(models.DynamoDBBackend, "transact_write_items",
                        models.DynamoDBBackend.transact_write_items)
    monkeypatch.setattr(moto_fence, "_installed", set())
    installed = moto_fence.install()
    assert installed == (["partition_query", "transaction_snapshot"] if PATCHES_ON else [])
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1",
                              aws_access_key_id="t", aws_secret_access_key="t")
        client.create_table(
            TableName="t",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                  {"AttributeName": "sk", "AttributeType": "S"},
                                  {"AttributeName": "user", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                       {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{
                "IndexName": "by_user",
                "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"},
                              {"AttributeName": "sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"}}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


NESTED = {"pk": {"S": "p"}, "sk": {"S": "1"}, "user": {"S": "ana"},
          "m": {"M": {"l": {"L": [{"S": "a"}, {"N": "1"}]}}}, "ss": {"SS": ["x"]}}


def _mutate(item: dict[str, Any]) -> None:
    item["m"]["M"]["l"]["L"].append({"S": "changed"})
    item["m"]["M"]["new"] = {"S": "changed"}
    item["ss"]["SS"].append("changed")
    item["extra"] = {"S": "changed"}


def test_an_item_returned_and_changed_by_the_caller_does_not_change_the_table(fenced_moto):
    c = fenced_moto
    key = {"pk": {"S": "p"}, "sk": {"S": "1"}}
    c.put_item(TableName="t", Item=NESTED)
    query = {"TableName": "t", "KeyConditionExpression": "pk = :p",
             "ExpressionAttributeValues": {":p": {"S": "p"}}}
    _mutate(c.query(**query)["Items"][0])
    _mutate(c.get_item(TableName="t", Key=key)["Item"])
    _mutate(c.transact_get_items(
        TransactItems=[{"Get": {"TableName": "t", "Key": key}}])["Responses"][0]["Item"])
    assert c.get_item(TableName="t", Key=key)["Item"] == NESTED
    assert c.query(**query)["Items"] == [NESTED]
    # Under the API, as moto's own response code gets them: a Query's items are
    # copies, whatever the patch does to find them.
    backend = moto_fence.dynamodb_backend()
    for index_name in (None, "by_user"):
        hash_key = {"S": "ana"} if index_name else {"S": "p"}
        items, _, _ = backend.query("t", hash_key, None, [], None, None, True, None,
                                    index_name)
        assert len(items) == 1
        items[0].attrs["extra"] = items[0].attrs["pk"]
        items[0].attrs["m"].value["new"] = items[0].attrs["pk"]
    assert c.get_item(TableName="t", Key=key)["Item"] == NESTED


def test_an_index_query_is_answered_from_the_index(fenced_moto):
    """moto's backend passes ``index_name`` by position: the patch reads it by name."""
    c = fenced_moto
    for pk, sk, user in (("a", "1", "ana"), ("b", "2", "ana"), ("ana", "3", "bob")):
        c.put_item(TableName="t", Item={"pk": {"S": pk}, "sk": {"S": sk}, "user": {"S": user}})
    by_index = c.query(TableName="t", IndexName="by_user", KeyConditionExpression="#u = :u",
                       ExpressionAttributeNames={"#u": "user"},
                       ExpressionAttributeValues={":u": {"S": "ana"}})["Items"]
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in by_index] == [("a", "1"), ("b", "2")]
    on_table = c.query(TableName="t", KeyConditionExpression="pk = :p",
                       ExpressionAttributeValues={":p": {"S": "ana"}})["Items"]
    assert [i["sk"]["S"] for i in on_table] == ["3"]


def test_a_cancelled_transaction_leaves_every_item_it_touched_as_it_was(fenced_moto):
    c = fenced_moto
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


def test_a_patch_whose_moto_parts_are_gone_is_left_off_with_one_warning(monkeypatch, caplog):
    from moto.dynamodb.models.table import Table

    def query(self, hash_key, *args, **kwargs):  # no index_name: moto changed
        raise AssertionError("not called")

    monkeypatch.setattr(Table, "query", query)
    monkeypatch.setattr(moto_fence, "_installed", set())
    with caplog.at_level(logging.WARNING, logger="local_gateway"):
        moto_fence.install({"LOCAL_GATEWAY_MOTO_PATCHES": "on"})
    assert Table.query is query  # left as it was
    warnings = [r.getMessage() for r in caplog.records if "partition_query" in r.getMessage()]
    assert warnings == [
        "moto patch partition_query left off: Table.query has no parameter 'index_name' "
        "(plain moto still works, slower for big tables)"]
    monkeypatch.setattr(moto_fence, "_installed", set())
    assert moto_fence.install({"LOCAL_GATEWAY_MOTO_PATCHES": "off"}) == []


def test_moto_is_imported_only_through_its_public_entry_points_outside_the_fence():
    public = {"moto", "moto.server"}
    fence = REPO_ROOT / "local_gateway" / "moto_fence.py"
    offenders = []
    for folder in ("local_gateway", "functions", "bench", "infra"):
        for path in (REPO_ROOT / folder).rglob("*.py"):
            if path == fence or "node_modules" in path.parts or "cdk.out" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                else:
                    continue
                offenders += [f"{path.relative_to(REPO_ROOT)}: {name}" for name in names
                              if name.split(".")[0] == "moto" and name not in public]
    assert offenders == []


def test_the_fences_list_names_every_patch_it_installs():
    header = Path(moto_fence.__file__).read_text().split('"""')[1]
    for patch in moto_fence.PATCHES:
        assert f"Patch ``{patch.name}``" in header
    assert header.count("Patch ``") == len(moto_fence.PATCHES)
