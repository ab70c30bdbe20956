"""Alarms and a dashboard: failures that speak.

Alarms, each evaluated per ``ALARM_PERIOD`` and raised by the first occurrence:

- a function's errors (``AWS/Lambda`` ``Errors``) and throttles (``Throttles``), one
  alarm per function, so the alarm names the function;
- DynamoDB throttling, one alarm per table (``ReadThrottleEvents`` plus
  ``WriteThrottleEvents``);
- failed posts: the functions' own ``PostsFailed`` (``chat.observability``): a post
  that failed for a reason other than gone, throttled or timed out (a signing,
  credential, TLS or permission problem); the functions log the reason at ERROR;
- dead letters: the alarm ``infra.queues.ChatQueues`` already has, given the same action.

With ``-c alarm_email=ops@example.com`` every alarm notifies an SNS topic with that
address subscribed (the address confirms by email once). The topic is encrypted with a
KMS key of its own (CloudWatch cannot publish to a topic under the AWS-managed
``aws/sns`` key, whose policy it may not use) and refuses requests without TLS.
Without an address there is no topic: the alarms still change state, on the dashboard.

The dashboard shows per minute: connections opened (the ``Connections`` metric
``$connect`` counts once it stored one) and closed (``$disconnect``'s invocations),
messages stored,
deliveries sent, gone, throttled, timed out and failed, the fan-out queue's depth and
the age of its oldest message, and each function's errors, duration and concurrency.
The stack outputs its URL (``DashboardUrl``).
"""

from __future__ import annotations

import re

from aws_cdk import Aws, Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from chat.functions import function_for_route
from chat.observability import (
    CONNECTIONS_OPENED,
    MESSAGES_STORED,
    NAMESPACE,
    POSTS_FAILED,
    POSTS_GONE,
    POSTS_SENT,
    POSTS_THROTTLED,
    POSTS_TIMED_OUT,
    SERVICE,
)
from infra.api import ChatApi
from infra.data import ChatTables
from infra.queues import ChatQueues

ALARM_PERIOD = Duration.minutes(5)
GRAPH_PERIOD = Duration.minutes(1)  # "per minute"
# Powertools gives every metric the dimension service=<its service>.
DIMENSIONS = {"service": SERVICE}
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def chat_metric(name: str, *, label: str | None = None,
                period: Duration = GRAPH_PERIOD) -> cloudwatch.Metric:
    """A metric the functions emit (EMF, ``chat.observability``), summed per period."""
    return cloudwatch.Metric(namespace=NAMESPACE, metric_name=name, dimensions_map=DIMENSIONS,
                             statistic="Sum", period=period, label=label)


