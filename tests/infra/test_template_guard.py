"""AWS CloudFormation Guard (Control Tower proactive controls) on the synthesized app.

The synth itself fails on an unacknowledged Guard violation, as on a cdk-nag error
(``infra/app.py`` adds both plugins); these read the report it wrote, in both auth modes,
and show that a resource breaking a rule stops the synth.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import aws_sqs as sqs

from infra.app import STACK_NAME, build_app
from infra.guard import PLUGIN
from tests.infra.conftest import CONTEXT, Synth


def guard_report(outdir: Path) -> dict[str, Any]:
    report = json.loads((outdir / "validation-report.json").read_text())
    (guard,) = [p for p in report["pluginReports"] if p["pluginName"] == PLUGIN]
    return guard


@pytest.mark.parametrize("mode", ["synth", "cognito_synth"])
def test_guard_passes_and_every_acknowledgement_has_a_reason(request, mode) -> None:
    synth: Synth = request.getfixturevalue(mode)
    guard = guard_report(synth.outdir)
    assert guard["conclusion"] == "success"
    assert guard["violations"] == []
    # The rules ran: the stack's resources were checked and findings acknowledged.
    assert guard["suppressedViolations"]
    for finding in guard["suppressedViolations"]:
        assert len(finding["reason"]) >= 30, finding["ruleName"]


def test_what_the_stack_fixes_instead_of_acknowledging(synth: Synth) -> None:
    guard = guard_report(synth.outdir)
    acknowledged = {f["ruleName"] for f in guard["suppressedViolations"]}
    # Fixed in the stack: KMS-encrypted tables, a dead-letter queue that says it is one.
    assert "dynamodb_table_encrypted_kms_check" not in acknowledged
    assert "sqs_dlq_check" not in acknowledged
    for table in [r for r in synth.raw["Resources"].values()
                  if r["Type"] == "AWS::DynamoDB::Table"]:
        assert table["Properties"]["SSESpecification"]["SSEEnabled"] is True


def test_a_new_violation_fails_the_synth(tmp_path: Path) -> None:
    app = build_app(context=CONTEXT, outdir=str(tmp_path))
    stack = app.node.find_child(STACK_NAME)
    # A queue with no dead-letter queue: Control Tower's CT.SQS.PR.1.
    sqs.Queue(stack, "Unredriven", enforce_ssl=True,
              encryption=sqs.QueueEncryption.SQS_MANAGED)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    violations = guard_report(tmp_path)["violations"]
    assert [v["ruleName"] for v in violations] == ["sqs_dlq_check"]
    assert [c["constructPath"] for c in violations[0]["violatingConstructs"]] == [
        f"{STACK_NAME}/Unredriven/Resource"]
