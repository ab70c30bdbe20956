"""Checks that need no full app synth: the destroy flag, the handlers, the nag guard."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from aws_cdk import App, Stack, Validations
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from chat.functions import FUNCTIONS
from infra.data import ChatTables
from infra.frontend import Frontend

ROOT = Path(__file__).resolve().parents[2]


def test_destroy_flag_makes_tables_and_site_disposable() -> None:
    stack = Stack()
    ChatTables(stack, "Data", destroy=True)
    Frontend(
        stack,
        "Frontend",
        websocket_url="wss://example.invalid/prod",
        websocket_origin="wss://example.invalid",
        destroy=True,
    )
    template = Template.from_stack(stack)
    for cfn_type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        for resource in template.find_resources(cfn_type).values():
            assert resource["DeletionPolicy"] == "Delete", cfn_type
    # A non-empty bucket cannot be deleted: CDK empties it first.
    template.resource_count_is("Custom::S3AutoDeleteObjects", 1)


def test_every_handler_exists_in_the_code_asset() -> None:
    """The asset root is functions/, so "chat.handlers.x.y" must be a top-level name there."""
    for route in FUNCTIONS:
        module, _, name = route.handler.rpartition(".")
        source = ROOT / "functions" / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{route.name}: {source} missing"
        tree = ast.parse(source.read_text())
        defined = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        } | {
            target.id
            for node in tree.body
            if isinstance(node, ast.Assign)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        assert name in defined, f"{route.name}: {route.handler} not defined"


def test_an_unacknowledged_nag_error_fails_synth(tmp_path: Path) -> None:
    """The guard the app relies on: cdk-nag 3.x as a validation plugin stops the synth."""
    app = App(outdir=str(tmp_path))
    stack = Stack(app, "Probe")
    s3.Bucket(stack, "Plain")  # no TLS enforcement, no access logs: AwsSolutions-S1/S10
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    with pytest.raises(RuntimeError, match=r"ValidationFailed[\s\S]*AwsSolutions-S10"):
        app.synth()
