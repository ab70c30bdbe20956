"""The local DynamoDB's Query reads only the partition it names (moto alone sorts the
whole table for it), with DynamoDB's order, paging and conditions intact."""

from __future__ import annotations

import boto3

from chat.tables import CONNECTIONS
from local_gateway.dynamodb import DUMMY_CREDENTIALS, LocalDynamoDB


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
