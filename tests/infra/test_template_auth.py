"""The stack with sign-in (``-c auth=cognito``): user pool and client, the $connect
authorizer and nothing else authorized by it, least privilege for the new functions,
stage access logs that cannot carry a token, the page's config and CSP, cdk-nag and
cfn-lint on the result. The open mode (``auth=none``) is the rest of tests/infra.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from chat.config import AUTH, JWKS_URL_ENV, TOKEN_AUDIENCE_ENV, TOKEN_ISSUER_ENV
from chat.functions import AUTHORIZER, SIGN_UP_CHECK, function_for_route, functions_for
from chat.identity import AUTH_FLOWS, PASSWORD_POLICY
from chat.protocol import cognito_auth
from infra.api import ACCESS_LOG_FORMAT
from infra.layers import layer_dir
from tests.infra.conftest import (
    Synth,
    actions_of,
    function_for,
    of_type,
    ref_id,
    role_statements,
    synth_with,
)


@pytest.fixture(scope="module")
def resources(cognito_synth: Synth) -> dict[str, Any]:
    return cognito_synth.raw["Resources"]


def one(resources: dict[str, Any], cfn_type: str) -> tuple[str, dict[str, Any]]:
    (item,) = of_type(resources, cfn_type).items()
    return item


def test_the_authorizer_guards_connect_and_only_connect(resources) -> None:
    routes = {r["Properties"]["RouteKey"]: r["Properties"]
              for r in of_type(resources, "AWS::ApiGatewayV2::Route").values()}
    authorized = {key for key, route in routes.items()
                  if route.get("AuthorizationType", "NONE") != "NONE"}
    assert authorized == {"$connect"}
    authorizer_id, authorizer = one(resources, "AWS::ApiGatewayV2::Authorizer")
    assert routes["$connect"]["AuthorizationType"] == "CUSTOM"
    assert routes["$connect"]["AuthorizerId"] == {"Ref": authorizer_id}
    props = authorizer["Properties"]
    assert props["AuthorizerType"] == "REQUEST"
    assert props["IdentitySource"] == list(AUTHORIZER.trigger.identity_source)
    fn_id, _ = function_for(resources, AUTHORIZER)
    assert fn_id in json.dumps(props["AuthorizerUri"])
    # API Gateway may invoke it, from this API's authorizers only.
    grants = [p["Properties"] for p in of_type(resources, "AWS::Lambda::Permission").values()
              if ref_id(p["Properties"]["FunctionName"]) == fn_id]
    assert [g["Principal"] for g in grants] == ["apigateway.amazonaws.com"]
    assert "/authorizers/" in json.dumps(grants[0]["SourceArn"])


def test_the_user_pool_is_self_service_strong_and_kept(resources) -> None:
    pool_id, pool = one(resources, "AWS::Cognito::UserPool")
    props = pool["Properties"]
    assert pool["DeletionPolicy"] == "Retain" and pool["UpdateReplacePolicy"] == "Retain"
    assert props["DeletionProtection"] == "ACTIVE"
    assert props["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is False
    assert props["AutoVerifiedAttributes"] == ["email"]
    assert props["UsernameConfiguration"] == {"CaseSensitive": False}
    policy = props["Policies"]["PasswordPolicy"]
    p = PASSWORD_POLICY
    assert (policy["MinimumLength"], policy["RequireLowercase"], policy["RequireUppercase"],
            policy["RequireNumbers"], policy["RequireSymbols"]) == (
        p.min_length, p.require_lowercase, p.require_uppercase, p.require_digits,
        p.require_symbols)
    sign_up_id, _ = function_for(resources, SIGN_UP_CHECK)
    assert props["LambdaConfig"] == {"PreSignUp": {"Fn::GetAtt": [sign_up_id, "Arn"]}}
    grants = [p["Properties"] for p in of_type(resources, "AWS::Lambda::Permission").values()
              if ref_id(p["Properties"]["FunctionName"]) == sign_up_id]
    assert [g["Principal"] for g in grants] == ["cognito-idp.amazonaws.com"]
    assert grants[0]["SourceArn"] == {"Fn::GetAtt": [pool_id, "Arn"]}


def test_the_page_client_is_public_with_the_declared_flows(resources) -> None:
    _, client = one(resources, "AWS::Cognito::UserPoolClient")
    props = client["Properties"]
    assert props["GenerateSecret"] is False
    assert sorted(props["ExplicitAuthFlows"]) == sorted(AUTH_FLOWS)
    assert "AllowedOAuthFlows" not in props  # no hosted UI, no redirects
    assert props["PreventUserExistenceErrors"] == "ENABLED"
    assert (props["IdTokenValidity"], props["RefreshTokenValidity"]) == (60, 43200)
    assert props["TokenValidityUnits"]["IdToken"] == "minutes"


def test_token_lifetimes_are_settings(tmp_path: Path) -> None:
    raw = synth_with(tmp_path, auth="cognito", id_token_validity_minutes="15",
                     refresh_token_validity_days="2").raw["Resources"]
    _, client = one(raw, "AWS::Cognito::UserPoolClient")
    assert (client["Properties"]["IdTokenValidity"],
            client["Properties"]["RefreshTokenValidity"]) == (15, 2 * 24 * 60)


@pytest.mark.parametrize("declared", [AUTHORIZER, SIGN_UP_CHECK], ids=lambda f: f.name)
def test_the_new_functions_may_only_write_their_own_logs(resources, declared) -> None:
    _, fn = function_for(resources, declared)
    role_id = ref_id(fn["Properties"]["Role"])
    actions = {a for s in role_statements(resources, role_id) for a in actions_of(s)}
    assert actions <= {"logs:CreateLogStream", "logs:PutLogEvents"}, actions
    assert not any(r["Type"] == "AWS::IAM::ManagedPolicy" for r in resources.values()
                   if role_id in json.dumps(r))


def test_the_authorizer_knows_the_pool_and_carries_its_packages(resources, cognito_synth) -> None:
    _, fn = function_for(resources, AUTHORIZER)
    env = fn["Properties"]["Environment"]["Variables"]
    assert set(env) == set(AUTHORIZER.environment_names())
    pool_id, _ = one(resources, "AWS::Cognito::UserPool")
    client_id, _ = one(resources, "AWS::Cognito::UserPoolClient")
    assert pool_id in json.dumps(env[TOKEN_ISSUER_ENV])
    assert json.dumps(env[JWKS_URL_ENV]).endswith('/.well-known/jwks.json"]]}')
    assert env[TOKEN_AUDIENCE_ENV] == {"Ref": client_id}
    layers = fn["Properties"]["Layers"]
    assert len(layers) == 2  # Powertools, and its own packages
    (layer_id,) = [k for k in of_type(resources, "AWS::Lambda::LayerVersion")
                   if k.startswith(f"Api{AUTHORIZER.name}Packages")]
    assert {"Ref": layer_id} in layers
    props = resources[layer_id]["Properties"]
    assert props["CompatibleArchitectures"] == ["arm64"]
    assert props["CompatibleRuntimes"] == ["python3.13"]
    # Built for Lambda's arm64 CPython: the wheels' native parts are aarch64 builds.
    built = layer_dir(AUTHORIZER.packages) / "python"
    assert (built / "jwt" / "__init__.py").is_file()
    native = list(built.glob("cryptography/hazmat/bindings/_rust*.so"))
    assert native and native[0].read_bytes()[:4] == b"\x7fELF"
    assert native[0].read_bytes()[18] == 0xB7  # e_machine: EM_AARCH64


def test_connect_is_told_the_mode(resources) -> None:
    _, fn = function_for(resources, function_for_route("$connect"))
    assert fn["Properties"]["Environment"]["Variables"][AUTH.env_var] == "cognito"


def test_every_declared_function_is_deployed(resources) -> None:
    for declared in functions_for("cognito"):
        function_for(resources, declared)


def test_access_logs_are_json_lines_that_cannot_carry_a_token(resources) -> None:
    _, stage = one(resources, "AWS::ApiGatewayV2::Stage")
    settings = stage["Properties"]["AccessLogSettings"]
    log_group_id = ref_id(settings["DestinationArn"])
    assert resources[log_group_id]["Properties"]["RetentionInDays"] == 30
    fields = json.loads(settings["Format"])
    assert fields == ACCESS_LOG_FORMAT
    for name in ("requestId", "connectionId", "routeKey", "status", "sourceIp"):
        assert name in fields
    assert any("authorize" in value for value in fields.values())
    # Every value is one $context variable, none of which holds a header, the query
    # string, a body or what the authorizer put in its context (username, sub).
    allowed_authorizer = {"status", "error", "latency", "integrationLatency",
                          "integrationStatus", "requestId"}
    for value in fields.values():
        assert re.fullmatch(r"\$context\.[A-Za-z.]+", value), value
        lowered = value.lower()
        for forbidden in ("header", "querystring", "request.", "$input", "body", "protocol",
                          "token", "principalid", "identity.user"):
            assert forbidden not in lowered, value
        if value.startswith("$context.authorizer."):
            assert value.removeprefix("$context.authorizer.") in allowed_authorizer, value


def test_the_account_logging_role_is_created_and_kept(resources) -> None:
    account_id, account = one(resources, "AWS::ApiGateway::Account")
    assert account["DeletionPolicy"] == "Retain"
    role_id = ref_id(account["Properties"]["CloudWatchRoleArn"])
    role = resources[role_id]
    assert role["DeletionPolicy"] == "Retain"
    assert "AmazonAPIGatewayPushToCloudWatchLogs" in json.dumps(
        role["Properties"]["ManagedPolicyArns"])
    _, stage = one(resources, "AWS::ApiGatewayV2::Stage")
    assert account_id in stage.get("DependsOn", [])


def test_an_existing_account_role_is_left_alone_and_logs_work_without_sign_in(
    tmp_path: Path,
) -> None:
    raw = synth_with(tmp_path, access_logs="true", api_gateway_logs_role="existing")
    resources = raw.raw["Resources"]
    assert of_type(resources, "AWS::ApiGateway::Account") == {}
    assert of_type(resources, "AWS::Cognito::UserPool") == {}
    _, stage = one(resources, "AWS::ApiGatewayV2::Stage")
    assert "AccessLogSettings" in stage["Properties"]
    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert "AwsSolutions-APIG1" not in {v["ruleName"] for v in nag["suppressedViolations"]}


def test_the_page_learns_the_pool_and_may_call_exactly_cognito(resources, cognito_synth) -> None:
    (deployment,) = of_type(resources, "Custom::CDKBucketDeployment").values()
    props = deployment["Properties"]
    markers = props["SourceMarkers"][-1]
    config_key = props["SourceObjectKeys"][-1].removesuffix(".zip")
    config = (cognito_synth.outdir / f"asset.{config_key}" / "config.json").read_text()
    for marker in markers:
        config = config.replace(marker, '"x"')
    assert json.loads(config)["auth"] == cognito_auth("x", "x", "x", "x")
    pool_id, _ = one(resources, "AWS::Cognito::UserPool")
    assert pool_id in json.dumps(markers)
    (policy,) = of_type(resources, "AWS::CloudFront::ResponseHeadersPolicy").values()
    csp = json.dumps(policy["Properties"]["ResponseHeadersPolicyConfig"]
                     ["SecurityHeadersConfig"]["ContentSecurityPolicy"])
    assert "https://cognito-idp." in csp
    assert "*" not in csp.split("connect-src")[1].split(";")[0]


def test_outputs_name_the_pool_and_client(cognito_synth: Synth) -> None:
    outputs = cognito_synth.raw["Outputs"]
    pool_id, _ = one(cognito_synth.raw["Resources"], "AWS::Cognito::UserPool")
    client_id, _ = one(cognito_synth.raw["Resources"], "AWS::Cognito::UserPoolClient")
    assert outputs["UserPoolId"]["Value"] == {"Ref": pool_id}
    assert outputs["UserPoolClientId"]["Value"] == {"Ref": client_id}
    assert "bearer." in json.dumps(outputs["WscatCommand"]["Value"])


def test_cdk_nag_fixes_authorization_and_logging_and_explains_the_rest(cognito_synth) -> None:
    report = json.loads((cognito_synth.outdir / "validation-report.json").read_text())
    (nag,) = [p for p in report["pluginReports"] if p["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "success" and nag["violations"] == []
    suppressed = {v["ruleName"] for v in nag["suppressedViolations"]}
    assert "AwsSolutions-APIG1" not in suppressed  # access logs are on
    assert "AwsSolutions-COG1" not in suppressed  # the password policy is strong
    for finding in nag["suppressedViolations"]:
        assert len(finding["reason"]) >= 30, finding["ruleName"]


def test_cfn_lint_finds_no_errors(cognito_synth: Synth) -> None:
    template = cognito_synth.outdir / "ServerlessChat.template.json"
    venv_bin = Path(sys.executable).parent / "cfn-lint"
    cfn_lint = str(venv_bin) if venv_bin.exists() else shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint missing: pip install -e '.[dev]'"
    result = subprocess.run([cfn_lint, "-i", "W3005", "--", str(template)],
                            capture_output=True, text=True, timeout=180, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
