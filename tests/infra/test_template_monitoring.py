"""Failures that speak, in the synthesized template: the alarms, the dashboard's metrics,
its URL in the outputs, and the alarm topic that ``-c alarm_email`` adds.

Expected names come from what the functions emit (``chat.observability`` and the
``add_metric`` calls in ``functions/chat``), so a dashboard graphing a metric no function
emits fails here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chat import observability
from chat.functions import function_for_route, functions_for
from chat.queues import QUEUES
from chat.tables import TABLES
from tests.infra.conftest import ROOT, Synth, of_type, synth_with, table_ids

FUNCTION_METRICS = {"Errors", "Duration", "ConcurrentExecutions"}
POSTS = [observability.POSTS_SENT, observability.POSTS_GONE, observability.POSTS_THROTTLED,
         observability.POSTS_TIMED_OUT, observability.POSTS_FAILED]


def emitted_metric_names() -> set[str]:
    """Every metric name the functions' code emits: ``add_metric(name="X"`` literals and
    the names ``chat.observability`` declares."""
    names = {value for key, value in vars(observability).items()
             if key.isupper() and isinstance(value, str) and key not in ("SERVICE", "NAMESPACE")}
    for source in (ROOT / "functions" / "chat").rglob("*.py"):
        names |= set(re.findall(r'add_metric\(\s*name="(\w+)"', source.read_text()))
    return names


def _flatten(value: Any) -> str:
    """A DashboardBody's Fn::Join as text, each Ref/GetAtt as <Ref id>."""
    if isinstance(value, str):
        return value
    if "Fn::Join" in value:
        sep, parts = value["Fn::Join"]
        return sep.join(_flatten(part) for part in parts)
    if "Ref" in value:
        return f"<Ref {value['Ref']}>"
    return f"<GetAtt {value['Fn::GetAtt'][0]}>"


def dashboard(raw: dict[str, Any]) -> list[dict[str, Any]]:
    (board,) = of_type(raw["Resources"], "AWS::CloudWatch::Dashboard").values()
    return json.loads(_flatten(board["Properties"]["DashboardBody"]))["widgets"]


def graphed(widgets: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, str], dict]]:
    """(namespace, metric, dimensions, options) of every metric line on the dashboard."""
    lines = []
    for widget in widgets:
        for line in widget["properties"].get("metrics", []):
            *ident, options = line if isinstance(line[-1], dict) else [*line, {}]
            namespace, name, *dims = ident
            lines.append((namespace, name, dict(zip(dims[::2], dims[1::2], strict=True)),
                          options))
    return lines


def function_ids(raw: dict[str, Any]) -> dict[str, str]:
    """Logical id of each declared function, by its declared name."""
    lambdas = of_type(raw["Resources"], "AWS::Lambda::Function")
    return {fn.name: next(k for k, v in lambdas.items()
                          if v["Properties"].get("Handler") == fn.handler)
            for fn in functions_for("none")}


def alarms(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in of_type(raw["Resources"],
                                                    "AWS::CloudWatch::Alarm").items()}


