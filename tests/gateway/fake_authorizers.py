"""Test-only $connect authorizer and $connect for the gateway's authorizer emulation.

The authorizer answers as the handshake's ``auth`` query parameter says, so one gateway
can be asked every kind of answer an authorizer can give. ``connect`` records the event
it got (``record`` route) and selects the subprotocol named by ``select``.
"""

from __future__ import annotations

import json

from tests.gateway.fake_handlers import table_put


def _policy(event, effect, resource=None, context=None):
    answer = {
        "principalId": "user-1",
        "policyDocument": {"Version": "2012-10-17", "Statement": [{
            "Action": "execute-api:Invoke", "Effect": effect,
            "Resource": resource or event["methodArn"],
        }]},
    }
    if context is not None:
        answer["context"] = context
    return answer


def authorize(event, context):
    query = event.get("queryStringParameters") or {}
    if "room" in query:
        table_put(f"authorizer-event-{query['room']}", json.dumps(event))
    how = query.get("auth", "allow")
    if how == "allow":
        return _policy(event, "Allow", context={"username": "alice", "n": 1, "ok": True})
    if how == "deny":
        return _policy(event, "Deny")
    if how == "wildcard":
        return _policy(event, "Allow", resource="arn:aws:execute-api:*:*:*/*/*")
    if how == "other-route":
        return _policy(event, "Allow", resource=event["methodArn"].replace("$connect", "x"))
    if how == "unauthorized":
        raise Exception("Unauthorized")  # the message is API Gateway's contract
    if how == "nested":
        return _policy(event, "Allow", context={"user": {"name": "alice"}})
    if how == "garbage":
        return {"hello": "world"}
    raise RuntimeError("authorizer exploded")


def connect(event, context):
    table_put(f"conn#{event['requestContext']['connectionId']}", json.dumps(event))
    select = (event.get("queryStringParameters") or {}).get("select")
    if select:
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": select}}
    return {"statusCode": 200}
