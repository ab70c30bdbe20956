"""API Gateway Management API adapter: posting events to connections.

The endpoint is the stage's callback URL (``https://{api}.execute-api.{region}.
amazonaws.com/{stage}`` on AWS, ``http://127.0.0.1:<port>/local`` under the local
gateway). A post is ``POST {endpoint}/@connections/{id}``, the id percent-encoded as
botocore encodes it, signed with botocore's SigV4 signer for ``execute-api`` and sent
over keep-alive ``http.client`` connections (one per posting thread). That is all boto3's
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

import http.client
import random
import socket
import ssl
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Executor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.exceptions import BotoCoreError
from botocore.httpsession import get_cert_path
from urllib3.util.wait import wait_for_read

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
        self.http = KeptAlive(self.endpoint_url)
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
        # Nothing left safe, as botocore encodes a URI label (ids hold =, + and /).
        path = self._path_prefix + quote(connection_id, safe="")
        try:
            headers = self._signed_headers(path, data)
        except BotoCoreError as exc:  # no credentials: as a boto3 client would fail
            return _Answer("failed", problem={"error": str(exc)})
        conn = self.http.connection()
        try:
            self.http.open(conn)
        except ssl.SSLError as exc:  # e.g. a certificate not to trust: never again
            return _Answer("failed", problem={"error": str(exc)})
        except OSError as exc:  # refused, unreachable, connect timeout: never sent
            return _Answer("unsent", retry=True, problem={"error": str(exc)})
        try:
            conn.request("POST", path, body=data, headers=headers)
            response = conn.getresponse()
            response.read()
        except (OSError, http.client.HTTPException) as exc:
            # A read timeout above all: the post was probably delivered, so never again.
            conn.close()
            return _Answer("failed", problem={"error": str(exc)})
        if response.will_close:
            conn.close()
        status = response.status
        if 200 <= status < 300:
            return _Answer("sent")
        if status == 410:
            return _Answer("gone")
        # As botocore reads a rest-json error code: the x-amzn-ErrorType header.
        code = (response.getheader("x-amzn-ErrorType") or "").split(":")[0] or None
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


class KeptAlive:
    """One keep-alive ``http.client`` connection to the endpoint's host per thread.

    Posts run on the fan-out's threads, so there are never more connections than posts
    in flight. Straight ``http.client`` rather than a urllib3 pool: a post is one small
    request, and urllib3's machinery around it (pool checkout, its own retry and
    timeout objects, response wrappers) cost about a third of a post's CPU
    (``bench/fanout.py``). urllib3's ``wait_for_read`` still tells an idle connection
    the server has closed from a live one, as its pool does before reusing one.

    Connecting and reading have their own timeouts, so a post that was never sent
    (refused, connect timeout: safe to send again) is told from one whose answer never
    came (probably delivered). HTTPS verifies against botocore's CA bundle, with one TLS
    context for every connection (loading the bundle per connection would cost more
    than a post).
    """

    def __init__(self, endpoint_url: str) -> None:
        parts = urlsplit(endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        self.context: ssl.SSLContext | None = None
        if self.tls:
            self.context = ssl.create_default_context(cafile=get_cert_path(True))
        self._local = threading.local()

    def connection(self) -> http.client.HTTPConnection:
        """This thread's connection; a new one if the server closed the last."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and conn.sock is not None and wait_for_read(conn.sock, timeout=0):
            conn.close()  # readable while idle: closed by the server (or garbage)
        if conn is None:
            if self.context is not None:
                conn = http.client.HTTPSConnection(
                    self.host, self.port, timeout=CONNECT_TIMEOUT_S, context=self.context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=CONNECT_TIMEOUT_S)
            self._local.conn = conn
        return conn

    @staticmethod
    def open(conn: http.client.HTTPConnection) -> None:
        """Connect if need be (within the connect timeout), then switch to the read one."""
        if conn.sock is not None:
            return
        try:
            conn.connect()
        except BaseException:
            conn.close()
            raise
        conn.sock.settimeout(READ_TIMEOUT_S)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
