"""SQS queues on moto and Lambda's SQS event source mapping, locally.

The queues of ``chat.queues`` are created on the same moto server as the tables, each
with its dead-letter queue and redrive policy, so a function's boto3 SQS client (through
``AWS_ENDPOINT_URL``) sends to them as to SQS. For each function whose trigger is a
``QueueConsumer`` a poller does what Lambda's event source mapping does:

- receives up to ``batch_size`` messages (short polls: moto answers at once, and a
  long poll would hold moto, which applies one request at a time); an empty queue is
  polled again after ``poll_interval_s``, doubled at each empty poll up to
  ``idle_poll_interval_s`` and back at once when a message comes (polling an idle
  queue every 50 ms cost as many moto requests as a busy chat's messages);
- runs at most ``max_concurrency`` invocations at once;
- invokes the function with the SQS event Lambda builds, in its Lambda-like process;
- deletes the messages that succeeded: all of them, or all but the ``batchItemFailures``
  the function reported; on an error or timeout, none;
- what is not deleted becomes visible again after the queue's visibility timeout and is
  received again; after ``max_receive_count`` receives moto's redrive moves it to the
  dead-letter queue, as SQS does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import Iterable
from typing import Any

from chat.functions import Function, QueueConsumer
from chat.queues import QUEUES, QueueSpec
from local_gateway.dynamodb import DUMMY_CREDENTIALS, REGION
from local_gateway.lambda_service import LambdaService

log = logging.getLogger("local_gateway")

ACCOUNT = "123456789012"  # moto's account


class LocalQueues:
    """The project's queues (and their dead-letter queues) on a moto server."""

    def __init__(self, specs: Iterable[QueueSpec] = QUEUES,
                 visibility_timeout_s: int | None = None) -> None:
        self.specs = tuple(specs)
        self.visibility_timeout_s = visibility_timeout_s  # None: each spec's own
        suffix = uuid.uuid4().hex[:8]  # moto is per process: tests start many gateways
        self.names = {spec: f"{spec.logical_id}-local-{suffix}" for spec in self.specs}
        self.urls: dict[QueueSpec, str] = {}
        self.dead_letter_urls: dict[QueueSpec, str] = {}
        self.client: Any = None

    def start(self, endpoint_url: str) -> None:
        import boto3

        self.client = boto3.client(
            "sqs", endpoint_url=endpoint_url, region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        for spec in self.specs:
            name = self.names[spec]
            dead = self.client.create_queue(QueueName=f"{name}-dead-letters")["QueueUrl"]
            dead_arn = self.arn(f"{name}-dead-letters")
            self.urls[spec] = self.client.create_queue(
                QueueName=name,
                Attributes={
                    "VisibilityTimeout": str(self.visibility(spec)),
                    "RedrivePolicy": (
                        f'{{"deadLetterTargetArn": "{dead_arn}", '
                        f'"maxReceiveCount": "{spec.max_receive_count}"}}'
                    ),
                },
            )["QueueUrl"]
            self.dead_letter_urls[spec] = dead

    def visibility(self, spec: QueueSpec) -> int:
        return self.visibility_timeout_s or spec.visibility_timeout_s

    @staticmethod
    def arn(name: str) -> str:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"

    def env(self) -> dict[str, str]:
        """Queue URLs by the variable functions read them from (``chat.queues``)."""
        return {spec.env_var: url for spec, url in self.urls.items()}

    def depth(self, spec: QueueSpec, dead_letters: bool = False) -> int:
        """Messages waiting (visible and in flight), as CloudWatch's alarm would see."""
        url = (self.dead_letter_urls if dead_letters else self.urls)[spec]
        attrs = self.client.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"])


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source hands a function (``Records``)."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": dict(m.get("Attributes", {})),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(  # noqa: S324 - SQS's checksum
                    m["Body"].encode()).hexdigest(),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class SqsPoller:
    """One event source mapping: a queue, a function, its batch size and concurrency."""

    def __init__(self, lambdas: LambdaService, function: Function, queues: LocalQueues,
                 max_concurrency: int, poll_interval_s: float = 0.05,
                 idle_poll_interval_s: float = 0.5) -> None:
        assert isinstance(function.trigger, QueueConsumer)
        self.lambdas = lambdas
        self.function = function
        self.trigger: QueueConsumer = function.trigger
        self.queues = queues
        self.url = queues.urls[self.trigger.queue]
        self.arn = queues.arn(queues.names[self.trigger.queue])
        self.max_concurrency = max(1, max_concurrency)
        self.poll_interval_s = poll_interval_s
        self.idle_poll_interval_s = max(poll_interval_s, idle_poll_interval_s)
        self._slots = asyncio.Semaphore(self.max_concurrency)
        self._running: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self.stats = {"batches": 0, "deleted": 0, "failed": 0}

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._running:
            await asyncio.wait(set(self._running), timeout=self.function.timeout_s)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.poll_interval_s
        while True:
            await self._slots.acquire()
            try:
                messages = await loop.run_in_executor(None, self._receive)
            except Exception:
                self._slots.release()
                log.exception("Polling %s failed", self.url)
                await asyncio.sleep(1)
                continue
            if not messages:
                self._slots.release()
                await asyncio.sleep(interval)
                interval = min(interval * 2, self.idle_poll_interval_s)
                continue
            interval = self.poll_interval_s
            task = asyncio.create_task(self._invoke(messages))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    def _receive(self) -> list[dict[str, Any]]:
        return self.queues.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=self.trigger.batch_size,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    async def _invoke(self, messages: list[dict[str, Any]]) -> None:
        try:
            self.stats["batches"] += 1
            event = sqs_event(messages, self.arn)
            result = await self.lambdas.invoke(
                self.function.name, event, label="sqs", subject=self.queues.names[
                    self.trigger.queue])
            done = self.succeeded(messages, result.response if result.ok else None)
            self.stats["failed"] += len(messages) - len(done)
            if done:
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(None, self._delete, done)
                self.stats["deleted"] += len(done)
        except Exception:
            log.exception("The %s event source failed on a batch", self.function.name)
        finally:
            self._slots.release()

    @staticmethod
    def succeeded(messages: list[dict[str, Any]], response: Any) -> list[dict[str, Any]]:
        """The messages to delete: none after an error; else all but the reported failures.

        As Lambda does, a response that names a message it was not given (or is not the
        documented shape) fails the whole batch.
        """
        if response is None:
            return []
        if not isinstance(response, dict) or not response.get("batchItemFailures"):
            return messages
        ids = {m["MessageId"] for m in messages}
        failures = response["batchItemFailures"]
        try:
            failed = {f["itemIdentifier"] for f in failures}
        except (TypeError, KeyError):
            return []
        if not failed <= ids:
            return []
        return [m for m in messages if m["MessageId"] not in failed]

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), 10):
            self.queues.client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                         for n, m in enumerate(messages[start:start + 10])],
            )
