"""Fixtures that run the real functions in this process, the way API Gateway invokes them.

DynamoDB is moto (in-process ``mock_aws``) with tables built from ``chat.tables``;
``@connections`` is ``ScriptedConnections``, a real HTTP endpoint that can answer 410,
500, 429 or late. Events come from ``local_gateway.events`` through ``InProcessStage``.
The functions' services are built by the composition root (``chat.bootstrap``) from
this environment; a test that needs other settings installs its own with ``configure``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chat import bootstrap
from chat.config import FunctionConfig
from chat.tables import TABLES
from local_gateway.dynamodb import create_table
from local_gateway.testing import InProcessStage, ScriptedConnections

TABLE_NAMES = {"CONNECTIONS_TABLE": "chat-connections", "MESSAGES_TABLE": "chat-messages"}


@pytest.fixture(scope="session")
def recorder() -> Iterator[ScriptedConnections]:
    """The stage's ``@connections``: records posts, answers as scripted."""
    server = ScriptedConnections().start()
    yield server
    server.shutdown()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, recorder: ScriptedConnections) -> Iterator[Any]:
    """moto DynamoDB with the project's tables, and the recorder as @connections."""
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
        bootstrap.use(bootstrap.build())
        yield db
        bootstrap.use(None)


@pytest.fixture
def configure(aws: Any) -> Callable[..., bootstrap.Services]:
    """Install services built with other settings: ``configure(rate_limit=RateLimit(3, 60))``."""

    def install(**changes: Any) -> bootstrap.Services:
        config = dataclasses.replace(FunctionConfig.from_environ(), **changes)
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
