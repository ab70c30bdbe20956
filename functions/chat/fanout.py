"""API Gateway Management API adapter: posting events to connections.

The endpoint is the stage's callback URL (``https://{api}.execute-api.{region}.
amazonaws.com/{stage}`` on AWS, ``http://127.0.0.1:<port>/local`` under the local
gateway). Posts to many connections run on a bounded thread pool over one boto3 client
whose HTTP pool is sized to match. Every recipient gets its post whatever happens to the
others: a 410 Gone is reported back (the caller removes the connection), a 429 or 5xx
is retried with backoff, anything else is logged and counted, never raised.

Retries are ours, not botocore's: its standard mode also retries a read timeout, and a
post whose answer timed out has usually been delivered, so the retry would show the
recipient the same event twice. A post is retried only when API Gateway answered that it
did not take it (429, 5xx) or when the connection to it was never made.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from chat.config import settings
from chat.observability import logger

# Tight timeouts: a hung post must fail fast rather than run the Lambda into its timeout.
_CONNECT_TIMEOUT_S = 1
_READ_TIMEOUT_S = 2
_MAX_ATTEMPTS = 3  # per post, counting the first
_BACKOFF_BASE_S = 0.05  # full jitter: sleep up to base * 2**retry, at most the cap
_BACKOFF_CAP_S = 1.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class Delivery:
    """What happened to one fan-out."""

    sent: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@lru_cache(maxsize=8)
def _client(endpoint_url: str, pool_size: int) -> Any:
    # Created once per endpoint and process: building a client costs ~10 ms and its
    # connection pool keeps TLS sessions warm across invocations.
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint_url,
        config=Config(
            connect_timeout=_CONNECT_TIMEOUT_S,
            read_timeout=_READ_TIMEOUT_S,
            retries={"mode": "standard", "total_max_attempts": 1},  # see Fanout.post
            max_pool_connections=pool_size,
        ),
    )


@lru_cache(maxsize=1)
def _pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="fanout")


class Fanout:
    """Posts events to connections through one stage's @connections endpoint."""

    def __init__(self, endpoint_url: str, concurrency: int | None = None) -> None:
        self.endpoint_url = endpoint_url
        self.concurrency = concurrency or settings().fanout_concurrency
        self._api = _client(endpoint_url, self.concurrency)

    def post(self, connection_id: str, data: bytes) -> str:
        """Post one frame. Returns ``"sent"``, ``"gone"`` or ``"failed"``; never raises."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            outcome, retry, problem = self._attempt(connection_id, data)
            if not retry or attempt == _MAX_ATTEMPTS:
                break
            # Full jitter; not for cryptography.
            time.sleep(random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)))  # noqa: S311
        if outcome == "failed":
            logger.warning(
                "post_to_connection failed",
                extra={"target": connection_id, "attempts": attempt, **problem},
            )
        return outcome

    def _attempt(self, connection_id: str, data: bytes) -> tuple[str, bool, dict[str, Any]]:
        """One post: its outcome, whether trying again is safe and may help, and what
        went wrong."""
        try:
            self._api.post_to_connection(ConnectionId=connection_id, Data=data)
            return "sent", False, {}
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status == 410 or code == "GoneException":
                return "gone", False, {}
            problem = {"error_code": code, "status": status}
            return "failed", status in _RETRY_STATUSES, problem
        except (BotoCoreError, OSError) as exc:  # timeouts, refused connections
            # Never sent: safe to retry. A read timeout is not: it was probably delivered.
            retry = isinstance(exc, (ConnectTimeoutError, EndpointConnectionError))
            return "failed", retry, {"error": str(exc)}

    def post_many(
        self, connection_ids: Iterable[str], data: bytes, deadline: float | None = None
    ) -> Delivery:
        """Post the same frame to many connections, ``concurrency`` at a time.

        ``deadline`` (a ``time.monotonic()`` value) bounds the wait so the function
        returns before its Lambda timeout; posts still running then count as failed.
        """
        targets = list(dict.fromkeys(connection_ids))
        delivery = Delivery()
        if len(targets) <= 1:
            outcomes = {cid: self.post(cid, data) for cid in targets}
        else:
            pool = _pool(self.concurrency)
            futures = {pool.submit(self.post, cid, data): cid for cid in targets}
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, _ = wait(futures, timeout=timeout)
            outcomes = {
                cid: (future.result() if future in done else "failed")
                for future, cid in futures.items()
            }
        for cid, outcome in outcomes.items():
            getattr(delivery, outcome).append(cid)
        return delivery
