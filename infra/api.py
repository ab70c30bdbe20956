"""The WebSocket API and its functions: one Lambda per ``chat.functions.functions_for(auth)``.

The construct reads the declaration rather than listing functions itself, so a function
added to ``chat.functions`` gets its role, log group, environment, exact grants and
trigger here with no infra edit. Mock routes (``ping``) need no function at all.

With ``auth=cognito`` the ``$connect`` route has the declared Lambda REQUEST authorizer
and the user pool runs the pre sign-up function. Stage access logs (``access_logs``)
are JSON lines whose format names only ``$context`` variables that carry no header,
query string or token (``ACCESS_LOG_FORMAT``).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsii
from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from chat.config import CALLBACK_URL_ENV, JWKS_URL_ENV, TOKEN_AUDIENCE_ENV, TOKEN_ISSUER_ENV
from chat.functions import (
    MOCK_ROUTES,
    ROUTE_SELECTION_EXPRESSION,
    SEND_MESSAGE_ACTION,
    ConnectAuthorizer,
    Function,
    QueueConsumer,
    Route,
    UserPoolTrigger,
    functions_for,
    pascal_case,
)
from infra.auth import ChatUserPool
from infra.data import ChatTables
from infra.layers import build_layer
from infra.queues import ChatQueues
from infra.settings import StackSettings

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"

ARCHITECTURE = lambda_.Architecture.ARM_64  # Graviton: ~20% cheaper per GB-second than x86


def python_runtime(version: str) -> lambda_.Runtime:
    """Lambda's managed runtime for Python ``version`` (the ``python_runtime`` setting)."""
    runtime = getattr(lambda_.Runtime, f"PYTHON_{version.replace('.', '_')}", None)
    if not isinstance(runtime, lambda_.Runtime):
        raise ValueError(f"python_runtime={version}: this aws-cdk-lib knows no Lambda runtime "
                         f"python{version}")
    return runtime

_RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
}

# The mock integration answers from templates: the request template hands API Gateway the
# status code a MOCK needs, the integration response carries the reply. "\$default" is
# the escaped literal key "$default", so the same template applies whatever the frame.
_MOCK_SELECTION = "\\$default"

# The stage's access log: one JSON line per request. Only $context variables that say
# what happened (ids, route, status, the authorizer's outcome, source IP): never
# $request.* or $input (headers, the query string: a token offered as a subprotocol is
# in Sec-WebSocket-Protocol), nor the authorizer's context (username, sub).
ACCESS_LOG_FORMAT: dict[str, str] = {
    "requestId": "$context.requestId",
    "extendedRequestId": "$context.extendedRequestId",
    "connectionId": "$context.connectionId",
    "routeKey": "$context.routeKey",
    "eventType": "$context.eventType",
    "status": "$context.status",
    "requestTimeEpoch": "$context.requestTimeEpoch",
    "sourceIp": "$context.identity.sourceIp",
    "authorizeStatus": "$context.authorize.status",
    "authorizeError": "$context.authorize.error",
    "authorizerStatus": "$context.authorizer.status",
    "authorizerError": "$context.authorizer.error",
    "authorizerLatency": "$context.authorizer.latency",
    "integrationStatus": "$context.integration.status",
    "integrationLatency": "$context.integration.latency",
    "error": "$context.error.message",
}
_TRIGGER_OPERATIONS = {"pre_sign_up": cognito.UserPoolOperation.PRE_SIGN_UP}


def powertools_layer(
    scope: Construct, version: str, runtime: lambda_.Runtime
) -> lambda_.ILayerVersion:
    """The official Powertools for AWS Lambda (Python) v3 layer for our runtime/architecture.

    Why the layer and not a pip-installed bundle: synth stays offline and fast (no pip run,
    no Docker), and AWS builds the arm64 wheels. Why through SSM: the layer ARN embeds the
    region, while the public parameter exists in every region, so a CloudFormation
    parameter of type ``AWS::SSM::Parameter::Value<String>`` resolves it at deploy time and
    the template stays environment-agnostic. ``version`` is exact (``powertools_version``,
    the one uv.lock has and the tests import), never ``latest``, which moves under a
    redeploy.
    """
    parameter = f"/aws/service/powertools/python/{ARCHITECTURE.name}/{runtime.name}/{version}"
    arn = ssm.StringParameter.value_for_string_parameter(scope, parameter)
    return lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", arn)


