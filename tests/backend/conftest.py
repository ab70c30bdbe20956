"""Fixtures that host the real handlers the way API Gateway does (see tests/harness.py).

DynamoDB is moto (in-process ``mock_aws``) with tables built from ``chat.tables``;
``@connections`` is the harness's real HTTP recorder.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.harness import FakeGateway, Recorder, create_tables, reset_caches


@pytest.fixture(scope="session")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, recorder: Recorder) -> Iterator[Any]:
    """moto DynamoDB with the project's tables, and the recorder as @connections."""
    for key in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CONNECTIONS_TABLE": "chat-connections",
        "MESSAGES_TABLE": "chat-messages",
        "CALLBACK_URL": recorder.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with recorder.lock:
        recorder.posts.clear()
        recorder.attempts.clear()
        recorder.gone.clear()
        recorder.failing.clear()
        recorder.throttle.clear()
        recorder.slow.clear()
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(db, env)
        reset_caches()
        yield db
        reset_caches()


@pytest.fixture
def json_logs() -> Iterator[Any]:
    """The handlers' log lines as Powertools formats them (parsed JSON), drained per call."""
    import io
    import logging

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
def gw(aws: Any, recorder: Recorder) -> FakeGateway:
    return FakeGateway(recorder)
