"""The SQS queues, built from ``chat.queues.QUEUES`` (the local gateway's source too)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chat.queues import QUEUES, QueueSpec


class ChatQueues(Construct):
    """Each queue with its dead-letter queue and an alarm on anything landing there.

    Encrypted at rest with SQS-managed keys (no KMS key to pay for or grant) and TLS
    only. A message lands in the dead-letter queue after ``max_receive_count`` failed
    receives: a work item that cannot be handled (a bug, a malformed body), which
    someone should look at, hence the alarm at one message.
    """

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[QueueSpec, sqs.Queue] = {}
        self.dead_letters: dict[QueueSpec, sqs.Queue] = {}
        self.alarms: dict[QueueSpec, cloudwatch.Alarm] = {}
        for spec in QUEUES:
            dead = sqs.Queue(
                self,
                f"{spec.logical_id}DeadLetters",
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                retention_period=Duration.days(14),  # time to look, SQS's maximum
                # Says it is a dead-letter queue (Guard's CT.SQS.PR.1 then asks it for
                # no dead-letter queue of its own). allowAll, SQS's default: naming the
                # source queue here would make the two queues refer to each other.
                redrive_allow_policy=sqs.RedriveAllowPolicy(
                    redrive_permission=sqs.RedrivePermission.ALLOW_ALL),
            )
            queue = sqs.Queue(
                self,
                spec.logical_id,
                encryption=sqs.QueueEncryption.SQS_MANAGED,
                enforce_ssl=True,
                visibility_timeout=Duration.seconds(spec.visibility_timeout_s),
                retention_period=Duration.days(spec.retention_days),
                dead_letter_queue=sqs.DeadLetterQueue(
                    queue=dead, max_receive_count=spec.max_receive_count
                ),
            )
            self.alarms[spec] = cloudwatch.Alarm(
                self,
                f"{spec.logical_id}DeadLettersAlarm",
                alarm_description=(
                    f"{spec.logical_id}: work items failed {spec.max_receive_count} times "
                    "and were set aside; see the worker's logs"
                ),
                metric=dead.metric_approximate_number_of_messages_visible(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=1,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            self.queues[spec] = queue
            self.dead_letters[spec] = dead

    def urls(self) -> dict[str, str]:
        """Queue URLs by the environment variable functions read them from."""
        return {spec.env_var: queue.queue_url for spec, queue in self.queues.items()}