class ChatApi(Construct):
    """WebSocket API, its auto-deployed stage, and the functions behind its routes."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data: ChatTables,
        queues: ChatQueues,
        settings: StackSettings,
        users: ChatUserPool | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self._data = data
        self._queues = queues
        self._settings = settings
        self._users = users
        self.access_log_group: logs.LogGroup | None = None
        self.logs_role: iam.Role | None = None
        self.logs_account: apigw.CfnAccount | None = None
        declared_functions = functions_for(settings.auth)
        if users is None and any(fn.verifies_tokens for fn in declared_functions):
            raise ValueError(f"auth={settings.auth} needs the user pool (ChatUserPool)")

        self.api = apigwv2.WebSocketApi(
            self,
            "WebSocketApi",
            api_name=f"{Stack.of(self).stack_name}-chat",
            description="Serverless chat (PROTOCOL.md v1)",
            route_selection_expression=ROUTE_SELECTION_EXPRESSION,
        )
        # Auto-deploy: a route added later is live without a separate deployment resource.
        self.stage = apigwv2.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=settings.stage_name,
            auto_deploy=True,
            throttle=apigwv2.ThrottleSettings(
                rate_limit=settings.throttle_rate_limit,
                burst_limit=settings.throttle_burst_limit,
            ),
            access_log_settings=self._access_logs() if settings.access_logs else None,
        )
        if self.logs_account is not None:
            # The account's role must be in place before a stage may log with it.
            self.stage.node.add_dependency(self.logs_account)

        self._code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            exclude=["**/__pycache__", "**/*.pyc", "*.egg-info", "**/.pytest_cache"],
        )
        self._runtime = python_runtime(settings.python_runtime)
        self._layer = powertools_layer(self, settings.powertools_version, self._runtime)
        self._package_layers: dict[tuple[str, ...], lambda_.LayerVersion] = {}

        # Every value a function may be given; each takes only what it declares.
        self._environment_values: dict[str, str] = {
            **{spec.env_var: name for spec, name in data.names().items()},
            CALLBACK_URL_ENV: self.stage.callback_url,
            **queues.urls(),
            **settings.function_settings,
        }
        if users is not None:
            self._environment_values.update({
                TOKEN_ISSUER_ENV: users.issuer,
                TOKEN_AUDIENCE_ENV: users.client.user_pool_client_id,
                JWKS_URL_ENV: users.jwks_url,
            })
        # Keyed by chat.functions' logical names ("NewMessage").
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        self.routes: dict[str, apigwv2.WebSocketRoute] = {}
        self.connect_authorizer: authorizers.WebSocketLambdaAuthorizer | None = None
        for declared in declared_functions:
            self.functions[declared.name] = self._function_for(declared)
        # Authorizers first: the $connect route is created with its authorizer.
        for declared in sorted(declared_functions,
                               key=lambda fn: not isinstance(fn.trigger, ConnectAuthorizer)):
            self._add_trigger(declared, self.functions[declared.name])
        for key, reply in MOCK_ROUTES.items():
            self._add_mock_route(key, reply)

    @property
    def websocket_origin(self) -> str:
        """``wss://{api-id}.execute-api.{region}.{url-suffix}``: the stage URL minus its path.

        Built from the same tokens CDK uses for ``stage.url``, so a Content-Security-Policy
        can name this API alone (connect-src) rather than every ``*.amazonaws.com`` host.
        """
        return f"wss://{self.api.api_id}.execute-api.{self.stage.env.region}.{Aws.URL_SUFFIX}"

    def _function_for(self, declared: Function) -> lambda_.Function:
        """A function with its own role, log group and exactly the grants it declares."""
        name = declared.name
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=_retention(self._settings.log_retention_days),
            # Logs are operational, not user data: they go with the stack.
            removal_policy=RemovalPolicy.DESTROY,
        )
        # An own role instead of the default one: the default attaches the managed
        # AWSLambdaBasicExecutionRole (log writes to any log group); this one may write
        # only to its own log group.
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Chat function {name}",
        )
        log_group.grant_write(role)
        self.roles[name] = role

        # "Function" suffix: a construct id of plain "Default" (the $default route) would
        # make it the scope's default child and hide it from logical ids.
        function = lambda_.Function(
            self,
            f"{name}Function",
            description=declared.description,
            runtime=self._runtime,
            architecture=ARCHITECTURE,
            code=self._code,
            handler=declared.handler,
            layers=[self._layer, *self._packages_layer(declared)],
            memory_size=declared.memory_mb,
            timeout=Duration.seconds(declared.timeout_s),
            role=role,
            log_group=log_group,
            reserved_concurrent_executions=self._settings.reserved_concurrency,
            environment=declared.environment(self._environment_values),
        )
        # Exact item-level actions (chat.functions.ACCESS_ACTIONS), not grant_read_data /
        # grant_read_write_data: those add Scan, Batch*, DescribeTable, ConditionCheckItem
        # and stream reads the handlers never call. The tables have no indexes, so grant()
        # names only the table ARN.
        for spec, actions in declared.table_actions().items():
            self._data.tables[spec].grant(role, *actions)
        if declared.posts_to_connections:
            # Scoped to this stage's @connections, not to every stage of the API.
            self.stage.grant_management_api_access(role)
        for spec in declared.sends_to:
            # SendMessage only (it covers SendMessageBatch), not grant_send_messages'
            # GetQueueAttributes/GetQueueUrl: the function is given the URL.
            role.add_to_principal_policy(iam.PolicyStatement(
                actions=[SEND_MESSAGE_ACTION], resources=[self._queues.queues[spec].queue_arn]
            ))
        return function

    def _packages_layer(self, declared: Function) -> list[lambda_.ILayerVersion]:
        """The function's own packages (``Function.packages``) at uv.lock's versions, built
        for arm64: one layer per set of packages, shared by every function that declares it."""
        if not declared.packages:
            return []
        layer = self._package_layers.get(declared.packages)
        if layer is None:
            built = build_layer(declared.packages, ARCHITECTURE.name, self._settings.python_runtime)
            layer = self._package_layers[declared.packages] = lambda_.LayerVersion(
                self,
                f"{declared.name}Packages",  # named after the first function to need it
                code=lambda_.Code.from_asset(str(built), exclude=[".complete"]),
                compatible_runtimes=[self._runtime],
                compatible_architectures=[ARCHITECTURE],
                description=", ".join(declared.packages),
            )
        return [layer]

    def _add_trigger(self, declared: Function, function: lambda_.Function) -> None:
        trigger = declared.trigger
        if isinstance(trigger, Route):
            # API Gateway runs authorizers on $connect only.
            authorizer = self.connect_authorizer if trigger.key == "$connect" else None
            self.routes[trigger.key] = self.api.add_route(
                trigger.key,
                integration=integrations.WebSocketLambdaIntegration(
                    f"{declared.name}Integration", function
                ),
                authorizer=authorizer,
            )
            return
        if isinstance(trigger, ConnectAuthorizer):
            # Grants API Gateway lambda:InvokeFunction from this authorizer only.
            self.connect_authorizer = authorizers.WebSocketLambdaAuthorizer(
                f"{declared.name}", function, identity_source=list(trigger.identity_source))
            return
        if isinstance(trigger, UserPoolTrigger):
            assert self._users is not None, "a user pool trigger needs the user pool"
            # Grants Cognito lambda:InvokeFunction from this pool only.
            self._users.user_pool.add_trigger(_TRIGGER_OPERATIONS[trigger.operation], function)
            return
        if isinstance(trigger, QueueConsumer):
            # The event source mapping grants the function what polling needs (receive,
            # delete, change visibility, queue attributes) on this queue only.
            function.add_event_source(event_sources.SqsEventSource(
                self._queues.queues[trigger.queue],
                batch_size=trigger.batch_size,
                report_batch_item_failures=True,
                max_concurrency=int(self._settings.trigger_settings[trigger.max_concurrency.key]),
            ))
            return
        raise NotImplementedError(f"{declared.name}: no CDK wiring for {trigger!r} yet")

    def _access_logs(self) -> apigwv2.IAccessLogSettings:
        """JSON lines in a log group of the functions' retention (see ACCESS_LOG_FORMAT)."""
        self.access_log_group = logs.LogGroup(
            self,
            "AccessLogs",
            retention=_retention(self._settings.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        if self._settings.api_gateway_logs_role == "create":
            # One per account and region, used by every API there: kept when this stack
            # goes, so other APIs' logging does not break with it.
            self.logs_role = iam.Role(
                self,
                "ApiGatewayLogsRole",
                assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
                description="API Gateway's account-wide role for writing CloudWatch logs",
                managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AmazonAPIGatewayPushToCloudWatchLogs")],
            )
            self.logs_role.apply_removal_policy(RemovalPolicy.RETAIN)
            self.logs_account = apigw.CfnAccount(
                self, "ApiGatewayAccount", cloud_watch_role_arn=self.logs_role.role_arn)
            self.logs_account.apply_removal_policy(RemovalPolicy.RETAIN)
        return _AccessLogs(self.access_log_group)

    def _add_mock_route(self, key: str, reply: str) -> None:
        """A route API Gateway answers itself (keep-alive ``ping``): no Lambda, no cost."""
        name = pascal_case(key)
        integration_id = f"{name}Integration"
        # return_response=True makes CDK add the route's "$default" route response;
        # without one API Gateway sends nothing back to the client.
        route = self.routes[key] = self.api.add_route(
            key,
            integration=integrations.WebSocketMockIntegration(
                integration_id,
                request_templates={"$default": '{"statusCode": 200}'},
                template_selection_expression=_MOCK_SELECTION,
            ),
            return_response=True,
        )
        # The L2 has no integration-response API; the integration it created lives under
        # the route, named by the id we gave it.
        integration = route.node.find_child(integration_id)
        assert isinstance(integration, apigwv2.WebSocketIntegration)
        apigwv2.CfnIntegrationResponse(
            self,
            f"{name}IntegrationResponse",
            api_id=self.api.api_id,
            integration_id=integration.integration_id,
            integration_response_key="$default",
            template_selection_expression=_MOCK_SELECTION,
            response_templates={"$default": reply},
        )


@jsii.implements(apigwv2.IAccessLogSettings)
class _AccessLogs:
    """``IAccessLogSettings``: the log group and the JSON format."""

    def __init__(self, log_group: logs.LogGroup) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        return apigw.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT))


def _retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(
            f"log_retention_days must be one of {sorted(_RETENTION)}, not {days}"
        ) from None
