"""The fan-out queue: encrypted, TLS only, a dead-letter queue with an alarm, and the
worker's event source, all as ``chat.queues`` and ``chat.functions`` declare them."""

from __future__ import annotations

import json
from typing import Any

from chat.functions import FANOUT_WORKER, QueueConsumer
from chat.queues import QUEUES
from tests.infra.conftest import CONTEXT, function_for, of_type, ref_id


def _queues(resources: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    queues = of_type(resources, "AWS::SQS::Queue")
    dead = {k: v for k, v in queues.items() if "DeadLetters" in k}
    live = {k: v for k, v in queues.items() if k not in dead}
    return live, dead


def test_each_queue_is_encrypted_with_a_dead_letter_queue(resources: dict[str, Any]) -> None:
    live, dead = _queues(resources)
    assert len(live) == len(dead) == len(QUEUES)
    for spec in QUEUES:
        (queue,) = [v["Properties"] for k, v in live.items() if spec.logical_id in k]
        assert queue["SqsManagedSseEnabled"] is True
        assert queue["VisibilityTimeout"] == spec.visibility_timeout_s
        redrive = queue["RedrivePolicy"]
        assert redrive["maxReceiveCount"] == spec.max_receive_count
        assert ref_id(redrive["deadLetterTargetArn"]) in dead
    for queue in dead.values():
        assert queue["Properties"]["SqsManagedSseEnabled"] is True


def test_queues_refuse_plain_http(resources: dict[str, Any]) -> None:
    live, dead = _queues(resources)
    guarded = set()
    for policy in of_type(resources, "AWS::SQS::QueuePolicy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if (statement["Effect"] == "Deny"
                    and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}):
                guarded |= {ref_id(q) for q in policy["Properties"]["Queues"]}
    assert guarded == set(live) | set(dead)


def test_an_alarm_fires_on_the_first_dead_letter(resources: dict[str, Any]) -> None:
    _, dead = _queues(resources)
    alarms = of_type(resources, "AWS::CloudWatch::Alarm").values()
    watched = set()
    for alarm in alarms:
        props = alarm["Properties"]
        if props.get("Namespace") != "AWS/SQS":
            continue  # infra/monitoring.py's (tests/infra/test_template_monitoring.py)
        assert props["MetricName"] == "ApproximateNumberOfMessagesVisible"
        assert props["Threshold"] == 1
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        (dimension,) = props["Dimensions"]
        watched.add(json.dumps(dimension["Value"]))
    assert len(watched) == len(dead)
    assert all(any(k in w for w in watched) for k in dead)


def test_the_worker_consumes_its_queue_as_declared(resources: dict[str, Any]) -> None:
    trigger = FANOUT_WORKER.trigger
    assert isinstance(trigger, QueueConsumer)
    function_id, function = function_for(resources, FANOUT_WORKER)
    assert function["Properties"]["Timeout"] * 6 <= trigger.queue.visibility_timeout_s
    (mapping,) = of_type(resources, "AWS::Lambda::EventSourceMapping").values()
    props = mapping["Properties"]
    assert props["FunctionName"] == {"Ref": function_id}
    live, _ = _queues(resources)
    assert ref_id(props["EventSourceArn"]) in live
    assert props["BatchSize"] == trigger.batch_size
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert props["ScalingConfig"] == {
        "MaximumConcurrency": CONTEXT[trigger.max_concurrency.key]
    }
