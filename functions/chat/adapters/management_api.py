"""API Gateway Management API adapter: posting events to connections.

The endpoint is the stage's callback URL (``https://{api}.execute-api.{region}.
amazonaws.com/{stage}`` on AWS, ``http://127.0.0.1:<port>/local`` under the local
gateway). A post is ``POST {endpoint}/@connections/{id}``, the id percent-encoded as
botocore encodes it, signed with botocore's SigV4 signer for ``execute-api`` and sent
over one keep-alive urllib3 connection pool per endpoint. That is all boto3's
``post_to_connection`` does on the wire, without the machinery around it (event hooks,
the endpoint ruleset, a model-driven serializer and parser, per-call ids) that made a
post through boto3's client cost over twice the CPU it costs here (``bench/fanout.py``
and the README's Performance section).

Posts to many connections run ``concurrency`` at a time on a thread pool, each worker
taking the next recipient in turn. Every recipient gets its post whatever happens to the
others: a 410 Gone is reported back (the caller removes the connection), a 429 or 5xx is
retried with backoff, anything else is logged and counted, never raised.

A post is retried only when API Gateway answered that it did not take it (429, 5xx) or
when the connection to it was never made. Never after a read timeout: a post whose
answer timed out has usually been delivered, and a retry would show the recipient the
same event twice (botocore's standard retry mode would have retried it).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.httpsession import get_cert_path
from urllib3.exceptions import ConnectTimeoutError, HTTPError
from urllib3.util.retry import Retry
from urllib3.util.ssl_ import create_urllib3_context

from chat.model import Delivery, PostOutcome
from chat.observability import logger

# Tight timeouts: a hung post must fail fast rather than run the Lambda into its timeout.
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 2
SIGNING_NAME = "execute-api"  # the service name the Management API's SigV4 scope uses
_MAX_ATTEMPTS = 3  # per post, counting the first
_BACKOFF_BASE_S = 0.05  # full jitter: sleep up to base * 2**retry, at most the cap
_BACKOFF_CAP_S = 1.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# urllib3 neither retries nor redirects (built once: urlopen would build it every call).
_NO_RETRIES = Retry(total=False, redirect=False)


@dataclass(frozen=True)
class _Answer:
    """One attempt: its outcome, whether trying again is safe and may help, and what
    went wrong (for the log)."""

    outcome: PostOutcome
    retry: bool = False
    problem: dict[str, Any] | None = None


class ManagementApi:
    """Posts events to connections through one stage's ``@connections`` endpoint.

    ``endpoint_url`` is the stage's callback URL, ``region`` the one its SigV4 scope
    names, ``credentials`` botocore credentials (``boto3.Session().get_credentials()``;
    refreshable ones are refreshed as botocore does). ``pool`` is the executor posts to
    many connections run on, ``concurrency`` at a time, which is also the size of the
    HTTP connection pool. ``chat.bootstrap`` creates one per endpoint, once per process.
    """

    def __init__(
        self,
        endpoint_url: str,
        *,
        region: str,
        credentials: Any,
        pool: Executor,
        concurrency: int,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.credentials = credentials
        self.pool = pool
        self.concurrency = concurrency
        self.http = http_pool(self.endpoint_url, concurrency)
        parts = urlsplit(self.endpoint_url)
        self._origin = f"{parts.scheme}://{parts.netloc}"  # what SigV4 signs as the host
        self._path_prefix = parts.path + "/@connections/"

    # -- one post ------------------------------------------------------------------------

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        """Post one frame: ``"sent"``, ``"gone"``, ``"unsent"`` or ``"failed"`` (see
        ``chat.model.Delivery``); never raises."""
        for attempt in range(1, _MAX_ATTEMPTS + 1):
            answer = self._attempt(connection_id, data)
            if not answer.retry or attempt == _MAX_ATTEMPTS:
                break
            # Full jitter; not for cryptography.
            time.sleep(random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt)))  # noqa: S311
        if answer.outcome in ("unsent", "failed"):
            # Debug, not warning: the caller logs one line per fan-out with everyone it
            # could not reach (a throttled big room would otherwise log a line per post).
            logger.debug(
                "post_to_connection failed",
                extra={"target": connection_id, "attempts": attempt, **(answer.problem or {})},
            )
        return answer.outcome

    def _attempt(self, connection_id: str, data: bytes) -> _Answer:
        try:
            # Nothing left safe, as botocore encodes a URI label (ids hold =, + and /).
            path = self._path_prefix + quote(connection_id, safe="")
            response = self.http.urlopen(
                "POST", path, body=data, headers=self._signed_headers(path, data),
                retries=_NO_RETRIES, redirect=False, assert_same_host=False,
            )
        except ConnectTimeoutError as exc:  # also refused / unresolvable: never sent
            return _Answer("unsent", retry=True, problem={"error": str(exc)})
        except (HTTPError, OSError, BotoCoreError) as exc:
            # A read timeout above all: the post was probably delivered, so never again.
            return _Answer("failed", problem={"error": str(exc)})
        status = response.status
        if 200 <= status < 300:
            return _Answer("sent")
        if status == 410:
            return _Answer("gone")
        # As botocore reads a rest-json error code: the x-amzn-ErrorType header.
        code = (response.headers.get("x-amzn-ErrorType") or "").split(":")[0] or None
        problem = {"error_code": code, "status": status}
        if status in _RETRY_STATUSES:
            return _Answer("unsent", retry=True, problem=problem)
        return _Answer("failed", problem=problem)

    def _signed_headers(self, path: str, data: bytes) -> dict[str, str]:
        """The headers of a post, SigV4-signed by botocore for ``execute-api`` (it
        raises ``NoCredentialsError`` without credentials, as a boto3 client would)."""
        request = _Post(method="POST", url=self._origin + path, data=data)
        frozen = self.credentials.get_frozen_credentials() if self.credentials else None
        SigV4Auth(frozen, SIGNING_NAME, self.region).add_auth(request)
        return dict(request.headers.items())

    # -- many posts ----------------------------------------------------------------------

    def post_many(
        self, connection_ids: Iterable[str], data: bytes, deadline: float | None = None
    ) -> Delivery:
        """Post the same frame to many connections, ``concurrency`` at a time.

        ``deadline`` (a ``time.monotonic()`` value) bounds the wait so the function
        returns before its Lambda timeout. Then no further post starts: those never
        started count as ``unsent`` (safe to send again), those still running as
        ``failed`` (they may yet be delivered).
        """
        targets = list(dict.fromkeys(connection_ids))
        delivery = Delivery()
        if len(targets) <= 1:
            for cid in targets:
                delivery.record(cid, self.post(cid, data))
            return delivery
        run = _Run(targets, deadline)

        def work() -> None:
            while (cid := run.take()) is not None:
                run.done(cid, self.post(cid, data))

        workers = [self.pool.submit(work) for _ in range(min(self.concurrency, len(targets)))]
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        done, _ = wait(workers, timeout=timeout)
        outcomes = run.stop()
        for worker in done:
            worker.result()  # a worker that raised (a bug, SystemExit) raises here too
        for cid, outcome in outcomes:
            delivery.record(cid, outcome)
        return delivery


class _Post(AWSRequest):
    """A post as botocore's signer sees it. Its body is the bytes given: AWSRequest's
    own ``body`` prepares a whole copy of the request at every read, a fifth of the
    signer's time, to end with the same bytes."""

    @property
    def body(self) -> bytes:
        return self.data


