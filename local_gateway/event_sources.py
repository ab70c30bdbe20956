"""SQS queues on moto and Lambda's SQS event source mapping, locally.

The queues of ``chat.queues`` are created on the same moto server as the tables, each
with its dead-letter queue and redrive policy, so a function's boto3 SQS client (through
``AWS_ENDPOINT_URL``) sends to them as to SQS. For each function whose trigger is a
``QueueConsumer`` a poller does what Lambda's event source mapping does:

- several pollers receive from the queue, as Lambda's do: one while the queue is quiet,
  one more each time a receive comes back full (a backlog), up to what the concurrency
  can use; a poller whose receive comes back short retires, the first one never. Each
  receive asks for up to SQS's 10 messages, and the messages wait in the event source
  (invisible in the queue, as they are while Lambda's pollers hold them) until a batch
  of ``batch_size`` can be invoked. What a function sees is Lambda's: batches of at
  most ``batch_size`` records, at most ``max_concurrency`` at once. One receive (and
  one delete) per ten work items instead of one per item matters here: moto answers one
  request at a time, and every DynamoDB call of every function waits behind them. Short
  polls: moto answers at once, and a long poll would hold it. An empty queue is polled
  again after ``poll_interval_s``, doubled at each empty poll up to
  ``idle_poll_interval_s`` and back at once when a message comes (polling an idle queue
  every 50 ms cost as many moto requests as a busy chat's messages);
- runs at most ``max_concurrency`` invocations at once, all of them as soon as there is
  a backlog (Lambda starts five and adds up to 300 a minute: within a second or two of
  a backlog it is at ``fanout_worker_concurrency``'s default of ten too);
- invokes the function with the SQS event Lambda builds, in its Lambda-like process;
- deletes the messages that succeeded: all of them, or all but the ``batchItemFailures``
  the function reported; on an error or timeout, none. Deletes of invocations that end
  together go in one ``DeleteMessageBatch``;
- what is not deleted becomes visible again after the queue's visibility timeout and is
  received again (SQS does not hand a failed message back sooner, and neither does
  this); after ``max_receive_count`` receives moto's redrive moves it to the
  dead-letter queue, as SQS does.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from chat.functions import Function, QueueConsumer
from chat.queues import QUEUES, QueueSpec
from local_gateway.dynamodb import DUMMY_CREDENTIALS, REGION
from local_gateway.lambda_service import LambdaService

log = logging.getLogger("local_gateway")

ACCOUNT = "123456789012"  # moto's account
# SQS's most messages per ReceiveMessage and entries per DeleteMessageBatch.
SQS_BATCH_MAX = 10


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
    """One event source mapping: a queue, a function, its batch size and concurrency.

    ``stats``: ``batches`` invoked, messages ``deleted`` and ``failed`` (not deleted);
    ``receives`` (ReceiveMessage calls that returned messages), ``peak_in_flight`` (the
    most invocations running at once) and ``peak_pollers``.
    """

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
        self.batch_size = max(1, self.trigger.batch_size)
        self.poll_interval_s = poll_interval_s
        self.idle_poll_interval_s = max(poll_interval_s, idle_poll_interval_s)
        # Received and not yet invoked: at most two rounds of invocations' worth (at least
        # two receives' worth), so a poller asks for ten messages, not one per invocation
        # that ends, whenever there is a backlog.
        self.prefetch = 2 * max(SQS_BATCH_MAX, self.max_concurrency * self.batch_size)
        self.max_pollers = -(-self.prefetch // SQS_BATCH_MAX)
        self._buffer: deque[dict[str, Any]] = deque()
        self._asked = 0  # messages asked for by receives under way
        self._in_flight = 0
        self._changed: asyncio.Condition | None = None
        self._pollers: set[asyncio.Task[None]] = set()
        self._running: set[asyncio.Task[None]] = set()  # invocations
        self._dispatcher: asyncio.Task[None] | None = None
        self._to_delete: list[dict[str, Any]] = []
        self._deleter: asyncio.Task[None] | None = None
        # SQS calls wait on moto: their own threads, never the loop's default executor's.
        self._executor = ThreadPoolExecutor(max_workers=self.max_pollers + 1,
                                            thread_name_prefix=f"sqs-{function.name}")
        self.stats = {"batches": 0, "deleted": 0, "failed": 0}
        self.receives = 0
        self.peak_in_flight = 0
        self.peak_pollers = 0

    def start(self) -> None:
        self._changed = asyncio.Condition()
        self._dispatcher = asyncio.create_task(self._dispatch())
        self._add_poller(first=True)

    async def stop(self) -> None:
        tasks = [*self._pollers, *([self._dispatcher] if self._dispatcher else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._running:
            await asyncio.wait(set(self._running), timeout=self.function.timeout_s)
        if self._deleter is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._deleter), timeout=5)
        self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("%s event source: %d batches in %d receives, %d deleted, %d failed; "
                 "at most %d invocations at once, %d pollers", self.function.name,
                 self.stats["batches"], self.receives, self.stats["deleted"],
                 self.stats["failed"], self.peak_in_flight, self.peak_pollers)

    # -- receiving -----------------------------------------------------------------------

    def _add_poller(self, first: bool = False) -> None:
        task = asyncio.create_task(self._poll(first))
        self._pollers.add(task)
        task.add_done_callback(self._pollers.discard)
        self.peak_pollers = max(self.peak_pollers, len(self._pollers))

    def _room(self) -> int:
        """How many more messages the pollers may ask for now."""
        return min(SQS_BATCH_MAX, self.prefetch - len(self._buffer) - self._asked)

    def _may_poll(self) -> bool:
        # A whole receive's worth of room, or nothing left to invoke.
        room = self._room()
        return room >= SQS_BATCH_MAX or (room > 0 and not self._buffer)

    async def _poll(self, first: bool) -> None:
        assert self._changed is not None
        loop = asyncio.get_running_loop()
        interval = self.poll_interval_s
        while True:
            async with self._changed:
                await self._changed.wait_for(self._may_poll)
                wanted = self._room()
                self._asked += wanted
            try:
                messages = await loop.run_in_executor(self._executor, self._receive, wanted)
            except Exception:
                messages = None
                log.exception("Polling %s failed", self.url)
            async with self._changed:
                self._asked -= wanted
                if messages:
                    self._buffer.extend(messages)
                self._changed.notify_all()
            if messages is None:
                await asyncio.sleep(1)
                continue
            if messages:
                self.receives += 1
            if not messages or len(messages) < wanted:
                if not first:
                    return  # the backlog is gone: one poller is enough again
                if not messages:
                    await asyncio.sleep(interval)
                    interval = min(interval * 2, self.idle_poll_interval_s)
                    continue
                # The queue is drained: let a few more arrive rather than receive them
                # one request each.
                await asyncio.sleep(self.poll_interval_s)
            interval = self.poll_interval_s
            if len(messages) == wanted == SQS_BATCH_MAX and len(self._pollers) < self.max_pollers:
                self._add_poller()  # a full receive: there is a backlog, poll it in parallel

    def _receive(self, wanted: int) -> list[dict[str, Any]]:
        return self.queues.client.receive_message(
            QueueUrl=self.url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=0,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])

    # -- invoking ------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        """Start a batch whenever there are messages and a free invocation."""
        assert self._changed is not None
        while True:
            async with self._changed:
                await self._changed.wait_for(
                    lambda: bool(self._buffer) and self._in_flight < self.max_concurrency)
                batch = [self._buffer.popleft()
                         for _ in range(min(self.batch_size, len(self._buffer)))]
                self._in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
                self._changed.notify_all()  # room for the pollers
            task = asyncio.create_task(self._invoke(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

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
                self._to_delete.extend(done)
                if self._deleter is None or self._deleter.done():
                    self._deleter = asyncio.create_task(self._delete_pending())
        except Exception:
            log.exception("The %s event source failed on a batch", self.function.name)
        finally:
            assert self._changed is not None
            async with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

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

    # -- deleting ------------------------------------------------------------------------

    async def _delete_pending(self) -> None:
        """Delete what succeeded, ten to a request; what ends meanwhile joins the next."""
        loop = asyncio.get_running_loop()
        while self._to_delete:
            chunk = self._to_delete[:SQS_BATCH_MAX]
            del self._to_delete[:SQS_BATCH_MAX]
            try:
                await loop.run_in_executor(self._executor, self._delete, chunk)
            except Exception:
                # Not deleted: received again after the visibility timeout, as on SQS.
                log.exception("Deleting from %s failed", self.url)
                continue
            self.stats["deleted"] += len(chunk)

    def _delete(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_BATCH_MAX):
            self.queues.client.delete_message_batch(
                QueueUrl=self.url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                         for n, m in enumerate(messages[start:start + SQS_BATCH_MAX])],
            )
