"""Tiny test-only handlers: they exercise the gateway, not the chat.

They run inside the gateway's execution environments exactly like the real ones
(imported by name, ``CALLBACK_URL`` from the environment, replies through boto3's
``apigatewaymanagementapi``), so the tests see what a real handler would see.
"""

from __future__ import annotations

import json
import os
import time

import boto3

_management = None
_invocations = 0  # module state: survives between warm invocations of one environment


def _client():
    global _management
    if _management is None:
        _management = boto3.client("apigatewaymanagementapi",
                                   endpoint_url=os.environ["CALLBACK_URL"])
    return _management


def _reply(event, payload):
    _client().post_to_connection(
        ConnectionId=event["requestContext"]["connectionId"],
        Data=json.dumps(payload).encode(),
    )


def connect(event, context):
    query = event.get("queryStringParameters") or {}
    if query.get("refuse"):
        return {"statusCode": int(query["refuse"]), "body": "refused"}
    if query.get("boom"):
        raise RuntimeError("connect exploded")
    if query.get("post_self"):
        # API Gateway refuses posts to a connection during its own $connect.
        try:
            _reply(event, {"type": "too-early"})
        except _client().exceptions.GoneException:
            table_put("connect-post", "gone")
    table_put(f"conn#{event['requestContext']['connectionId']}", json.dumps(event))
    return {"statusCode": 200}


def disconnect(event, context):
    context_ = event["requestContext"]
    table_put(f"disconnect#{context_['connectionId']}", json.dumps(event))
    return {"statusCode": 200}


def default(event, context):
    _reply(event, {"type": "default", "body": event["body"]})
    return {"statusCode": 200}


def echo(event, context):
    """Answers with the event, the context and the function's environment."""
    global _invocations
    _invocations += 1
    body = json.loads(event["body"])
    target = body.get("to", event["requestContext"]["connectionId"])
    _client().post_to_connection(ConnectionId=target, Data=json.dumps({
        "type": "echo",
        "event": event,
        "context": {
            "aws_request_id": context.aws_request_id,
            "function_name": context.function_name,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("AWS_", "POWERTOOLS_", "CALLBACK", "CONNECTIONS", "MESSAGES"))},
        "pid": os.getpid(),
        "invocations": _invocations,
    }).encode())
    return {"statusCode": 200}


def boom(event, context):
    raise ValueError("handler exploded on purpose")


def slow(event, context):
    body = json.loads(event["body"])
    time.sleep(float(body.get("seconds", 60)))
    _reply(event, {"type": "slow-done"})
    return {"statusCode": 200}


def manage(event, context):
    """Calls the Management API as told and reports what boto3 said."""
    body = json.loads(event["body"])
    client = _client()
    target = body["target"]
    result = {"type": "manage", "op": body["op"]}
    try:
        if body["op"] == "get":
            answer = client.get_connection(ConnectionId=target)
            result["answer"] = {
                "connectedAt": answer["ConnectedAt"].isoformat(),
                "lastActiveAt": answer["LastActiveAt"].isoformat(),
                "sourceIp": answer["Identity"]["SourceIp"],
            }
        elif body["op"] == "delete":
            client.delete_connection(ConnectionId=target)
            result["answer"] = "deleted"
        elif body["op"] == "post":
            client.post_to_connection(ConnectionId=target, Data=body["data"].encode())
            result["answer"] = "posted"
    except client.exceptions.GoneException as exc:
        result["error"] = "GoneException"
        result["status"] = exc.response["ResponseMetadata"]["HTTPStatusCode"]
    _reply(event, result)
    return {"statusCode": 200}


def table_put(key, value):
    table = boto3.resource("dynamodb").Table(os.environ["CONNECTIONS_TABLE"])
    table.put_item(Item={"pk": key, "sk": "x", "value": value})


def store(event, context):
    """Writes to and reads from DynamoDB (state persistence tests)."""
    body = json.loads(event["body"])
    table = boto3.resource("dynamodb").Table(os.environ["MESSAGES_TABLE"])
    if "put" in body:
        table.put_item(Item={"pk": "ROOM#t", "sk": body["put"], "text": body["put"]})
    items = table.query(
        KeyConditionExpression=boto3.dynamodb.conditions.Key("pk").eq("ROOM#t")
    )["Items"]
    _reply(event, {"type": "stored", "items": sorted(i["sk"] for i in items)})
    return {"statusCode": 200}


def get_record(event, context):
    body = json.loads(event["body"])
    table = boto3.resource("dynamodb").Table(os.environ["CONNECTIONS_TABLE"])
    item = table.get_item(Key={"pk": body["key"], "sk": "x"}).get("Item")
    _reply(event, {"type": "record", "value": item and item["value"]})
    return {"statusCode": 200}


def environment(event, context):
    return dict(os.environ)