class ChatMonitoring(Construct):
    """The alarms, their optional SNS topic, and the dashboard."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        api: ChatApi,
        data: ChatTables,
        queues: ChatQueues,
        alarm_email: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.topic: sns.Topic | None = None
        if alarm_email:
            if not _EMAIL.fullmatch(alarm_email):
                raise ValueError(f"alarm_email is not an email address: {alarm_email!r}")
            self.topic = self._topic(alarm_email)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        for name, function in api.functions.items():
            self._alarm(f"{name}Errors", function.metric_errors(period=ALARM_PERIOD),
                        f"{name}: the function failed (an exception or a timeout); see its log")
            self._alarm(f"{name}Throttles", function.metric_throttles(period=ALARM_PERIOD),
                        f"{name}: invocations were throttled (concurrency limit reached)")
        for spec, table in data.tables.items():
            self._alarm(
                f"{spec.logical_id}TableThrottles",
                cloudwatch.MathExpression(
                    expression="FILL(r, 0) + FILL(w, 0)",
                    using_metrics={
                        "r": table.metric("ReadThrottleEvents", statistic="Sum"),
                        "w": table.metric("WriteThrottleEvents", statistic="Sum"),
                    },
                    period=ALARM_PERIOD,
                    label=f"{spec.logical_id} throttle events",
                ),
                f"{spec.logical_id} table: DynamoDB throttled reads or writes",
            )
        self._alarm(
            "PostsFailed", chat_metric(POSTS_FAILED, period=ALARM_PERIOD),
            "Posts to connections failed (not gone, throttled or timed out): signing, "
            "credentials, TLS or a refusal; the functions log 'posts failed' at ERROR "
            "with the reason",
        )
        for spec, alarm in queues.alarms.items():  # dead letters: the queue's own alarm
            self.alarms[f"{spec.logical_id}DeadLetters"] = alarm
            if self.topic is not None:
                alarm.add_alarm_action(actions.SnsAction(self.topic))

        self.dashboard = self._dashboard(api, data, queues)
        self.dashboard_url = (
            f"https://console.aws.amazon.com/cloudwatch/home?region={Aws.REGION}"
            f"#dashboards:name={self.dashboard.dashboard_name}"
        )

    # -- alarms ----------------------------------------------------------------------------

    def _topic(self, email: str) -> sns.Topic:
        key = kms.Key(
            self,
            "AlarmTopicKey",
            description="Encrypts the chat's alarm topic; CloudWatch may use it to publish",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,  # it encrypts nothing once the topic goes
        )
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ))
        # Grants on the key only for AWS services acting for a resource (Guard's
        # CT.KMS.PR.3): nobody can hand its use to someone else through a grant.
        key.add_to_resource_policy(iam.PolicyStatement(
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["kms:CreateGrant"],
            resources=["*"],
            conditions={"BoolIfExists": {"kms:GrantIsForAWSResource": "false",
                                         "aws:PrincipalIsAWSService": "false"}},
        ))
        topic = sns.Topic(self, "AlarmTopic", display_name="Chat alarms", master_key=key,
                          enforce_ssl=True)
        topic.add_subscription(subscriptions.EmailSubscription(email))
        return topic

    def _alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> None:
        alarm = cloudwatch.Alarm(
            self,
            f"{name}Alarm",
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        if self.topic is not None:
            alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms[name] = alarm

    # -- dashboard -------------------------------------------------------------------------

    def _dashboard(self, api: ChatApi, data: ChatTables,
                   queues: ChatQueues) -> cloudwatch.Dashboard:
        functions = list(api.functions.items())

        def per_function(label: str, metric: str, statistic: str) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(
                title=label, width=8, period=GRAPH_PERIOD, statistic=statistic,
                left=[_function_metric(fn, metric, statistic, name) for name, fn in functions],
            )

        fanout = [
            (spec, queue, queues.dead_letters[spec]) for spec, queue in queues.queues.items()
        ]
        # Closed: API Gateway invokes $disconnect once per closed connection (best
        # effort, as it says), whoever closed it; the function counts nothing itself.
        disconnect = api.functions[function_for_route("$disconnect").name]
        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Connections per minute", width=8, left=[
                chat_metric(CONNECTIONS_OPENED, label="opened"),
                disconnect.metric_invocations(period=GRAPH_PERIOD, statistic="Sum",
                                              label="closed ($disconnect)"),
            ]),
            cloudwatch.GraphWidget(title="Messages stored per minute", width=8, left=[
                chat_metric(MESSAGES_STORED, label="stored"),
            ]),
            cloudwatch.GraphWidget(title="Deliveries per minute", width=8, left=[
                chat_metric(POSTS_SENT, label="sent"),
                chat_metric(POSTS_GONE, label="gone"),
                chat_metric(POSTS_THROTTLED, label="throttled"),
                chat_metric(POSTS_TIMED_OUT, label="timed out"),
                chat_metric(POSTS_FAILED, label="failed"),
            ]),
        )
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Fan-out queue depth", width=8,
                left=[queue.metric_approximate_number_of_messages_visible(
                    period=GRAPH_PERIOD, statistic="Maximum", label=spec.logical_id)
                    for spec, queue, _ in fanout]
                + [dead.metric_approximate_number_of_messages_visible(
                    period=GRAPH_PERIOD, statistic="Maximum",
                    label=f"{spec.logical_id} dead letters")
                    for spec, _, dead in fanout],
            ),
            cloudwatch.GraphWidget(
                title="Fan-out queue: age of oldest message (s)", width=8,
                left=[queue.metric_approximate_age_of_oldest_message(
                    period=GRAPH_PERIOD, statistic="Maximum", label=spec.logical_id)
                    for spec, queue, _ in fanout],
            ),
            cloudwatch.GraphWidget(
                title="DynamoDB throttle events", width=8,
                left=[table.metric(name, statistic="Sum", period=GRAPH_PERIOD,
                                   label=f"{spec.logical_id} {kind}")
                      for spec, table in data.tables.items()
                      for name, kind in (("ReadThrottleEvents", "reads"),
                                         ("WriteThrottleEvents", "writes"))],
            ),
        )
        dashboard.add_widgets(
            per_function("Function errors", "Errors", "Sum"),
            per_function("Function duration p99 (ms)", "Duration", "p99"),
            per_function("Function concurrency (max)", "ConcurrentExecutions", "Maximum"),
        )
        dashboard.add_widgets(
            per_function("Function throttles", "Throttles", "Sum"),
            per_function("Function invocations", "Invocations", "Sum"),
            cloudwatch.AlarmStatusWidget(
                title="Alarms", width=8, height=6, alarms=list(self.alarms.values())),
        )
        return dashboard


def _function_metric(function: lambda_.Function, metric: str, statistic: str,
                     label: str) -> cloudwatch.Metric:
    return function.metric(metric, statistic=statistic, period=GRAPH_PERIOD, label=label)
