"""Construct-level checks that need no full app synth: the destroy flag, the handlers."""

from __future__ import annotations

import ast
from pathlib import Path

from aws_cdk import Stack
from aws_cdk.assertions import Template
from chat.routes import ROUTES

from infra.data import ChatTables
from infra.frontend import Frontend

ROOT = Path(__file__).resolve().parents[2]


def test_destroy_flag_makes_tables_and_site_disposable() -> None:
    stack = Stack()
    ChatTables(stack, "Data", destroy=True)
    Frontend(stack, "Frontend", websocket_url="wss://example.invalid/prod", destroy=True)
    template = Template.from_stack(stack)
    for cfn_type in ("AWS::DynamoDB::Table", "AWS::S3::Bucket"):
        for resource in template.find_resources(cfn_type).values():
            assert resource["DeletionPolicy"] == "Delete", cfn_type
    # A non-empty bucket cannot be deleted: CDK empties it first.
    template.resource_count_is("Custom::S3AutoDeleteObjects", 1)


def test_every_route_handler_exists_in_the_code_asset() -> None:
    """The asset root is functions/, so "chat.handlers.x" must be a top-level name there."""
    for route in ROUTES:
        module, _, name = route.handler.rpartition(".")
        source = ROOT / "functions" / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{route.key}: {source} missing"
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
        assert name in defined, f"{route.key}: {route.handler} not defined"