class _Run:
    """The recipients of one ``post_many``: who is next, and what happened to whom."""

    def __init__(self, targets: list[str], deadline: float | None) -> None:
        self.targets = targets
        self.deadline = deadline
        self.outcomes: dict[str, PostOutcome] = {}
        self._next = 0
        self._stopped = False
        self._lock = threading.Lock()

    def take(self) -> str | None:
        with self._lock:
            if self._stopped or self._next == len(self.targets):
                return None
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return None
            cid = self.targets[self._next]
            self._next += 1
            self.outcomes[cid] = "failed"  # in flight: it may be delivered after all
            return cid

    def done(self, cid: str, outcome: PostOutcome) -> None:
        with self._lock:
            if not self._stopped:
                self.outcomes[cid] = outcome

    def stop(self) -> list[tuple[str, PostOutcome]]:
        """Start nothing more; every target with its outcome (never started: unsent)."""
        with self._lock:
            self._stopped = True
            return [(cid, self.outcomes.get(cid, "unsent")) for cid in self.targets]


def http_pool(endpoint_url: str, size: int) -> urllib3.HTTPConnectionPool:
    """A keep-alive connection pool to the endpoint's host: ``size`` connections at most
    (a worker waits for one rather than opening more), timeouts as above, no retries or
    redirects of urllib3's own. HTTPS verifies against botocore's CA bundle, with one
    TLS context for the pool (loading the bundle per connection would cost more than a
    post)."""
    parts = urlsplit(endpoint_url)
    options: dict[str, Any] = {
        "maxsize": size,
        "block": True,
        "timeout": urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
        "retries": False,
    }
    if parts.scheme == "https":
        context = create_urllib3_context()
        context.load_verify_locations(cafile=get_cert_path(True))
        return urllib3.HTTPSConnectionPool(
            parts.hostname, parts.port or 443, ssl_context=context, **options
        )
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"not an http(s) endpoint: {endpoint_url!r}")
    return urllib3.HTTPConnectionPool(parts.hostname, parts.port or 80, **options)
