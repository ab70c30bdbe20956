"""The Lambda functions: one per declared function, its runtime, layer, code, logs, env."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from chat.config import CALLBACK_URL_ENV
from chat.functions import (
    FUNCTIONS,
    POSTING_PACKAGES,
    REACTION_PACKAGES,
    Function,
    function_for_route,
)
from infra.layers import layer_dir
from infra.settings import DEFAULTS
from tests.infra.conftest import CONTEXT, ROUTES, Synth, function_for, ref_id, table_ids


def test_one_function_per_route_on_arm64_python313(template: Template) -> None:
    template.resource_count_is("AWS::Lambda::Function", len(FUNCTIONS) + 1)  # + BucketDeployment
    for route in FUNCTIONS:
        template.has_resource_properties(
            "AWS::Lambda::Function",
            {
                "Handler": route.handler,
                "Runtime": "python3.13",
                "Architectures": ["arm64"],
                "MemorySize": route.memory_mb,
                "Timeout": route.timeout_s,
                "LoggingConfig": {"LogGroup": {"Ref": Match.any_value()}},
                "Layers": Match.array_with(
                    [{"Ref": Match.string_like_regexp("Powertools|powertools")}]),
                "ReservedConcurrentExecutions": Match.absent(),
            },
        )


def test_the_functions_that_post_share_one_arm64_layer_with_httptools(
    resources: dict[str, Any],
) -> None:
    # Every function that posts carries httptools; all but `react` (which adds emoji, see
    # the next test) share exactly the posting layer.
    assert all(set(POSTING_PACKAGES) <= set(fn.packages)
               for fn in FUNCTIONS if fn.posts_to_connections)
    posting = [fn for fn in FUNCTIONS
               if fn.posts_to_connections and fn.packages == POSTING_PACKAGES]
    assert len(posting) == len([fn for fn in FUNCTIONS if fn.posts_to_connections]) - 1
    layers = {json.dumps(function_for(resources, fn)[1]["Properties"]["Layers"])
              for fn in posting}
    assert len(layers) == 1  # Powertools and the one packages layer, the same for all
    (packages,) = [layer["Ref"] for layer in json.loads(layers.pop())
                   if "owertools" not in json.dumps(layer)]
    props = resources[packages]["Properties"]
    assert resources[packages]["Type"] == "AWS::Lambda::LayerVersion"
    assert props["CompatibleArchitectures"] == ["arm64"]
    built = layer_dir(POSTING_PACKAGES) / "python" / "httptools"
    assert (built / "__init__.py").is_file()
    native = list(built.glob("parser/parser*.so"))
    assert native and native[0].read_bytes()[:4] == b"\x7fELF"
    assert native[0].read_bytes()[18] == 0xB7  # e_machine: EM_AARCH64


def test_react_has_a_layer_of_its_own_with_emoji_and_httptools(
    resources: dict[str, Any],
) -> None:
    react = function_for_route("react")
    assert react.packages == REACTION_PACKAGES
    layers = function_for(resources, react)[1]["Properties"]["Layers"]
    assert len(layers) == 2  # Powertools and its packages
    built = layer_dir(REACTION_PACKAGES) / "python"
    assert (built / "emoji" / "__init__.py").is_file()
    assert list((built / "httptools" / "parser").glob("parser*.so"))


def test_powertools_layer_comes_from_the_public_ssm_parameter(synth: Synth) -> None:
    parameters = synth.raw["Parameters"]
    (name,) = [k for k in parameters if "powertools" in k.lower()]
    assert parameters[name] == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": "/aws/service/powertools/python/arm64/python3.13/"
                   f"{DEFAULTS['powertools_version']}",
    }


def test_functions_share_one_code_asset(resources: dict[str, Any]) -> None:
    keys = {function_for(resources, r)[1]["Properties"]["Code"]["S3Key"] for r in ROUTES}
    assert len(keys) == 1


def test_function_logs_have_retention(resources: dict[str, Any]) -> None:
    for route in ROUTES:
        _, function = function_for(resources, route)
        group = resources[ref_id(function["Properties"]["LoggingConfig"]["LogGroup"])]
        assert group["Properties"]["RetentionInDays"] == DEFAULTS["log_retention_days"]


@pytest.mark.parametrize("route", FUNCTIONS, ids=lambda f: f.name)
def test_function_environment_follows_the_declaration(
    resources: dict[str, Any], route: Function
) -> None:
    _, function = function_for(resources, route)
    # A copy: the template is shared by the whole session, and this test pops from it.
    env = dict(function["Properties"]["Environment"]["Variables"])
    tables = table_ids(resources)
    expected = {spec.env_var: {"Ref": tables[spec]} for spec in route.tables}
    for name, value in expected.items():
        assert env.pop(name) == value
    callback = env.pop(CALLBACK_URL_ENV, None)
    if route.posts_to_connections:
        parts = callback["Fn::Join"][1]
        assert parts[0] == "https://" and parts[-1] == f"/{DEFAULTS['stage_name']}"
        assert ".execute-api." in parts
    else:
        assert callback is None
    for queue in route.sends_to:  # the URL of each queue it sends to
        assert set(env.pop(queue.env_var)) == {"Ref"}
    # The rest: exactly the deploy settings it declares, with the context's values.
    assert env == {s.env_var: str(CONTEXT[s.key]) for s in route.settings if s.env_var}