def alarm_metrics(props: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(namespace, name, dimensions) an alarm reads, directly or inside its math."""
    if "MetricName" in props:
        return [(props["Namespace"], props["MetricName"],
                 {d["Name"]: d["Value"] for d in props.get("Dimensions", [])})]
    found = []
    for query in props["Metrics"]:
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            found.append((metric["Namespace"], metric["MetricName"],
                          {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}))
    return found


# -- the dashboard -----------------------------------------------------------------------


def test_the_dashboard_shows_the_chat_metrics_per_minute(synth: Synth) -> None:
    lines = graphed(dashboard(synth.raw))
    ours = {(name, json.dumps(dims, sort_keys=True)) for ns, name, dims, _ in lines
            if ns == observability.NAMESPACE}
    service = json.dumps({"service": observability.SERVICE})
    for name in [observability.CONNECTIONS_OPENED, observability.MESSAGES_STORED, *POSTS]:
        assert (name, service) in ours, name
    for ns, _, _, options in lines:
        if ns == observability.NAMESPACE:
            assert options["period"] == 60 and options["stat"] == "Sum"
    # Every metric of ours on the dashboard is one a function emits.
    assert {name for name, _ in ours} <= emitted_metric_names()


def test_the_dashboard_shows_connections_closed_the_queue_and_every_function(
    synth: Synth
) -> None:
    lines = graphed(dashboard(synth.raw))
    ids = function_ids(synth.raw)
    lambda_lines = {(name, dims.get("FunctionName")) for ns, name, dims, _ in lines
                    if ns == "AWS/Lambda"}
    for fn, logical_id in ids.items():
        for metric in FUNCTION_METRICS:
            assert (metric, f"<Ref {logical_id}>") in lambda_lines, (fn, metric)
    disconnect = ids[function_for_route("$disconnect").name]
    assert ("Invocations", f"<Ref {disconnect}>") in lambda_lines  # connections closed
    queues = of_type(synth.raw["Resources"], "AWS::SQS::Queue")
    sqs_lines = {(name, dims["QueueName"]) for ns, name, dims, _ in lines if ns == "AWS/SQS"}
    for spec in QUEUES:
        (queue_id,) = [k for k, v in queues.items()
                       if k.startswith(f"Queues{spec.logical_id}")
                       and "DeadLetters" not in k]
        for metric in ("ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"):
            assert (metric, f"<GetAtt {queue_id}>") in sqs_lines, metric
    for *_, options in lines:
        assert options.get("period") == 60, "per minute"


def test_the_stack_outputs_the_dashboard_url(synth: Synth) -> None:
    (board_id,) = of_type(synth.raw["Resources"], "AWS::CloudWatch::Dashboard")
    url = _flatten(synth.raw["Outputs"]["DashboardUrl"]["Value"])
    assert url == ("https://console.aws.amazon.com/cloudwatch/home?region=<Ref AWS::Region>"
                   f"#dashboards:name=<Ref {board_id}>")


# -- the alarms --------------------------------------------------------------------------


def test_every_function_has_an_error_and_a_throttle_alarm(synth: Synth) -> None:
    read = [metric for props in alarms(synth.raw).values() for metric in alarm_metrics(props)]
    for fn, logical_id in function_ids(synth.raw).items():
        for name in ("Errors", "Throttles"):
            assert ("AWS/Lambda", name, {"FunctionName": {"Ref": logical_id}}) in read, (fn, name)


def test_tables_failed_posts_and_dead_letters_have_alarms(synth: Synth) -> None:
    found = alarms(synth.raw)
    read = [metric for props in found.values() for metric in alarm_metrics(props)]
    for spec, table_id in table_ids(synth.raw["Resources"]).items():
        for name in ("ReadThrottleEvents", "WriteThrottleEvents"):
            assert ("AWS/DynamoDB", name, {"TableName": {"Ref": table_id}}) in read, spec
    assert len(TABLES) == len(table_ids(synth.raw["Resources"]))
    failed = [props for props in found.values() if alarm_metrics(props) == [
        (observability.NAMESPACE, observability.POSTS_FAILED,
         {"service": observability.SERVICE})]]
    assert len(failed) == 1
    assert failed[0]["Threshold"] == 1
    assert failed[0]["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    dead = [m for m in read if m[1] == "ApproximateNumberOfMessagesVisible"]
    assert len(dead) == len(QUEUES)


def test_without_an_email_there_is_no_topic_and_no_alarm_action(synth: Synth) -> None:
    assert of_type(synth.raw["Resources"], "AWS::SNS::Topic") == {}
    assert all("AlarmActions" not in props for props in alarms(synth.raw).values())


@pytest.fixture(scope="module")
def email_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    return synth_with(Path(tmp_path_factory.mktemp("cdk.out-email")),
                      alarm_email="ops@example.com")


def test_an_alarm_email_gets_an_encrypted_tls_only_topic_every_alarm_notifies(
    email_synth: Synth
) -> None:
    resources = email_synth.raw["Resources"]
    (topic_id, topic), = of_type(resources, "AWS::SNS::Topic").items()
    key_ref = topic["Properties"]["KmsMasterKeyId"]
    (key_id, key), = of_type(resources, "AWS::KMS::Key").items()
    assert key_ref == {"Fn::GetAtt": [key_id, "Arn"]} or key_ref == {"Ref": key_id}
    assert key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(s.get("Principal") == {"Service": "cloudwatch.amazonaws.com"}
               and "kms:Decrypt" in s["Action"] for s in statements)
    (subscription,) = of_type(resources, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"
    (policy,) = of_type(resources, "AWS::SNS::TopicPolicy").values()
    assert any(s["Effect"] == "Deny"
               and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy["Properties"]["PolicyDocument"]["Statement"])
    found = alarms(email_synth.raw)
    assert len(found) == len(alarms_expected(email_synth.raw))
    for name, props in found.items():
        assert props.get("AlarmActions") == [{"Ref": topic_id}], name


def alarms_expected(raw: dict[str, Any]) -> list[str]:
    """Two per function, one per table, failed posts, one dead-letter alarm per queue."""
    return [*(f"{fn}{kind}" for fn in function_ids(raw) for kind in ("Errors", "Throttles")),
            *(spec.logical_id for spec in TABLES), "PostsFailed",
            *(spec.logical_id for spec in QUEUES)]


def test_a_malformed_alarm_email_fails_the_synth(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="alarm_email"):
        synth_with(tmp_path, alarm_email="not-an-address")
