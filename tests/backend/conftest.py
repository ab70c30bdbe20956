"""Fixtures that run the real functions in this process, the way API Gateway invokes them.

DynamoDB is moto (in-process ``mock_aws``) with tables built from ``chat.tables``;
``@connections`` is ``ScriptedConnections``, a real HTTP endpoint that can answer 410,
500, 429 or late. Events come from ``local_gateway.events`` through ``InProcessStage``.
The functions' services are built by the composition root (``chat.bootstrap``) from
this environment; a test that needs other settings installs its own with ``configure``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chat import bootstrap
from chat.config import FunctionConfig
from chat.queues import FANOUT_QUEUE
from chat.tables import TABLES
from local_gateway.dynamodb import create_table
from local_gateway.testing import InProcessStage, ScriptedConnections

TABLE_NAMES = {"CONNECTIONS_TABLE": "chat-connections", "MESSAGES_TABLE": "chat-messages"}
# Short, so a test sees a failed work item come back (and reach the dead-letter queue)
# within seconds; the deployed values are chat.queues'.
TEST_VISIBILITY_S = 1
TEST_MAX_RECEIVES = 3


@dataclass
class FanoutQueue:
    """The fan-out queue on moto, and its dead-letter queue."""

    sqs: Any
    url: str
    dead_letter_url: str

    def depth(self, url: str | None = None) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url or self.url,
                                              AttributeNames=["All"])["Attributes"]
        return sum(int(attrs.get(name, 0)) for name in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"))


@pytest.fixture(scope="session")
def recorder() -> Iterator[ScriptedConnections]:
    """The stage's ``@connections``: records posts, answers as scripted."""
    server = ScriptedConnections().start()
    yield server
    server.shutdown()


@dataclass
class Aws:
    dynamodb: Any
    queue: FanoutQueue


@pytest.fixture
def aws_services(monkeypatch: pytest.MonkeyPatch, recorder: ScriptedConnections) -> Iterator[Aws]:
    """moto DynamoDB with the project's tables, the fan-out queue on moto's SQS, and the
    recorder as @connections; the functions' services built from that environment."""
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CALLBACK_URL": recorder.url,
        **TABLE_NAMES,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    recorder.reset()
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        for spec in TABLES:
            create_table(db, spec, TABLE_NAMES[spec.env_var])
        sqs = boto3.client("sqs", region_name="us-east-1")
        dead = sqs.create_queue(QueueName="chat-fanout-dead-letters")["QueueUrl"]
        dead_arn = sqs.get_queue_attributes(
            QueueUrl=dead, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName="chat-fanout", Attributes={
            "VisibilityTimeout": str(TEST_VISIBILITY_S),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dead_arn,
                                         "maxReceiveCount": str(TEST_MAX_RECEIVES)}),
        })["QueueUrl"]
        monkeypatch.setenv(FANOUT_QUEUE.env_var, url)
        bootstrap.use(bootstrap.build())
        yield Aws(db, FanoutQueue(sqs, url, dead))
        bootstrap.use(None)


@pytest.fixture
def aws(aws_services: Aws) -> Any:
    """The DynamoDB client of ``aws_services`` (what most tests look at)."""
    return aws_services.dynamodb


@pytest.fixture
def fanout_queue(aws_services: Aws) -> FanoutQueue:
    return aws_services.queue


@pytest.fixture
def configure(aws: Any) -> Callable[..., bootstrap.Services]:
    """Install services built with other settings: ``configure(rate_limit=RateLimit(3, 60))``."""

    def install(**changes: Any) -> bootstrap.Services:
        config = FunctionConfig.from_environ()._replace(**changes)
        services = bootstrap.build(config, dynamodb_client=bootstrap.services().store.client)
        bootstrap.use(services)
        return services

    return install


@pytest.fixture
def json_logs() -> Iterator[Any]:
    """The handlers' log lines as Powertools formats them (parsed JSON), drained per call."""
    from chat.observability import logger

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logging.getLogger(logger.name).addHandler(handler)

    def drain() -> list[dict[str, Any]]:
        lines = stream.getvalue().splitlines()
        stream.seek(0)
        stream.truncate()
        return [json.loads(line) for line in lines if line.strip()]

    yield drain
    logging.getLogger(logger.name).removeHandler(handler)


@pytest.fixture
def gw(aws: Any, recorder: ScriptedConnections) -> InProcessStage:
    return InProcessStage(recorder)


def items(db: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table (a Scan is fine in a test, never in functions/)."""
    return db.scan(TableName=table)["Items"]


def messages_in(db: Any) -> list[dict[str, Any]]:
    return [i for i in items(db, "chat-messages") if i["sk"]["S"].startswith("MSG#")]
