"""Shared by the infra tests: import paths, one synth of the app, and template helpers.

The app is synthesized in process once per test session (``synth``, ~5-40 s; cdk-nag runs
inside it and fails it on any unacknowledged error), and every ``test_template_*`` module
reads that one result. Expected values come from the declarations the stack is built from
(``chat.functions`` / ``chat.tables``, the same tables the local gateway reads), so the
tests fail when the stack and the declarations drift apart.
"""

# ruff: noqa: E402 - the CDK app and chat are imported after the sys.path setup below.

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
for entry in (ROOT, ROOT / "functions"):
    if str(entry) not in sys.path:
        sys.path.insert(0, str(entry))

# jsii prints a page-long banner on every process under Node 20; it is not a test failure.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from aws_cdk.assertions import Template

from chat.functions import Function, routes
from chat.tables import TABLES, TableSpec
from infra.app import STACK_NAME, build_app
from infra.settings import DEFAULTS

# The context cdk.json passes to the app: its defaults without the unset ones.
CONTEXT = {key: value for key, value in DEFAULTS.items() if value is not None}
ROUTES = list(routes().values())

# Written out here, not read from chat.functions.ACCESS_ACTIONS: the calls that
# chat.adapters.dynamodb makes
# (Connections: GetItem, Query, Put in TransactWriteItems, UpdateItem, DeleteItem;
# Messages: GetItem, Query, PutItem), so a widened mapping fails test_template_iam too.
DYNAMODB_READS = {"dynamodb:GetItem", "dynamodb:Query"}
DYNAMODB_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
EXPECTED_DYNAMODB_ACTIONS = {
    "none": set(),
    "read": DYNAMODB_READS,
    "append": {"dynamodb:GetItem", "dynamodb:PutItem"},
    "update": {"dynamodb:GetItem", "dynamodb:UpdateItem"},
    "read_write": DYNAMODB_READS | DYNAMODB_WRITES,
}
# What grant_read_data / grant_read_write_data would add and no handler calls.
UNUSED_DYNAMODB_ACTIONS = {
    "dynamodb:Scan",
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DescribeTable",
    "dynamodb:ConditionCheckItem",
    "dynamodb:GetRecords",
    "dynamodb:GetShardIterator",
    "dynamodb:DescribeStream",
    "dynamodb:ListStreams",
}


class Synth(NamedTuple):
    """One synth of the app: the stack's template, as assertions and as JSON, and cdk.out."""

    template: Template
    raw: dict[str, Any]
    outdir: Path


@pytest.fixture(scope="session")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(context=CONTEXT, outdir=str(outdir))
    assembly = app.synth()  # raises on an unacknowledged cdk-nag error
    raw = assembly.get_stack_by_name(STACK_NAME).template
    return Synth(Template.from_json(raw), raw, outdir)


def synth_with(outdir: Path, **context: Any) -> Synth:
    """A synth of the app with ``context`` over cdk.json's defaults."""
    app = build_app(context={**CONTEXT, **context}, outdir=str(outdir))
    raw = app.synth().get_stack_by_name(STACK_NAME).template
    return Synth(Template.from_json(raw), raw, outdir)


@pytest.fixture(scope="session")
def cognito_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """The app with sign-in (``-c auth=cognito``): user pool, authorizer, access logs."""
    return synth_with(tmp_path_factory.mktemp("cdk.out-cognito"), auth="cognito")


@pytest.fixture(scope="session")
def template(synth: Synth) -> Template:
    return synth.template


@pytest.fixture(scope="session")
def resources(synth: Synth) -> dict[str, Any]:
    return synth.raw["Resources"]


def of_type(resources: dict[str, Any], cfn_type: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in resources.items() if v["Type"] == cfn_type}


def ref_id(value: Any) -> str:
    """The logical id in ``{"Ref": id}`` or ``{"Fn::GetAtt": [id, attr]}``."""
    if "Ref" in value:
        return value["Ref"]
    return value["Fn::GetAtt"][0]


def function_for(resources: dict[str, Any], declared: Function) -> tuple[str, dict[str, Any]]:
    matches = [
        (k, v)
        for k, v in of_type(resources, "AWS::Lambda::Function").items()
        if v["Properties"].get("Handler") == declared.handler
    ]
    assert len(matches) == 1, f"one function for {declared.name}, found {len(matches)}"
    return matches[0]


def table_ids(resources: dict[str, Any]) -> dict[TableSpec, str]:
    """Logical id of each spec's table, found by the construct path ``Data/<logical_id>``."""
    ids: dict[TableSpec, str] = {}
    for spec in TABLES:
        found = [
            k
            for k, v in of_type(resources, "AWS::DynamoDB::Table").items()
            if k.startswith(f"Data{spec.logical_id}")
        ]
        assert len(found) == 1, spec
        ids[spec] = found[0]
    return ids


def role_statements(resources: dict[str, Any], role_id: str) -> Iterator[dict[str, Any]]:
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            yield from policy["Properties"]["PolicyDocument"]["Statement"]


def actions_of(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def resource_ids(statement: dict[str, Any]) -> set[str]:
    """Logical ids a statement's resources point at (Ref/GetAtt, also inside Fn::Join)."""
    return set(re.findall(r'"(?:Ref|Fn::GetAtt)": \[?"([A-Za-z0-9]+)"', json.dumps(statement)))
