"""The WebSocket API and its functions: one Lambda per entry of ``chat.functions.FUNCTIONS``.

The construct reads the declaration rather than listing functions itself, so a function
added to ``chat.functions`` gets its role, log group, environment, exact grants and
trigger here with no infra edit. Mock routes (``ping``) need no function at all.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from chat.config import CALLBACK_URL_ENV
from chat.functions import (
    FUNCTIONS,
    MOCK_ROUTES,
    ROUTE_SELECTION_EXPRESSION,
    SEND_MESSAGE_ACTION,
    Function,
    QueueConsumer,
    Route,
    pascal_case,
)
from infra.data import ChatTables
from infra.queues import ChatQueues
from infra.settings import StackSettings

FUNCTIONS_DIR = Path(__file__).resolve().parent.parent / "functions"

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64  # Graviton: ~20% cheaper per GB-second than x86

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


def powertools_layer(scope: Construct, version: str) -> lambda_.ILayerVersion:
    """The official Powertools for AWS Lambda (Python) v3 layer for our runtime/architecture.

    Why the layer and not a pip-installed bundle: synth stays offline and fast (no pip run,
    no Docker), and AWS builds the arm64 wheels. Why through SSM: the layer ARN embeds the
    region, while the public parameter exists in every region, so a CloudFormation
    parameter of type ``AWS::SSM::Parameter::Value<String>`` resolves it at deploy time and
    the template stays environment-agnostic. Pin ``-c powertools_version=3.x.y`` to stop
    ``latest`` from moving under a redeploy.
    """
    parameter = f"/aws/service/powertools/python/{ARCHITECTURE.name}/{RUNTIME.name}/{version}"
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
    ) -> None:
        super().__init__(scope, construct_id)
        self._data = data
        self._queues = queues
        self._settings = settings

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
        )

        self._code = lambda_.Code.from_asset(
            str(FUNCTIONS_DIR),
            exclude=["**/__pycache__", "**/*.pyc", "*.egg-info", "**/.pytest_cache"],
        )
        self._layer = powertools_layer(self, settings.powertools_version)

        # Every value a function may be given; each takes only what it declares.
        self._environment_values: dict[str, str] = {
            **{spec.env_var: name for spec, name in data.names().items()},
            CALLBACK_URL_ENV: self.stage.callback_url,
            **queues.urls(),
            **settings.function_settings,
        }
        # Keyed by chat.functions' logical names ("NewMessage").
        self.functions: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for declared in FUNCTIONS:
            function = self._function_for(declared)
            self.functions[declared.name] = function
            self._add_trigger(declared, function)
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
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            code=self._code,
            handler=declared.handler,
            layers=[self._layer],
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

    def _add_trigger(self, declared: Function, function: lambda_.Function) -> None:
        trigger = declared.trigger
        if isinstance(trigger, Route):
            self.api.add_route(
                trigger.key,
                integration=integrations.WebSocketLambdaIntegration(
                    f"{declared.name}Integration", function
                ),
            )
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

    def _add_mock_route(self, key: str, reply: str) -> None:
        """A route API Gateway answers itself (keep-alive ``ping``): no Lambda, no cost."""
        name = pascal_case(key)
        integration_id = f"{name}Integration"
        # return_response=True makes CDK add the route's "$default" route response;
        # without one API Gateway sends nothing back to the client.
        route = self.api.add_route(
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


def _retention(days: int) -> logs.RetentionDays:
    try:
        return _RETENTION[days]
    except KeyError:
        raise ValueError(
            f"log_retention_days must be one of {sorted(_RETENTION)}, not {days}"
        ) from None
