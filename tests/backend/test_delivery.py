"""Fan-out and failure paths: 410 Gone, failing and throttled recipients, storage
failures, the callback URL, the DynamoDB calls per message, and the logs."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from urllib.parse import quote

import pytest

from chat import bootstrap
from chat.adapters import management_api
from chat.adapters.management_api import READ_TIMEOUT_S
from local_gateway.testing import InProcessStage
from tests.backend.conftest import items, messages_in


def test_gone_connection_is_removed_at_first_failed_post_and_others_still_receive(
    gw, aws, recorder
) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    ghost = gw.join("ghost", age_s=60)  # long past its $connect
    gw.take(alice), gw.take(bob)
    recorder.gone.add(ghost)  # its $disconnect never came
    recorder.attempts.clear()

    gw.send(alice, {"action": "new_message", "text": "anyone?"})

    assert [e["text"] for e in gw.take(alice) if e["type"] == "message"] == ["anyone?"]
    assert [e["type"] for e in gw.take(bob)] == ["message", "presence"]
    assert recorder.attempts[ghost] == 1  # not retried: gone is final
    left = {i["pk"]["S"] + "|" + i["sk"]["S"] for i in items(aws, "chat-connections")}
    assert not any(ghost in key for key in left)
    # Later traffic no longer tries it.
    gw.send(alice, {"action": "new_message", "text": "again"})
    assert recorder.attempts[ghost] == 1
    gw.send(alice, {"action": "who"})
    assert next(e for e in gw.take(alice) if e["type"] == "who")["users"] == ["alice", "bob"]


def test_a_gone_connection_found_by_typing_is_removed_and_its_leave_told_to_no_one(
    gw, aws, recorder
) -> None:
    # The leave goes only to connections that just received a post: here the ghost was
    # typing's only recipient, so nobody hears of it (the sender is never a recipient).
    alice, ghost = gw.join("alice"), gw.join("ghost", age_s=60)
    gw.take(alice)
    recorder.gone.add(ghost)
    gw.send(alice, {"action": "typing"})
    assert gw.take(alice) == []
    assert not any(ghost in i["sk"]["S"] or ghost in i["pk"]["S"]
                   for i in items(aws, "chat-connections"))
    gw.send(gw.join("bob"), {"action": "who"})
    assert gw.take(alice) == [
        {"type": "presence", "room": "general", "username": "bob", "event": "join"}
    ]


def test_one_failing_recipient_does_not_block_the_others(gw, aws, recorder) -> None:
    sender = gw.join("sender")
    peers = [gw.join(f"peer{n}") for n in range(6)]
    broken = peers[2]
    recorder.failing.add(broken)
    recorder.attempts.clear()
    gw.send(sender, {"action": "new_message", "text": "fan out"})
    for peer in peers:
        texts = [e.get("text") for e in gw.take(peer) if e["type"] == "message"]
        assert texts == ([] if peer == broken else ["fan out"])
    assert recorder.attempts[broken] == 3  # 5xx retried with backoff, then given up
    # A 5xx is not a 410: the connection is kept.
    assert any(broken in i["sk"]["S"] for i in items(aws, "chat-connections"))


def test_throttled_post_is_retried_with_backoff(gw, aws, recorder) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    gw.take(alice)
    recorder.throttle[bob] = 2  # two 429s, then success
    recorder.attempts.clear()
    gw.send(alice, {"action": "new_message", "text": "eventually"})
    assert [e["text"] for e in gw.take(bob)] == ["eventually"]
    assert recorder.attempts[bob] == 3


def test_a_post_answered_too_late_is_not_sent_again(gw, aws, recorder) -> None:
    # The post reaches bob but its answer comes after the client's read timeout. Sending
    # it again would show bob the message twice, so it is counted failed, not retried.
    alice, bob, carol = gw.join("alice"), gw.join("bob"), gw.join("carol")
    gw.take(alice), gw.take(bob)
    recorder.slow[bob] = READ_TIMEOUT_S + 1.5
    recorder.attempts.clear()
    gw.send(alice, {"action": "new_message", "text": "once"})
    assert recorder.attempts[bob] == 1
    assert [e["text"] for e in gw.take(bob) if e["type"] == "message"] == ["once"]
    assert [e["text"] for e in gw.take(carol) if e["type"] == "message"] == ["once"]
    # A timeout is not a 410: bob stays in the room.
    assert any(bob in i["sk"]["S"] for i in items(aws, "chat-connections"))


def test_storage_failure_gives_internal_error_and_broadcasts_nothing(gw, aws) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    gw.take(alice)
    aws.delete_table(TableName="chat-messages")  # DynamoDB now fails every write
    gw.send(alice, {"action": "new_message", "text": "lost?", "client_id": "c-9"})
    [error] = gw.take(alice)
    assert (error["type"], error["code"], error["client_id"]) == ("error", "internal", "c-9")
    assert "Traceback" not in error["message"] and "chat-messages" not in error["message"]
    assert gw.take(bob) == []


def test_unexpected_failure_never_leaks_a_stack_trace(gw, aws, json_logs) -> None:
    alice = gw.join("alice")
    aws.delete_table(TableName="chat-connections")
    response = gw.send(alice, {"action": "who", "client_id": "w1"})
    assert response == {"statusCode": 200}
    [error] = gw.take(alice)
    assert (error["code"], error["client_id"]) == ("internal", "w1")
    assert "Traceback" not in json.dumps(error)
    assert any("Traceback" in line.get("exception", "") for line in json_logs())  # logged


def test_dynamodb_calls_for_one_message_to_a_room_of_50(gw, aws) -> None:
    members = [gw.join(f"user{n}", "big") for n in range(50)]
    calls: Counter[str] = Counter()

    def count(model, **_kwargs) -> None:
        calls[model.name] += 1

    db = bootstrap.services().store.client
    db.meta.events.register("before-call.dynamodb.*", count)
    try:
        gw.send(members[0], {"action": "new_message", "text": "hello fifty", "client_id": "b1"})
    finally:
        db.meta.events.unregister("before-call.dynamodb.*", count)

    writes = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
    assert calls["Query"] == 1
    assert sum(n for op, n in calls.items() if op in writes) <= 2
    assert calls["Scan"] == 0
    assert all(
        [e["text"] for e in gw.take(m) if e["type"] == "message"] == ["hello fifty"]
        for m in members
    )


def test_callback_url_falls_back_to_api_id_region_and_stage_not_domain_name(
    aws, recorder, configure, monkeypatch
) -> None:
    """Without CALLBACK_URL the endpoint is built from the event (custom domain ignored)."""
    # The adapter's posts are answered here instead of the network (moto's mock_aws only
    # intercepts boto3 clients): what it would have sent, and where.
    sent = []

    def recorded(fanout: Any) -> list[tuple[str, str]]:
        for cid in fanout.targets:
            sent.append((f"https://{fanout.api.host_header}{fanout.api.path(cid)}", fanout.data))
        return [(cid, "sent") for cid in fanout.targets]

    monkeypatch.setattr(management_api._Fanout, "run", recorded)
    services = configure(callback_url="")
    gw = InProcessStage(recorder, domain="chat.example.com")  # a custom domain
    alice = gw.join("alice")
    gw.send(alice, {"action": "who"})
    [(url, posted)] = sent
    assert url == "https://abc123.execute-api.us-east-1.amazonaws.com/prod/@connections/" + (
        quote(alice, safe=""))
    assert json.loads(posted) == {"type": "who", "room": "general", "users": ["alice"], "count": 1}
    assert recorder.take(alice) == []
    assert bootstrap.callback_url(services.config, "abc123", "prod") == (
        "https://abc123.execute-api.us-east-1.amazonaws.com/prod"
    )


def test_logs_are_json_with_connection_route_and_request_ids(
    gw, aws, capsys, json_logs
) -> None:
    alice = gw.join("alice")
    json_logs()
    capsys.readouterr()
    gw.send(alice, {"action": "new_message", "text": "log me", "client_id": "l1"})
    gw.send(alice, {"action": "nope"})
    logs = json_logs()
    assert logs
    for line in logs:
        assert line["connection_id"] == alice
        assert line["route"] in {"new_message", "$default"}
        assert line["request_id"] and line["correlation_id"] == line["request_id"]
        assert line["function_request_id"]
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    assert emf and emf[0]["MessagesStored"] == [1.0] and emf[0]["Recipients"] == [1.0]


@pytest.mark.parametrize("stale_room", ["general"])
def test_expired_membership_is_ignored(gw, aws, stale_room) -> None:
    """TTL deletes lazily: an expired member must not receive posts meanwhile."""
    alice, old = gw.join("alice"), gw.join("old")
    aws.update_item(
        TableName="chat-connections",
        Key={"pk": {"S": f"ROOM#{stale_room}"}, "sk": {"S": f"CONN#{old}"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    gw.send(alice, {"action": "new_message", "text": "x"})
    assert gw.take(old) == []
    assert len(messages_in(aws)) == 1


def test_a_connection_still_in_its_connect_is_not_taken_for_gone(
    gw, aws, recorder
) -> None:
    """API Gateway answers 410 for a connection whose $connect has not returned yet."""
    alice = gw.join("alice")
    newcomer = gw.join("newcomer")  # connected_at: now
    recorder.gone.add(newcomer)  # as if its $connect were still running
    gw.send(alice, {"action": "new_message", "text": "hi"})
    recorder.gone.discard(newcomer)  # its $connect returned: the socket is open
    gw.send(newcomer, {"action": "who"})
    assert gw.take(newcomer) == (
        [{"type": "who", "room": "general", "users": ["alice", "newcomer"], "count": 2}]
    )


def test_a_failed_join_announcement_does_not_refuse_or_orphan_the_connection(
    gw, aws
) -> None:
    """DynamoDB fails the room Query during $connect: the handshake still succeeds."""
    from botocore.exceptions import ClientError

    db = bootstrap.services().store.client
    bob = gw.join("bob")

    def throttle(**_kwargs) -> None:
        raise ClientError(
            {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow"}},
            "Query",
        )

    db.meta.events.register("before-call.dynamodb.Query", throttle)
    try:
        alice, response = gw.connect("alice")
    finally:
        db.meta.events.unregister("before-call.dynamodb.Query", throttle)
    assert response["statusCode"] == 200
    assert gw.take(bob) == []  # the join could not be announced...
    gw.send(alice, {"action": "who"})  # ...but alice is a full member
    assert gw.take(alice) == (
        [{"type": "who", "room": "general", "users": ["alice", "bob"], "count": 2}]
    )
