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
from concurrent.futures import Executor, wait
from typing import Any

from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
)

from chat.model import Delivery, PostOutcome
from chat.observability import logger

# Tight timeouts: a hung post must fail fast rather than run the Lambda into its timeout.
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 2
_MAX_ATTEMPTS = 3  # per post, counting the first
_BACKOFF_BASE_S = 0.05  # full jitter: sleep up to base * 2**retry, at most the cap
_BACKOFF_CAP_S = 1.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


def client_config(pool_size: int) -> Config:
    """botocore settings for the client ``chat.bootstrap`` makes: its HTTP pool matches
    the fan-out's concurrency, and botocore never retries (see ``ManagementApi.post``)."""
    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": 1},
        max_pool_connections=pool_size,
    )


class ManagementApi:
    """Posts events to connections through one stage's ``@connections`` endpoint.

    ``client`` is a boto3 ``apigatewaymanagementapi`` client for that endpoint and
    ``pool`` the executor posts to many connections run on (``concurrency`` at a time);
    ``chat.bootstrap`` creates both once per process.
    """

    def __init__(self, client: Any, pool: Executor, concurrency: int) -> None:
        self.client = client
        self.pool = pool
        self.concurrency = concurrency

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        """Post one frame: ``"sent"``, ``"gone"``, ``"unsent"`` or ``"failed"`` (see
        ``chat.model.Delivery``); never raises."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            outcome, retry, problem = self._attempt(connection_id, data)
            if not retry or attempt == _MAX_ATTEMPTS:
                break
            # Full jitter; not for cryptography.
            time.sleep(random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)))  # noqa: S311
        if outcome in ("unsent", "failed"):
            logger.warning(
                "post_to_connection failed",
                extra={"target": connection_id, "attempts": attempt, **problem},
            )
        return outcome

    def _attempt(self, connection_id: str, data: bytes) -> tuple[PostOutcome, bool, dict[str, Any]]:
        """One post: its outcome, whether trying again is safe and may help, and what
        went wrong."""
        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
            return "sent", False, {}
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            if status == 410 or code == "GoneException":
                return "gone", False, {}
            problem = {"error_code": code, "status": status}
            if status in _RETRY_STATUSES:
                return "unsent", True, problem
            return "failed", False, problem
        except (BotoCoreError, OSError) as exc:  # timeouts, refused connections
            # Never sent: safe to retry. A read timeout is not: it was probably delivered.
            if isinstance(exc, (ConnectTimeoutError, EndpointConnectionError)):
                return "unsent", True, {"error": str(exc)}
            return "failed", False, {"error": str(exc)}

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
            for cid in targets:
                delivery.record(cid, self.post(cid, data))
            return delivery
        futures = {self.pool.submit(self.post, cid, data): cid for cid in targets}
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = wait(futures, timeout=timeout)
        for future, cid in futures.items():
            delivery.record(cid, future.result() if future in done else "failed")
        return delivery
