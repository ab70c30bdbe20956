"""The synthesized template, checked against the declarations it is built from.

Expected values come from ``chat.functions`` / ``chat.tables`` (the same tables the local
gateway reads), so these tests fail when the stack and the declarations drift apart.
One in-process synth per module (~5 s); nag runs inside it and fails it on any
unacknowledged error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from chat.config import CALLBACK_URL_ENV
from chat.functions import FUNCTIONS, MOCK_ROUTES, ROUTE_SELECTION_EXPRESSION, Function, routes
from chat.protocol import page_config
from chat.tables import TABLES, TableSpec
from infra.app import STACK_NAME, build_app
from infra.settings import DEFAULTS, StackSettings

ROOT = Path(__file__).resolve().parents[2]
CONTEXT = {key: value for key, value in DEFAULTS.items() if value is not None}
ROUTES = list(routes().values())

# Written out here, not read from chat.functions.ACCESS_ACTIONS: the calls that
# chat.adapters.dynamodb makes
# (Connections: GetItem, Query, Put in TransactWriteItems, UpdateItem, DeleteItem;
# Messages: GetItem, Query, PutItem), so a widened mapping fails this test too.
DYNAMODB_READS = {"dynamodb:GetItem", "dynamodb:Query"}
DYNAMODB_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}
EXPECTED_DYNAMODB_ACTIONS = {
    "none": set(),
    "read": DYNAMODB_READS,
    "append": {"dynamodb:GetItem", "dynamodb:PutItem"},
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


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Template, dict[str, Any], Path]:
    outdir = tmp_path_factory.mktemp("cdk.out")
    app = build_app(context=CONTEXT, outdir=str(outdir))
    assembly = app.synth()  # raises on an unacknowledged cdk-nag error
    raw = assembly.get_stack_by_name(STACK_NAME).template
    return Template.from_json(raw), raw, outdir


@pytest.fixture(scope="module")
def template(synth: tuple[Template, dict[str, Any], Path]) -> Template:
    return synth[0]


@pytest.fixture(scope="module")
def resources(synth: tuple[Template, dict[str, Any], Path]) -> dict[str, Any]:
    return synth[1]["Resources"]


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


# --- API Gateway -------------------------------------------------------------------------


def test_websocket_api_selects_routes_on_action(template: Template) -> None:
    template.resource_count_is("AWS::ApiGatewayV2::Api", 1)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": ROUTE_SELECTION_EXPRESSION},
    )


def test_every_route_exists_once(resources: dict[str, Any]) -> None:
    keys = sorted(
        r["Properties"]["RouteKey"] for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
    )
    assert keys == sorted([r.route_key for r in ROUTES] + list(MOCK_ROUTES))


@pytest.mark.parametrize("route", ROUTES, ids=lambda f: f.name)
def test_lambda_route_integrates_its_handler(resources: dict[str, Any], route: Function) -> None:
    (api_route,) = [
        r
        for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()
        if r["Properties"]["RouteKey"] == route.route_key
    ]
    target = api_route["Properties"]["Target"]["Fn::Join"][1]
    assert target[0] == "integrations/"
    integration = resources[ref_id(target[1])]["Properties"]
    assert integration["IntegrationType"] == "AWS_PROXY"
    function_id, _ = function_for(resources, route)
    assert {"Fn::GetAtt": [function_id, "Arn"]} in integration["IntegrationUri"]["Fn::Join"][1]
    # API Gateway may invoke exactly this function.
    assert any(
        p["Properties"]["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
        and p["Properties"]["Principal"] == "apigateway.amazonaws.com"
        for p in of_type(resources, "AWS::Lambda::Permission").values()
    )


@pytest.mark.parametrize("key", list(MOCK_ROUTES))
def test_mock_route_answers_without_lambda(resources: dict[str, Any], key: str) -> None:
    (route_id, api_route) = next(
        (k, r)
        for k, r in of_type(resources, "AWS::ApiGatewayV2::Route").items()
        if r["Properties"]["RouteKey"] == key
    )
    integration_id = ref_id(api_route["Properties"]["Target"]["Fn::Join"][1][1])
    integration = resources[integration_id]["Properties"]
    assert integration["IntegrationType"] == "MOCK"
    assert json.loads(integration["RequestTemplates"]["$default"]) == {"statusCode": 200}
    # Without a route response (two-way route) API Gateway would swallow the mock's reply.
    assert api_route["Properties"]["RouteResponseSelectionExpression"] == "$default"
    assert any(
        rr["Properties"]["RouteId"] == {"Ref": route_id}
        and rr["Properties"]["RouteResponseKey"] == "$default"
        for rr in of_type(resources, "AWS::ApiGatewayV2::RouteResponse").values()
    )
    (response,) = [
        r["Properties"]
        for r in of_type(resources, "AWS::ApiGatewayV2::IntegrationResponse").values()
        if r["Properties"]["IntegrationId"] == {"Ref": integration_id}
    ]
    assert response["IntegrationResponseKey"] == "$default"
    assert json.loads(response["ResponseTemplates"]["$default"]) == json.loads(MOCK_ROUTES[key])


def test_stage_auto_deploys_with_throttling(template: Template) -> None:
    template.resource_count_is("AWS::ApiGatewayV2::Stage", 1)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": DEFAULTS["stage_name"],
            "AutoDeploy": True,
            "DefaultRouteSettings": {
                "ThrottlingRateLimit": DEFAULTS["throttle_rate_limit"],
                "ThrottlingBurstLimit": DEFAULTS["throttle_burst_limit"],
            },
        },
    )


# --- Lambda --------------------------------------------------------------------------------


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
                "Layers": [{"Ref": Match.string_like_regexp("Powertools|powertools")}],
                "ReservedConcurrentExecutions": Match.absent(),
            },
        )


def test_powertools_layer_comes_from_the_public_ssm_parameter(
    synth: tuple[Template, dict[str, Any], Path],
) -> None:
    parameters = synth[1]["Parameters"]
    (name,) = [k for k in parameters if "powertools" in k.lower()]
    assert parameters[name] == {
        "Type": "AWS::SSM::Parameter::Value<String>",
        "Default": "/aws/service/powertools/python/arm64/python3.13/latest",
    }


def test_functions_share_one_code_asset(resources: dict[str, Any]) -> None:
    keys = {function_for(resources, r)[1]["Properties"]["Code"]["S3Key"] for r in ROUTES}
    assert len(keys) == 1


def test_function_logs_have_retention(resources: dict[str, Any]) -> None:
    for route in ROUTES:
        _, function = function_for(resources, route)
        group = resources[ref_id(function["Properties"]["LoggingConfig"]["LogGroup"])]
        assert group["Properties"]["RetentionInDays"] == DEFAULTS["log_retention_days"]


@pytest.mark.parametrize("route", ROUTES, ids=lambda f: f.name)
def test_function_environment_follows_the_route(resources: dict[str, Any], route: Function) -> None:
    _, function = function_for(resources, route)
    env = function["Properties"]["Environment"]["Variables"]
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
    # The rest: exactly the deploy settings it declares, with the context's values.
    assert env == {s.env_var: str(CONTEXT[s.key]) for s in route.settings}


# --- IAM: grants follow the route table ---------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=lambda f: f.name)
def test_function_grants_match_the_route_table(resources: dict[str, Any], route: Function) -> None:
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
    # Nothing else: its own log group, the tables above, the management API.
    log_group = ref_id(function["Properties"]["LoggingConfig"]["LogGroup"])
    for statement in statements:
        actions = actions_of(statement)
        assert statement["Effect"] == "Allow"
        if all(a.startswith("logs:") for a in actions):
            assert resource_ids(statement) == {log_group}
        elif all(a.startswith("dynamodb:") for a in actions):
            assert resource_ids(statement) <= set(tables.values())
        else:
            assert actions == ["execute-api:ManageConnections"], statement


def test_no_wildcard_actions_are_allowed(resources: dict[str, Any]) -> None:
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            for action in actions_of(statement):
                assert action != "*" and not action.endswith(":*"), (action, statement)
                if action.startswith("dynamodb:"):
                    assert "*" not in action, action


def test_no_unused_dynamodb_action_is_granted_anywhere(
    synth: tuple[Template, dict[str, Any], Path],
) -> None:
    text = json.dumps(synth[1])
    assert "dynamodb:Scan" not in text
    for action in UNUSED_DYNAMODB_ACTIONS:
        assert f'"{action}"' not in text, action


def test_dynamodb_grants_name_tables_not_wildcards(resources: dict[str, Any]) -> None:
    for policy in of_type(resources, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if any(a.startswith("dynamodb:") for a in actions_of(statement)):
                assert statement["Resource"] != "*"
                assert resource_ids(statement) <= set(table_ids(resources).values())


# --- DynamoDB ------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", TABLES, ids=lambda s: s.logical_id)
def test_table_from_spec(resources: dict[str, Any], spec: TableSpec) -> None:
    table = resources[table_ids(resources)[spec]]
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": spec.partition_key, "KeyType": "HASH"},
        {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
    ]
    assert sorted(props["AttributeDefinitions"], key=lambda a: a["AttributeName"]) == sorted(
        [
            {"AttributeName": spec.partition_key, "AttributeType": "S"},
            {"AttributeName": spec.sort_key, "AttributeType": "S"},
        ],
        key=lambda a: a["AttributeName"],
    )
    assert props["TimeToLiveSpecification"] == {
        "AttributeName": spec.ttl_attribute,
        "Enabled": True,
    }
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert "TableName" not in props  # CloudFormation names it: two stacks can share an account
    assert table["DeletionPolicy"] == "Retain"
    assert table["UpdateReplacePolicy"] == "Retain"


# --- Frontend ------------------------------------------------------------------------------


def test_site_bucket_is_private_and_tls_only(resources: dict[str, Any]) -> None:
    (bucket_id, bucket) = next(iter(of_type(resources, "AWS::S3::Bucket").items()))
    props = bucket["Properties"]
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert "WebsiteConfiguration" not in props
    assert bucket["DeletionPolicy"] == "Retain"
    (policy,) = of_type(resources, "AWS::S3::BucketPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    assert any(
        s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        for s in statements
    )
    allows = [s for s in statements if s["Effect"] == "Allow"]
    # Only CloudFront, only this distribution (OAC), only reads.
    assert allows and all(
        s["Principal"] == {"Service": "cloudfront.amazonaws.com"}
        and s["Action"] == "s3:GetObject"
        and "AWS:SourceArn" in s["Condition"]["StringEquals"]
        for s in allows
    )
    assert bucket_id in json.dumps(statements)


def test_cloudfront_uses_origin_access_control(template: Template) -> None:
    template.resource_count_is("AWS::CloudFront::OriginAccessIdentity", 0)
    template.has_resource_properties(
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": Match.object_like(
                {"OriginAccessControlOriginType": "s3", "SigningBehavior": "always"}
            )
        },
    )
    template.has_resource_properties(
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": Match.object_like(
                {
                    "DefaultRootObject": "index.html",
                    "DefaultCacheBehavior": Match.object_like(
                        {"ViewerProtocolPolicy": "redirect-to-https"}
                    ),
                    "Origins": [
                        Match.object_like(
                            {
                                "OriginAccessControlId": {"Fn::GetAtt": [Match.any_value(), "Id"]},
                                "S3OriginConfig": {"OriginAccessIdentity": ""},
                            }
                        )
                    ],
                }
            )
        },
    )


def _joined(value: Any, tokens: dict[str, str]) -> str:
    """An ``Fn::Join`` (or plain string) as text, each Ref replaced by ``tokens[ref]``."""
    if isinstance(value, str):
        return value
    separator, parts = value["Fn::Join"]
    return separator.join(p if isinstance(p, str) else tokens[p["Ref"]] for p in parts)


def test_site_sends_security_headers_and_a_csp_naming_this_api(
    resources: dict[str, Any],
) -> None:
    (policy_id, policy) = next(
        iter(of_type(resources, "AWS::CloudFront::ResponseHeadersPolicy").items())
    )
    (distribution,) = of_type(resources, "AWS::CloudFront::Distribution").values()
    behavior = distribution["Properties"]["DistributionConfig"]["DefaultCacheBehavior"]
    assert behavior["ResponseHeadersPolicyId"] == {"Ref": policy_id}  # ours, not a managed one
    config = policy["Properties"]["ResponseHeadersPolicyConfig"]
    # One name per account, whichever regions the stack is deployed to.
    assert {"Ref": "AWS::Region"} in config["Name"]["Fn::Join"][1]
    headers = config["SecurityHeadersConfig"]
    assert headers["StrictTransportSecurity"]["AccessControlMaxAgeSec"] >= 31536000
    assert headers["ContentTypeOptions"] == {"Override": True}
    assert headers["FrameOptions"] == {"FrameOption": "DENY", "Override": True}
    assert headers["ReferrerPolicy"]["ReferrerPolicy"] in {
        "no-referrer",
        "same-origin",
        "strict-origin-when-cross-origin",
    }
    assert all(h["Override"] is True for h in headers.values())

    csp = headers["ContentSecurityPolicy"]["ContentSecurityPolicy"]
    (api_id,) = of_type(resources, "AWS::ApiGatewayV2::Api")
    # The API's origin from this template's own tokens: the API's id, region and suffix.
    parts = csp["Fn::Join"][1]
    assert {"Ref": api_id} in parts
    assert {"Ref": "AWS::Region"} in parts and {"Ref": "AWS::URLSuffix"} in parts
    text = _joined(csp, {api_id: "API", "AWS::Region": "REGION", "AWS::URLSuffix": "amazonaws.com"})
    directives = {
        name: value.split()
        for name, _, value in (d.strip().partition(" ") for d in text.split(";"))
    }
    assert directives == {
        "default-src": ["'none'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'"],
        "connect-src": ["'self'", "wss://API.execute-api.REGION.amazonaws.com"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    assert "*" not in json.dumps(csp)  # no "*.amazonaws.com", no wildcard of any kind
    assert "ws://" not in json.dumps(csp)  # the local gateway's origins stay in the meta CSP


def test_csp_origin_is_the_stage_url_origin(
    synth: tuple[Template, dict[str, Any], Path], resources: dict[str, Any]
) -> None:
    """connect-src names the host the page is told to connect to (WebSocketUrl output)."""
    (api_id,) = of_type(resources, "AWS::ApiGatewayV2::Api")
    tokens = {api_id: "API", "AWS::Region": "REGION", "AWS::URLSuffix": "SUFFIX"}
    url = _joined(synth[1]["Outputs"]["WebSocketUrl"]["Value"], tokens)
    (policy,) = of_type(resources, "AWS::CloudFront::ResponseHeadersPolicy").values()
    csp = policy["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"][
        "ContentSecurityPolicy"
    ]["ContentSecurityPolicy"]
    origin = url.removesuffix(f"/{DEFAULTS['stage_name']}")
    assert origin == "wss://API.execute-api.REGION.SUFFIX"
    assert f"connect-src 'self' {origin};" in _joined(csp, tokens)


def test_config_json_carries_the_stage_wss_url(
    synth: tuple[Template, dict[str, Any], Path], resources: dict[str, Any]
) -> None:
    (deployment,) = of_type(resources, "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    assert props["DistributionPaths"] == ["/*"]
    # The config source is last, so it wins over any config.json the frontend folder has.
    marker_map = props["SourceMarkers"][-1]
    (marker, value) = next(iter(marker_map.items()))
    parts = value["Fn::Join"][1]
    assert parts[0] == '"wss://' and parts[-1] == f'/{DEFAULTS["stage_name"]}"'
    config_key = props["SourceObjectKeys"][-1].removesuffix(".zip")
    config = (synth[2] / f"asset.{config_key}" / "config.json").read_text()
    assert json.loads(config.replace(marker, '"x"')) == page_config("x")


# --- Outputs, environment, nag ---------------------------------------------------------------


def test_outputs(synth: tuple[Template, dict[str, Any], Path]) -> None:
    outputs = synth[1]["Outputs"]
    assert {"WebSocketUrl", "FrontendUrl", "ConnectionsCallbackUrl", "WscatCommand"} <= set(outputs)
    assert outputs["WebSocketUrl"]["Value"]["Fn::Join"][1][0] == "wss://"
    assert outputs["FrontendUrl"]["Value"]["Fn::Join"][1][0] == "https://"
    assert outputs["ConnectionsCallbackUrl"]["Value"]["Fn::Join"][1][0] == "https://"
    wscat = outputs["WscatCommand"]["Value"]["Fn::Join"][1]
    assert wscat[0].startswith("npx wscat -c 'wss://") and "username=" in wscat[-1]


def test_template_is_environment_agnostic(synth: tuple[Template, dict[str, Any], Path]) -> None:
    text = json.dumps(synth[1])
    assert not re.search(r"\b\d{12}\b", text), "hard-coded account id"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text), "hard-coded region"


def test_cdk_nag_passes_and_every_acknowledgement_has_a_reason(
    synth: tuple[Template, dict[str, Any], Path],
) -> None:
    report = json.loads((synth[2] / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success"
    assert nag["violations"] == []
    for finding in nag["suppressedViolations"]:
        assert len(finding["reason"]) >= 30, finding["ruleName"]


# --- Settings and cdk.json ----------------------------------------------------------------------


def test_cdk_json_runs_the_venv_python_quietly() -> None:
    cdk = json.loads((ROOT / "cdk.json").read_text())
    assert cdk["app"].startswith(".venv/bin/python infra/app.py")
    assert cdk["notices"] is False
    assert cdk["cli-telemetry"] is False
    assert cdk["context"] == CONTEXT  # one set of defaults for the CLI and the tests


def test_context_overrides_parse_cli_strings() -> None:
    app = App(
        context={
            "destroy": "true",
            "throttle_rate_limit": "5",
            "throttle_burst_limit": "7",
            "reserved_concurrency": "3",
            "log_retention_days": "7",
        }
    )
    settings = StackSettings.from_context(app.node)
    assert settings.destroy is True
    assert (settings.throttle_rate_limit, settings.throttle_burst_limit) == (5, 7)
    assert settings.reserved_concurrency == 3
    assert StackSettings.from_context(App().node).reserved_concurrency is None
    assert StackSettings.from_context(App().node).destroy is False
