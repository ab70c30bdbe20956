"""The composition root: builds the chat for this process, and the only place clients are made.

A Lambda execution environment serves one invocation at a time, many in a row. What is
expensive to build is built here once, on first use, and reused by every invocation:
the configuration (read from the environment), the DynamoDB client, one Management API
adapter per ``@connections`` endpoint (its kept-alive connections spare the next
invocation's posts a TLS handshake). Nothing else in ``chat`` keeps clients in module globals.

Handlers ask for ``chat(request_context, deadline)``. Tests either build ``Chat`` with
parts of their own (``Chat(Store(client, …), ManagementApi(…))``), or install a
``Services`` built from their environment with ``use(build())`` and ``use(None)`` to
forget it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3

from chat.adapters import dynamodb, queue
from chat.adapters.dynamodb import Store
from chat.adapters.management_api import ManagementApi
from chat.adapters.queue import FanoutQueue
from chat.config import FunctionConfig
from chat.service import Chat

# Leave time to log and flush metrics before the Lambda timeout.
DEADLINE_MARGIN_MS = 1000


class Services:
    """Everything one process builds once: configuration, store, connections, queue, and
    the thread that reads alongside a write."""

    def __init__(self, config: FunctionConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self._apis: dict[str, ManagementApi] = {}
        self._queue: FanoutQueue | None = None
        # One thread for a read that runs while the invocation's thread writes
        # (``Chat``'s ``alongside``); it starts on first use.
        self.reads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="read")

    def queue(self) -> FanoutQueue | None:
        """The fan-out queue, for functions given its URL; its client is made on first use."""
        if self._queue is None and self.config.fanout_queue_url:
            client = boto3.client("sqs", config=queue.CLIENT_CONFIG)
            self._queue = FanoutQueue(client, self.config.fanout_queue_url)
        return self._queue

    def connections(self, endpoint_url: str) -> ManagementApi:
        """The Management API of one stage (a process normally only ever sees one)."""
        api = self._apis.get(endpoint_url)
        if api is None:
            api = self._apis[endpoint_url] = ManagementApi(
                endpoint_url,
                region=self.config.region,
                credentials=boto3.session.Session().get_credentials(),
                concurrency=self.config.fanout_concurrency,
            )
        return api


def build(config: FunctionConfig | None = None, *, dynamodb_client: Any = None) -> Services:
    """Services from ``config`` (default: this process's environment)."""
    config = config or FunctionConfig.from_environ()
    client = dynamodb_client or boto3.client("dynamodb", config=dynamodb.CLIENT_CONFIG)
    store = Store(
        client,
        connections_table=config.connections_table,
        messages_table=config.messages_table,
    )
    return Services(config, store)


_services: Services | None = None


def services() -> Services:
    """This process's services, built on first use."""
    global _services
    if _services is None:
        _services = build()
    return _services


def use(replacement: Services | None) -> None:
    """Install services built elsewhere (tests), or ``None`` to rebuild on next use."""
    global _services
    _services = replacement


def callback_url(config: FunctionConfig, api_id: str | None, stage: str | None) -> str:
    """The Management API endpoint: configured, or built from the event's API and stage.

    Built from ``apiId``, region and ``stage`` rather than ``domainName``: behind a custom
    domain, ``domainName`` is the custom name, which does not serve ``@connections``.
    A function that is not a route (the fan-out worker) has no such event: its host
    always sets ``CALLBACK_URL``.
    """
    if config.callback_url:
        return config.callback_url
    if not (api_id and stage):
        raise RuntimeError("CALLBACK_URL is not set and there is no API event to build it from")
    return f"https://{api_id}.execute-api.{config.region}.amazonaws.com/{stage}"


def remaining_ms(context: Any) -> int | None:
    """The invocation's time left, from a Lambda context (None without one)."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining() if callable(remaining) else None


def chat(
    remaining_ms: int | None = None, *, api_id: str | None = None, stage: str | None = None
) -> Chat:
    """The chat for one invocation; ``api_id``/``stage`` of the route's event, if any.

    ``remaining_ms``: the invocation's time left (the Lambda context's); fan-out stops
    waiting ``DEADLINE_MARGIN_MS`` before it runs out.
    """
    s = services()
    deadline = None
    if remaining_ms is not None:
        deadline = time.monotonic() + max(0, remaining_ms - DEADLINE_MARGIN_MS) / 1000
    return Chat(
        s.store,
        s.connections(callback_url(s.config, api_id, stage)),
        queue=s.queue(),
        shard_size=s.config.fanout_shard_size,
        rate_limit=s.config.rate_limit,
        deadline=deadline,
        alongside=s.reads,
    )
