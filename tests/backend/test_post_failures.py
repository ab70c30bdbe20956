"""Failures that speak: a post that cannot be signed is an ERROR and a metric, end to end.

The real ``new_message`` function runs in this process against moto's DynamoDB and a
real HTTP ``@connections`` endpoint (``local_gateway.testing.ScriptedConnections``).
Signing is broken at the AWS boundary: the credentials botocore hands the posting
adapter are expired and their refresh fails (a credential endpoint that is down), as
when a role's session cannot be renewed. The message is still stored; nobody receives
it; the function says so in its log (one ERROR line per reason, no payload or secret)
and in the metrics Powertools prints as CloudWatch EMF at the end of the invocation.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.credentials import RefreshableCredentials

from chat import bootstrap
from chat.observability import NAMESPACE, SERVICE
from tests.backend.conftest import messages_in

SECRET_TEXT = "the words only the room may read"


def _unrefreshable() -> RefreshableCredentials:
    def refresh() -> dict[str, str]:
        raise ConnectionError("credential endpoint unreachable")

    return RefreshableCredentials.create_from_metadata(
        {"access_key": "AKIDEXAMPLE", "secret_key": "expired-secret",
         "token": "expired-session-token", "expiry_time": "2020-01-01T00:00:00Z"},
        refresh_using=refresh, method="sts-assume-role")


def _emf(stdout: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in stdout.splitlines() if line.startswith("{"))
    return [line for line in lines if "_aws" in line]


def _metric(emfs: list[dict[str, Any]], name: str, **dimensions: str) -> float:
    """The total of ``name`` over the EMF lines whose dimensions are exactly
    ``service`` and ``dimensions``."""
    total = 0.0
    for emf in emfs:
        for directive in emf["_aws"]["CloudWatchMetrics"]:
            names = [m["Name"] for m in directive["Metrics"]]
            if name not in names or directive["Namespace"] != NAMESPACE:
                continue
            if sorted(directive["Dimensions"][0]) != sorted(["service", *dimensions]):
                continue
            if emf["service"] != SERVICE or any(emf[k] != v for k, v in dimensions.items()):
                continue
            value = emf[name]
            total += sum(value) if isinstance(value, list) else value
    return total


def test_broken_signing_is_an_error_log_and_a_failed_posts_metric(
    gw, aws, recorder, json_logs, capsys
) -> None:
    alice, bob = gw.join("alice"), gw.join("bob")
    gw.take(alice), gw.take(bob)
    bootstrap.services().connections(recorder.url).credentials = _unrefreshable()
    recorder.attempts.clear()
    capsys.readouterr()
    json_logs()

    gw.send(alice, {"action": "new_message", "text": SECRET_TEXT, "client_id": "c-1"})

    # Stored, but nobody received it: not even the sender's confirmation went out.
    assert [m["text"]["S"] for m in messages_in(aws)] == [SECRET_TEXT]
    assert gw.take(alice) == [] and gw.take(bob) == []
    assert sum(recorder.attempts.values()) == 0

    logs = json_logs()
    errors = [line for line in logs if line["level"] == "ERROR"]
    signing = [line for line in errors if line.get("reason") == "signing"]
    assert signing, logs
    assert signing[0]["message"] == "posts failed"
    assert signing[0]["error_type"] == "ConnectionError"
    assert set(signing[0]["targets"]) == {alice, bob}
    assert signing[0]["function_name"] == "NewMessage"  # the invocation's context

    emfs = _emf(capsys.readouterr().out)
    assert _metric(emfs, "PostsFailed") == 2  # the broadcast: alice and bob
    assert _metric(emfs, "PostsFailed", reason="signing") == 2
    assert _metric(emfs, "PostsSent") == 0
    assert _metric(emfs, "MessagesStored") == 1

    said = json.dumps(logs) + json.dumps(emfs)
    for secret in (SECRET_TEXT, "expired-secret", "expired-session-token"):
        assert secret not in said


def test_gone_and_throttled_posts_are_counted_but_not_errors(
    gw, aws, recorder, json_logs, capsys
) -> None:
    alice, bob, carol = gw.join("alice"), gw.join("bob"), gw.join("carol", age_s=60)
    for cid in (alice, bob, carol):
        gw.take(cid)
    recorder.gone.add(carol)
    recorder.throttle[bob] = 10  # refused more often than the adapter retries
    capsys.readouterr()
    json_logs()

    gw.send(alice, {"action": "new_message", "text": "hello"})

    assert [e["text"] for e in gw.take(alice) if e["type"] == "message"] == ["hello"]
    emfs = _emf(capsys.readouterr().out)
    assert _metric(emfs, "PostsSent") >= 1
    assert _metric(emfs, "PostsGone") == 1
    assert _metric(emfs, "PostsThrottled") == 1
    assert _metric(emfs, "PostsFailed") == 0
    assert not [line for line in json_logs() if line["level"] == "ERROR"]
