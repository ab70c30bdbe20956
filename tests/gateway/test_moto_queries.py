"""The local DynamoDB's Query reads only the partition it names (moto alone sorts the
whole table for it), with DynamoDB's order, paging and conditions intact; and its server
keeps connections alive."""

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
