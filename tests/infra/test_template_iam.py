"""IAM: each function's grants follow the route table, and nothing wider is granted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chat.functions import FUNCTIONS, SEND_MESSAGE_ACTION, Function, QueueConsumer
from chat.tables import TABLES
from infra.settings import DEFAULTS
from tests.infra.conftest import (
    EXPECTED_DYNAMODB_ACTIONS,
    UNUSED_DYNAMODB_ACTIONS,
    Synth,
    actions_of,
    function_for,
    of_type,
    ref_id,
    resource_ids,
    role_statements,
    table_ids,
)

# What Lambda's SQS event source needs of the function's role (CDK grants exactly these).
CONSUME_ACTIONS = {
    "sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl",
    "sqs:DeleteMessage", "sqs:GetQueueAttributes",
}


@pytest.mark.parametrize("route", FUNCTIONS, ids=lambda f: f.name)
def test_function_grants_match_the_declaration(resources: dict[str, Any], route: Function) -> None:
    _, function = function_for(resources, route)
    role_id = ref_id(function["Properties"]["Role"])
    assert "ManagedPolicyArns" not in resources[role_id]["Properties"]
    statements = list(role_statements(resources, role_id))
    tables = table_ids(resources)
    for spec in TABLES:
        access = route.tables.get(spec, "none")
        on_table = [s for s in statements if tables[spec] in resource_ids(s)]
        actions = {a for s in on_table for a in actions_of(s)}
        # Exactly, not "at least": an extra Scan or Batch* grant fails here.
        assert actions == EXPECTED_DYNAMODB_ACTIONS[access], (route.name, spec.logical_id)
        assert actions == set(route.table_actions().get(spec, ())), (route.name, spec.logical_id)
        table_arns = [{"Fn::GetAtt": [table_id, "Arn"]} for table_id in tables.values()]
        for statement in on_table:
            # Table ARNs only: no "/index/*" or "/stream/*" (the tables have neither).
            arns = statement["Resource"]
            assert all(arn in table_arns for arn in (arns if isinstance(arns, list) else [arns]))
    manage = [s for s in statements if "execute-api:ManageConnections" in actions_of(s)]
    assert bool(manage) == route.posts_to_connections
    for statement in manage:
        # Scoped to this API's stage, not every API in the account.
        text = json.dumps(statement["Resource"])
        assert f"/{DEFAULTS['stage_name']}/*/@connections/*" in text
    # Queues: SendMessage on the queues it sends to; what polling needs on the one that
    # triggers it; nothing on any other queue.
    queues = {
        k for k, v in of_type(resources, "AWS::SQS::Queue").items() if "DeadLetters" not in k
    }
    sqs_actions = {a for s in statements for a in actions_of(s) if a.startswith("sqs:")}
    expected_sqs = {SEND_MESSAGE_ACTION} if route.sends_to else set()
    if isinstance(route.trigger, QueueConsumer):
        expected_sqs |= CONSUME_ACTIONS
    assert sqs_actions == expected_sqs, route.name
    # Nothing else: its own log group, the tables above, the management API, the queue.
    log_group = ref_id(function["Properties"]["LoggingConfig"]["LogGroup"])
    for statement in statements:
        actions = actions_of(statement)
        assert statement["Effect"] == "Allow"
        if all(a.startswith("logs:") for a in actions):
            assert resource_ids(statement) == {log_group}
        elif all(a.startswith("dynamodb:") for a in actions):
            assert resource_ids(statement) <= set(tables.values())
        elif all(a.startswith("sqs:") for a in actions):
            assert resource_ids(statement) <= queues, statement
        else:
            assert actions == ["execute-api:ManageConnections"], statement


def test_no_wildcard_actions_are_allowed(resources: dict[str, Any]) -> None:
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in actions_of(statement):
                assert action != "*" and not action.endswith(":*"), (action, statement)
                if action.startswith("dynamodb:"):
                    assert "*" not in action, action


def test_no_unused_dynamodb_action_is_granted_anywhere(synth: Synth) -> None:
    text = json.dumps(synth.raw)
    assert "dynamodb:Scan" not in text
    for action in UNUSED_DYNAMODB_ACTIONS:
        assert f'"{action}"' not in text, action


def test_dynamodb_grants_name_tables_not_wildcards(resources: dict[str, Any]) -> None:
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("dynamodb:") for a in actions_of(statement)):
                assert statement["Resource"] != "*"
                assert resource_ids(statement) <= set(table_ids(resources).values())
