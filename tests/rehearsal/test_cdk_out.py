"""Reading a synthesized app: its functions and triggers, and the environment each gets.

On the ``cdk.out`` folders the session's rehearsal synthesized. The environment a
function is started with must be exactly the template's variables, resolved to the local
resources they refer to, plus what Lambda itself sets: nothing of the developer's shell,
the project's venv or the gateway's own conveniences.
"""

from __future__ import annotations

import pytest

from chat.functions import ConnectAuthorizer, QueueConsumer, Route, UserPoolTrigger, functions_for
from chat.queues import FANOUT_QUEUE
from chat.tables import CONNECTIONS, MESSAGES
from local_gateway.cdk_out import RESERVED, CloudAssembly, DeployedApp
from local_gateway.settings import GatewaySettings
from local_gateway.testing import GatewayThread

# The session's rehearsal (two synths) runs in the first test's setup: on two busy
# cores that alone has taken three minutes.
pytestmark = pytest.mark.timeout(900)

LAMBDA_SETS = RESERVED | {"PYTHONPATH", "PATH", "LANG", "TZ", "AWS_ENDPOINT_URL",
                          "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SQS",
                          "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"}


@pytest.mark.parametrize("mode", ["none", "cognito"])
def test_the_template_has_the_declared_functions_behind_their_triggers(rehearsal,
                                                                       mode) -> None:
    found = {fn.name: fn for fn in CloudAssembly(rehearsal.root / f"cdk.out-{mode}")
             .functions()}
    declared = {fn.name: fn for fn in functions_for(mode)}
    assert set(found) == set(declared)
    for name, fn in found.items():
        want = declared[name]
        assert (fn.handler, fn.memory_mb, fn.timeout_s) == (
            want.handler, want.memory_mb, want.timeout_s)
        assert type(fn.trigger) is type(want.trigger)
        if isinstance(want.trigger, Route | ConnectAuthorizer | UserPoolTrigger):
            assert fn.trigger == want.trigger
        if isinstance(want.trigger, QueueConsumer):
            assert (fn.trigger.queue, fn.trigger.batch_size) == (want.trigger.queue,
                                                                  want.trigger.batch_size)
        assert set(fn.variables) == set(want.environment_names())
        assert fn.runtime == "python3.13" and fn.architectures == ("arm64",)


def _environments(app: DeployedApp) -> tuple[dict[str, dict[str, str]], object]:
    settings = app.configure(GatewaySettings(port=0, state_dir=None,
                                             throttle_rate_limit=1, throttle_burst_limit=1))
    with GatewayThread(settings, **app.gateway_kwargs()) as gw:
        environments = {name: dict(fn.recipe.environment)
                        for name, fn in app.pool.functions.items()}
        return environments, gw.gateway


def test_a_function_gets_the_templates_variables_resolved_and_lambdas_own(rehearsal) -> None:
    app = DeployedApp(rehearsal.root / "cdk.out-none", overrides={"FANOUT_SHARD_SIZE": "7"})
    environments, gateway = _environments(app)
    for fn in app.functions:
        environment = environments[fn.name]
        assert set(environment) - LAMBDA_SETS == set(fn.variables), fn.name
        assert environment["_HANDLER"] == fn.handler
        assert environment["LAMBDA_TASK_ROOT"] == str(fn.code_dir)
        assert environment["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == str(fn.memory_mb)
        assert environment["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    # The stage's throttle is the template's, whatever the settings said.
    stage = app.assembly.properties(next(iter(app.assembly.of_type(
        "AWS::ApiGatewayV2::Stage"))))["DefaultRouteSettings"]
    assert (gateway.settings.throttle_rate_limit, gateway.settings.throttle_burst_limit) == (
        stage["ThrottlingRateLimit"], stage["ThrottlingBurstLimit"])
    send = environments["NewMessage"]
    assert send["CONNECTIONS_TABLE"] == gateway.dynamodb.table_names[CONNECTIONS]
    assert send["MESSAGES_TABLE"] == gateway.dynamodb.table_names[MESSAGES]
    assert send["FANOUT_QUEUE_URL"] == gateway.queues.urls[FANOUT_QUEUE]
    assert send["CALLBACK_URL"] == gateway.callback_url
    # A command-line setting replaces the template's where the template sets it, only.
    assert send["FANOUT_SHARD_SIZE"] == "7"
    assert "FANOUT_SHARD_SIZE" not in environments["History"]
    # The layers' python/ folders, then the runtime's packages; nothing of this venv.
    path = send["PYTHONPATH"].split(":")
    assert path[-1].endswith("/python") and "runtime-" in path[-1]
    assert not any(".venv" in entry for entry in path)


def test_the_authorizer_verifies_against_the_local_pool(rehearsal) -> None:
    app = DeployedApp(rehearsal.root / "cdk.out-cognito")
    environments, gateway = _environments(app)
    authorizer = environments["Authorizer"]
    pool = gateway.cognito.pool
    assert authorizer["TOKEN_ISSUER"] == pool.issuer  # what the tokens name, unchanged
    assert authorizer["TOKEN_AUDIENCE"] == pool.client_id
    assert authorizer["JWKS_URL"] == (f"{gateway.http_url}/cognito/{pool.pool_id}"
                                      f"/.well-known/jwks.json")  # served locally


def test_the_command_lines_function_settings_override_the_templates(rehearsal) -> None:
    from local_gateway.__main__ import settings_from_args
    from local_gateway.cdk_out import deployed_app

    folder = rehearsal.root / "cdk.out-none"
    settings = settings_from_args(["--fanout-shard-size", "7", "--from-cdk-out", str(folder)])
    assert deployed_app(folder, settings).overrides == {"FANOUT_SHARD_SIZE": "7"}
    # Nothing given: the template's values stand.
    settings = settings_from_args(["--from-cdk-out", str(folder)])
    assert deployed_app(folder, settings).overrides == {}
