"""API Gateway Management API adapter: posting events to connections.

The endpoint is the stage's callback URL (``https://{api}.execute-api.{region}.
amazonaws.com/{stage}`` on AWS, ``http://127.0.0.1:<port>/local`` under the local
gateway). Posts to many connections run on a bounded thread pool over one boto3 client
whose HTTP pool is sized to match. Every recipient gets its post whatever happens to the
others: a 410 Gone is reported back (the caller removes the connection), a 429 is
retried by botocore's standard retry mode, anything else is logged and counted, never
raised.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chat.config import settings
from chat.observability import logger

# Tight timeouts: a hung post must fail fast rather than run the Lambda into its timeout.
_CONNECT_TIMEOUT_S = 1
_READ_TIMEOUT_S = 2
_MAX_ATTEMPTS = 3  # standard mode: retries 429 LimitExceeded and 5xx with backoff


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
            retries={"mode": "standard", "total_max_attempts": _MAX_ATTEMPTS},
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
        try:
            self._api.post_to_connection(ConnectionId=connection_id, Data=data)
            return "sent"
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status == 410 or code == "GoneException":
                return "gone"
            logger.warning(
                "post_to_connection failed",
                extra={"target": connection_id, "error_code": code, "status": status},
            )
        except (BotoCoreError, OSError) as exc:  # timeouts, refused connections
            logger.warning(
                "post_to_connection failed", extra={"target": connection_id, "error": str(exc)}
            )
        return "failed"

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
