"""API Gateway Management API adapter: posting events to connections.

The endpoint is the stage's callback URL (``https://{api}.execute-api.{region}.
amazonaws.com/{stage}`` on AWS, ``http://127.0.0.1:<port>/local`` under the local
gateway). A post is ``POST {endpoint}/@connections/{id}``, the id percent-encoded as
botocore encodes it, SigV4-signed for ``execute-api``. That is all boto3's
``post_to_connection`` does on the wire, without the machinery around it (event hooks,
the endpoint ruleset, a model-driven serializer and parser, per-call ids) that made a
post through boto3's client cost over twice the CPU it costs here (``bench/fanout.py``
and docs/performance.md).

A fan-out is CPU-bound long before it is network-bound (1,000 posts of 20 ms, 64 in
flight, need 0.3 s of waiting but took about a second of CPU through threads and
``http.client``), so the posts of one call run on the calling thread: up to
``concurrency`` keep-alive connections, driven without blocking by one ``selectors``
loop. There are no worker threads to wake and no lock to take per post. A request is
one formatted string (the request line, four headers, the body: every value is ours,
and checked for line breaks); answers are read by httptools, the C binding of
Node's llhttp parser that uvicorn uses (h11, tried first, was a third of the
function's CPU per message). Connections stay open between calls (a warm Lambda reuses
them); one the server closed while idle is dropped before it is used again, and one
whose answer failed or timed out is never used again.

Signing is SigV4 for ``execute-api``, computed here from AWS's published
specification (hmac and hashlib; no botocore internals, so a runtime's botocore update
cannot change it) over a canonical request built for the one shape a post has:
``POST``, no query, the signed headers ``host``, ``x-amz-date`` and
``x-amz-security-token``, the payload's SHA-256. What is the same for every post of a
call (the date, the scope, the signing key, the headers, the payload's hash) is
computed once per call rather than once per post. Of botocore it uses only the
credentials' public interface (``get_frozen_credentials``).
``tests/backend/test_management_api.py`` verifies the posts that arrive with
botocore's own SigV4 signer (``SigV4Auth``'s canonical request and signature).
HTTPS trusts the CA bundle boto3 is told to use (``AWS_CA_BUNDLE``), else the system's
store (``ssl.create_default_context``).

Every recipient gets its post whatever happens to the others: a 410 Gone is reported
back (the caller removes the connection), a 429 or 5xx is retried with backoff, anything
else is logged and counted, never raised. Each call counts its posts by how they ended
(Powertools metrics ``PostsSent``, ``PostsGone``, ``PostsThrottled``, ``PostsTimedOut``,
``PostsFailed``; ``PostsFailed`` also by ``reason``, one of ``FAILURE_REASONS``), and
logs each reason a post failed for at ERROR, once per call, with the recipients' ids
and what went wrong, never the payload or a credential. A post is retried only when API Gateway
answered that it did not take it (429, 5xx) or when the connection to it was never
made. Never after a read timeout: a post whose answer timed out has usually been
delivered, and a retry would show the recipient the same event twice (botocore's
standard retry mode would have retried it).
"""

from __future__ import annotations

import contextlib
import errno
import heapq
import hmac
import itertools
import os
import random
import selectors
import socket
import ssl
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from hashlib import sha256
from typing import Any, NamedTuple
from urllib.parse import quote, urlsplit

import httptools
from botocore.exceptions import NoCredentialsError

from chat.model import Delivery, PostOutcome
from chat.observability import (
    POSTS_FAILED,
    POSTS_GONE,
    POSTS_SENT,
    POSTS_THROTTLED,
    POSTS_TIMED_OUT,
    count_by,
    logger,
    metrics,
)

# Tight timeouts: a hung post must fail fast rather than run the Lambda into its timeout.
CONNECT_TIMEOUT_S = 1  # TCP connect and TLS handshake
READ_TIMEOUT_S = 2  # from the request's first byte to the answer's last
SIGNING_NAME = "execute-api"  # the service name the Management API's SigV4 scope uses
_MAX_ATTEMPTS = 3  # per post, counting the first
_BACKOFF_BASE_S = 0.05  # full jitter: wait up to base * 2**retry, at most the cap
_BACKOFF_CAP_S = 1.0
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_READ_SIZE = 64 * 1024
_WANT_READ = selectors.EVENT_READ
_WANT_WRITE = selectors.EVENT_WRITE
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"  # ISO 8601 basic format, UTC (the SigV4 spec's)

# Why a post did not deliver, when it is none of gone, throttled or timed out: the
# ``reason`` dimension of ``PostsFailed`` and of its ERROR log line (kept this short:
# a metric per value).
FAILURE_REASONS = (
    "signing",  # no credentials, or they could not be read or refreshed
    "tls",  # the TLS handshake failed (e.g. a certificate not to trust)
    "connect",  # the connection never opened, every attempt
    "connection",  # reset, closed or garbage after the request went out
    "forbidden",  # 401/403: the signature or the role's grant was refused
    "rejected",  # another 4xx (e.g. 400, 413)
    "server_error",  # 5xx, every attempt
)
# How a post ended, by the metric that counts it.
_THROTTLED, _TIMED_OUT = "throttled", "timed_out"
_METRIC = {"sent": POSTS_SENT, "gone": POSTS_GONE, _THROTTLED: POSTS_THROTTLED,
           _TIMED_OUT: POSTS_TIMED_OUT}


class _Answer(NamedTuple):
    """One attempt: its outcome, whether trying again is safe and may help, why it did
    not deliver (``throttled``, ``timed_out`` or one of ``FAILURE_REASONS``) and what
    went wrong (for the log)."""

    outcome: PostOutcome
    retry: bool = False
    reason: str = ""
    problem: dict[str, Any] | None = None


_SENT = _Answer("sent")
_GONE = _Answer("gone")


class ManagementApi:
    """Posts events to connections through one stage's ``@connections`` endpoint.

    ``endpoint_url`` is the stage's callback URL, ``region`` the one its SigV4 scope
    names, ``credentials`` botocore credentials (``boto3.Session().get_credentials()``;
    refreshable ones are refreshed as botocore does, once per call). ``concurrency`` is
    how many posts of one call are in flight at once, each on its own keep-alive
    connection. ``chat.bootstrap`` creates one per endpoint, once per process; calls
    from several threads at once are safe (each drives its own connections).
    """

    def __init__(
        self, endpoint_url: str, *, region: str, credentials: Any, concurrency: int
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.credentials = credentials
        self.concurrency = max(1, concurrency)
        parts = urlsplit(self.endpoint_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) endpoint: {endpoint_url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "https"
        self.port = parts.port or (443 if self.tls else 80)
        # As botocore writes the Host header (and signs it): the port only if not the default.
        self.host_header = parts.netloc.rpartition("@")[2]
        if parts.port == (443 if self.tls else 80):
            self.host_header = parts.hostname
        self.path_prefix = parts.path + "/@connections/"
        # One TLS context for every connection (loading the bundle per connection
        # would cost more than a post).
        self.context: ssl.SSLContext | None = None
        if self.tls:
            self.context = tls_context()
        self._idle: list[_Connection] = []  # kept alive between calls
        self._idle_lock = threading.Lock()

    def path(self, connection_id: str) -> str:
        # Nothing left safe, as botocore encodes a URI label (ids hold =, + and /).
        return self.path_prefix + quote(connection_id, safe="")

    # -- posting -------------------------------------------------------------------------

    def post(self, connection_id: str, data: bytes) -> PostOutcome:
        """Post one frame: ``"sent"``, ``"gone"``, ``"unsent"`` or ``"failed"`` (see
        ``chat.model.Delivery``); never raises."""
        return _Fanout(self, [connection_id], data, None).run()[0][1]

    def post_many(
        self, connection_ids: Iterable[str], data: bytes, deadline: float | None = None
    ) -> Delivery:
        """Post the same frame to many connections, ``concurrency`` at a time.

        ``deadline`` (a ``time.monotonic()`` value) bounds the wait so the function
        returns before its Lambda timeout. Then no further post starts: those never
        started, or refused and waiting to be tried again, count as ``unsent`` (safe to
        send again), those still waiting for their answer as ``failed`` (they may yet be
        delivered).
        """
        targets = list(dict.fromkeys(connection_ids))
        delivery = Delivery()
        for cid, outcome in _Fanout(self, targets, data, deadline).run():
            delivery.record(cid, outcome)
        return delivery

    # -- kept-alive connections ------------------------------------------------------------

    def _checkout(self, most: int) -> list[_Connection]:
        """Up to ``most`` connections kept from earlier calls, still open."""
        with self._idle_lock:
            taken, self._idle = self._idle[:most], self._idle[most:]
        if not taken:
            return []
        # Readable while idle: the server closed it (or sent garbage). Drop it, as
        # urllib3's pool does before reusing a connection.
        with selectors.DefaultSelector() as selector:
            for conn in taken:
                selector.register(conn.sock, selectors.EVENT_READ, conn)
            readable = {key.data for key, _ in selector.select(0)}
        for conn in readable:
            conn.close()
        return [conn for conn in taken if conn not in readable]

    def _checkin(self, connections: list[_Connection]) -> None:
        with self._idle_lock:
            keep = max(0, self.concurrency - len(self._idle))
            self._idle.extend(connections[:keep])
        for conn in connections[keep:]:
            conn.close()


def tls_context() -> ssl.SSLContext:
    """Verifying against the CA bundle boto3 would be told to use (``AWS_CA_BUNDLE``),
    else the system's trust store, else, on a system with none, certifi's bundle (as
    botocore falls back to it) when installed."""
    bundle = os.environ.get("AWS_CA_BUNDLE") or None
    if bundle is None:
        system = ssl.get_default_verify_paths()  # None where the file or folder is missing
        if system.cafile is None and system.capath is None:
            with contextlib.suppress(ImportError):
                import certifi

                bundle = certifi.where()
    return ssl.create_default_context(cafile=bundle)


class _Signer:
    """Signs the posts of one call for ``execute-api``, with one timestamp.

    AWS Signature Version 4 as AWS documents it ("Create a signed AWS API request"):
    the credential scope is ``date/region/service/aws4_request``; the signing key,
    derived from the secret, the date, the region and the service by four HMACs, is the
    same for every post of the call, so it is derived once (botocore's ``SigV4Auth``
    derives it again for every request, two thirds of a post's signing), and each post
    pays the hash of its canonical request and one HMAC.
    """

    def __init__(self, api: ManagementApi, data: bytes) -> None:
        if api.credentials is None:
            raise NoCredentialsError()  # as a boto3 client would fail
        frozen = api.credentials.get_frozen_credentials()
        stamp = time.strftime(_SIGV4_TIMESTAMP, time.gmtime())
        scope = f"{stamp[:8]}/{api.region}/{SIGNING_NAME}/aws4_request"
        key = f"AWS4{frozen.secret_key}".encode()
        for part in (stamp[:8], api.region, SIGNING_NAME, "aws4_request"):
            key = hmac.new(key, part.encode(), sha256).digest()
        self._key = key
        self._string_to_sign = f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n"
        # The headers a post signs, in the canonical (sorted) order: botocore's
        # ``headers_to_sign`` for a request carrying only these.
        signed = [("host", api.host_header), ("x-amz-date", stamp)]
        if frozen.token:
            signed.append(("x-amz-security-token", frozen.token))
        names = ";".join(name for name, _ in signed)
        canonical_headers = "\n".join(f"{name}:{' '.join(value.split())}" for name, value in signed)
        self._canonical_tail = (
            f"\n\n{canonical_headers}\n\n{names}\n{sha256(data).hexdigest()}"
        )
        self._authorization = (
            f"AWS4-HMAC-SHA256 Credential={frozen.access_key}/{scope}, "
            f"SignedHeaders={names}, Signature="
        )
        # On the wire: the signed headers (Host, X-Amz-Date, X-Amz-Security-Token) and
        # the body's length; the Authorization header follows, per post.
        head = [*signed, ("content-length", str(len(data)))]
        if any(c in value for _, value in head for c in "\r\n\0"):
            raise ValueError("a header value holds a line break")  # never on the wire
        self._head = "".join(f"{name.title()}: {value}\r\n" for name, value in head)
        self._data = data

    def request(self, path: str) -> bytes:
        """The whole request posting the data to ``path`` (percent-encoded), signed."""
        # botocore's canonical request: the path URI-encoded once more (every service
        # but S3), an empty query, the headers, the names signed, the payload's hash.
        canonical = "POST\n" + quote(path, safe="/~") + self._canonical_tail
        string_to_sign = self._string_to_sign + sha256(canonical.encode()).hexdigest()
        signature = hmac.new(self._key, string_to_sign.encode(), sha256).hexdigest()
        head = (f"POST {path} HTTP/1.1\r\n{self._head}"
                f"Authorization: {self._authorization}{signature}\r\n\r\n")
        return head.encode("latin-1") + self._data


class _Connection:
    """One keep-alive connection to the endpoint, driven without blocking; its answers
    are read by httptools (``on_header``, ``on_headers_complete`` and
    ``on_message_complete`` are the parser's callbacks)."""

    def __init__(self) -> None:
        self.sock: socket.socket | ssl.SSLSocket | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.open = False  # connected (and the TLS handshake done)
        self.out = b""  # what is left to write of the request
        self.events = 0  # what the selector waits for
        self.registered: Any = None  # the socket object the selector knows
        # The post it carries: the recipient, which attempt, when it times out.
        self.target = ""
        self.attempt = 0
        self.timeout_at = 0.0
        self.sent_at = 0.0
        self.next_answer()

    def next_answer(self) -> None:
        """Forget what was read of the last answer (the parser's callbacks fill these)."""
        self.status = 0  # the answer's, once its headers are in
        self.error_type: str | None = None
        self.complete = False  # the whole answer is in
        self.framed = False  # its length is known (not "until the connection closes")
        self.keep_alive = False  # HTTP/1.1 without "Connection: close"

    def on_header(self, name: bytes, value: bytes) -> None:
        name = name.lower()
        if name == b"x-amzn-errortype":
            self.error_type = value.decode("latin-1")
        elif name in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        self.keep_alive = self.parser.should_keep_alive()  # reset once the answer ends

    def on_message_complete(self) -> None:
        self.complete = True

    def close(self) -> None:
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()
        self.sock = None
        self.open = False


class _Fanout:
    """The posts of one call: which are waiting, in flight, to be tried again, done."""

    def __init__(
        self, api: ManagementApi, targets: list[str], data: bytes, deadline: float | None
    ) -> None:
        self.api = api
        self.targets = targets
        self.data = data
        self.deadline = deadline
        self.waiting: deque[tuple[str, int]] = deque((cid, 1) for cid in targets)
        # Refused posts waiting out their backoff, each holding its connection (as a
        # thread sleeping before a retry held its slot): a throttled endpoint is not
        # sent more while it throttles. (due, order, cid, attempt, connection or None)
        self.later: list[tuple[float, int, str, int, _Connection | None]] = []
        self._order = itertools.count()
        # How many posts may be in flight: ``concurrency``, halved when API Gateway
        # throttles (429; at most once per round trip, as TCP halves its window) and
        # grown back by one per round of answers taken. A throttled account is then
        # sent about what it takes, not 64 posts at a time of which most come back
        # 429, spend their three attempts and end ``unsent``.
        self.limit = float(api.concurrency)
        self._cut_at = 0.0
        self.outcomes: dict[str, PostOutcome] = {}
        self.busy: set[_Connection] = set()
        self.free: list[_Connection] = []
        self.selector: selectors.BaseSelector | None = None
        self.signer: _Signer | None = None
        self.address: tuple[Any, ...] | None = None
        # Why each post's last attempt did not deliver (its _Answer.reason), and what
        # went wrong with the posts that ended undelivered (for the log).
        self.reasons: dict[str, str] = {}
        self.finished: set[str] = set()
        self.problems: list[dict[str, Any]] = []

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> list[tuple[str, PostOutcome]]:
        """Every target with its outcome (never started, or refused and not yet tried
        again when the deadline came: ``unsent``)."""
        if not self.targets or self._past_deadline():
            return [(cid, "unsent") for cid in self.targets]
        try:
            self.signer = _Signer(self.api, self.data)
        except Exception as exc:  # no credentials, or none to refresh
            problem = {"error_type": type(exc).__name__, "error": _said(exc)}
            for cid in self.targets:
                self.outcomes[cid], self.reasons[cid] = "failed", "signing"
                self.finished.add(cid)
                self.problems.append({"target": cid, "attempts": 0, **problem})
            return self._report()
        self.free = self.api._checkout(min(self.api.concurrency, len(self.targets)))
        self.selector = selectors.DefaultSelector()
        try:
            self._loop()
        finally:
            for conn in self.busy:  # cut off by the deadline: their answers are not read
                conn.close()
            self.selector.close()
            parked = [entry[4] for entry in self.later if entry[4] is not None]
            self.api._checkin([c for c in [*self.free, *parked] if c.open])
        return self._report()

    def _report(self) -> list[tuple[str, PostOutcome]]:
        """Count every post by how it ended, log the failures; the outcomes."""
        results = [(cid, self.outcomes.get(cid, "unsent")) for cid in self.targets]
        ended: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        for cid, outcome in results:
            if outcome in ("sent", "gone"):
                ended[outcome] += 1
                continue
            reason = self.reasons.get(cid) or "unknown"
            if cid not in self.finished:
                # Cut off by the deadline: never started, in flight, or waiting out the
                # backoff of a refusal (a 429's counts as throttled).
                reason = _THROTTLED if reason == _THROTTLED else _TIMED_OUT
            if reason in _METRIC:
                ended[reason] += 1
            else:
                failed[reason] += 1
        for how, count in ended.items():
            metrics.add_metric(name=_METRIC[how], unit="Count", value=count)
        if failed:
            metrics.add_metric(name=POSTS_FAILED, unit="Count", value=failed.total())
            count_by(POSTS_FAILED, "reason", failed)
        for problem in self.problems:
            reason = problem["reason"] = self.reasons.get(problem["target"], "")
            if reason in failed:
                continue
            # Debug: gone, throttled and timed out are expected under load; the caller
            # logs one line per fan-out with everyone it could not reach.
            logger.debug("post_to_connection failed", extra=problem)
        for reason, count in failed.items():
            # One line per reason a post failed for: its recipients (their ids, never
            # the payload) and what the first of them met.
            mine = [p for p in self.problems if p["reason"] == reason]
            first = {k: v for k, v in mine[0].items() if k != "target"}
            logger.error("posts failed", extra={
                **first, "reason": reason, "count": count,
                "targets": [p["target"] for p in mine[:20]],
            })
        return results

    def _loop(self) -> None:
        assert self.selector is not None
        while True:
            now = time.monotonic()
            if self._past_deadline(now):
                return
            while self.later and self.later[0][0] <= now:
                _, _, cid, attempt, conn = heapq.heappop(self.later)
                self.waiting.appendleft((cid, attempt))
                if conn is not None and conn.open:
                    if self._room():
                        self._start(conn, now)  # the retry, on the connection it held
                    else:
                        self.free.append(conn)  # throttled meanwhile: fewer in flight
            while self.waiting and self._room():
                self._start(self.free.pop() if self.free else _Connection(), now)
            if not self.busy:
                if not self.later:
                    return
                self._sleep_until(self.later[0][0])
                continue
            wake = min(conn.timeout_at for conn in self.busy)
            if self.later:
                wake = min(wake, self.later[0][0])
            if self.deadline is not None:
                wake = min(wake, self.deadline)
            for key, _mask in self.selector.select(max(0.0, wake - time.monotonic())):
                self._step(key.data)
            now = time.monotonic()
            for conn in [c for c in self.busy if c.timeout_at <= now]:
                if conn.open:  # sent, no answer in time: probably delivered
                    self._drop(conn)  # its answer may still come: never reuse it
                    self._finish(conn, _Answer("failed", reason=_TIMED_OUT,
                                               problem={"error": "read timeout"}))
                else:  # never connected: never sent
                    self._finish(conn, _Answer("unsent", retry=True, reason="connect",
                                               problem={"error": "connect timeout"}))

    def _room(self) -> bool:
        """Whether another post may start: fewer than ``limit`` in flight or waiting
        to be tried again."""
        return len(self.busy) + len(self.later) < int(self.limit)

    def _past_deadline(self, now: float | None = None) -> bool:
        return self.deadline is not None and (now or time.monotonic()) >= self.deadline

    def _sleep_until(self, due: float) -> None:
        until = due if self.deadline is None else min(due, self.deadline)
        time.sleep(max(0.0, until - time.monotonic()))

    # -- one post on one connection ----------------------------------------------------------

    def _start(self, conn: _Connection, now: float) -> None:
        """Take the next waiting post on ``conn``: connect if need be, then send."""
        cid, attempt = self.waiting.popleft()
        conn.target, conn.attempt = cid, attempt
        self.outcomes[cid] = "failed"  # in flight: it may be delivered after all
        self.busy.add(conn)
        if conn.open:
            self._send(conn, now)
            return
        conn.timeout_at = now + CONNECT_TIMEOUT_S
        try:
            if self.address is None:
                self.address = socket.getaddrinfo(
                    self.api.host, self.api.port, type=socket.SOCK_STREAM)[0]
            family, kind, proto, _, address = self.address
            conn.sock = socket.socket(family, kind, proto)
            conn.sock.setblocking(False)
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = conn.sock.connect_ex(address)
        except OSError as exc:  # no such host, no sockets left: never sent
            self._finish(conn, _Answer("unsent", retry=True, reason="connect",
                                       problem={"error": _said(exc)}))
            return
        if code not in (0, errno.EINPROGRESS):  # refused at once: never sent
            self._finish(conn, _Answer(
                "unsent", retry=True, reason="connect",
                problem={"error": errno.errorcode.get(code, str(code))}))
            return
        self._want(conn, _WANT_WRITE)

    def _step(self, conn: _Connection) -> None:
        """The socket is ready for what ``conn`` waited for: take its next step."""
        if conn not in self.busy:
            return
        if not conn.open:
            self._connect(conn)
        elif conn.out:
            self._write(conn)
        else:
            self._read(conn)

    def _connect(self, conn: _Connection) -> None:
        assert conn.sock is not None
        try:
            if not isinstance(conn.sock, ssl.SSLSocket):
                code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    raise ConnectionError(errno.errorcode.get(code, str(code)))
                if self.api.context is not None:
                    self._want(conn, 0)  # wrapping detaches the socket the selector knows
                    conn.sock = self.api.context.wrap_socket(
                        conn.sock, server_hostname=self.api.host,
                        do_handshake_on_connect=False)
            if isinstance(conn.sock, ssl.SSLSocket):
                conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            return self._want(conn, _WANT_READ)
        except ssl.SSLWantWriteError:
            return self._want(conn, _WANT_WRITE)
        except ssl.SSLError as exc:  # e.g. a certificate not to trust: never again
            return self._finish(conn, _Answer("failed", reason="tls",
                                              problem={"error": _said(exc)}))
        except OSError as exc:  # refused, unreachable, reset: never sent
            return self._finish(conn, _Answer("unsent", retry=True, reason="connect",
                                              problem={"error": _said(exc)}))
        conn.open = True
        self._send(conn, time.monotonic())

    def _send(self, conn: _Connection, now: float) -> None:
        assert self.signer is not None
        conn.out = self.signer.request(self.api.path(conn.target))
        conn.sent_at = now
        conn.timeout_at = now + READ_TIMEOUT_S
        self._write(conn)

    def _write(self, conn: _Connection) -> None:
        assert conn.sock is not None
        try:
            while conn.out:
                conn.out = conn.out[conn.sock.send(conn.out):]
        except (BlockingIOError, ssl.SSLWantWriteError):
            return self._want(conn, _WANT_WRITE)
        except ssl.SSLWantReadError:
            return self._want(conn, _WANT_READ)
        except OSError as exc:  # reset mid-request: it may have arrived
            self._drop(conn)
            return self._finish(conn, _Answer("failed", reason="connection",
                                              problem={"error": _said(exc)}))
        self._want(conn, _WANT_READ)

    def _read(self, conn: _Connection) -> None:
        assert conn.sock is not None
        try:
            while True:
                try:
                    chunk = conn.sock.recv(_READ_SIZE)
                except (BlockingIOError, ssl.SSLWantReadError):
                    return self._want(conn, _WANT_READ)
                except ssl.SSLWantWriteError:
                    return self._want(conn, _WANT_WRITE)
                if not chunk:
                    if conn.status and not conn.framed:  # an answer ending with the connection
                        conn.complete = True
                        return self._answered(conn)
                    raise ConnectionError("closed before the answer")
                conn.parser.feed_data(chunk)
                if conn.complete:
                    return self._answered(conn)
                # TLS may hold decrypted bytes the selector cannot see: read those too.
                if not (isinstance(conn.sock, ssl.SSLSocket) and conn.sock.pending()):
                    return self._want(conn, _WANT_READ)
        except (OSError, httptools.HttpParserError) as exc:
            # A reset or garbage after the request went out: it may have arrived.
            self._drop(conn)
            return self._finish(conn, _Answer("failed", reason="connection",
                                              problem={"error": _said(exc)}))

    def _answered(self, conn: _Connection) -> None:
        status = conn.status
        if 200 <= status < 300:
            answer = _SENT
        elif status == 410:
            answer = _GONE
        else:
            # As botocore reads a rest-json error code: the x-amzn-ErrorType header.
            code = (conn.error_type or "").split(":")[0] or None
            problem = {"error_code": code, "status": status}
            answer = _Answer("unsent" if status in _RETRY_STATUSES else "failed",
                             retry=status in _RETRY_STATUSES, reason=_reason(status),
                             problem=problem)
        if status == 429 and conn.sent_at >= self._cut_at:
            self.limit = max(1.0, self.limit / 2)
            self._cut_at = time.monotonic()
        elif answer in (_SENT, _GONE):
            self.limit = min(float(self.api.concurrency), self.limit + 1 / self.limit)
        keep = not conn.out and conn.open and conn.keep_alive
        conn.next_answer()
        if not keep:
            self._drop(conn)  # "Connection: close", or an answer before the request's end
        self._finish(conn, answer)

    def _finish(self, conn: _Connection, answer: _Answer) -> None:
        """Record the attempt's answer; put ``conn`` to its next post, or aside."""
        cid, attempt = conn.target, conn.attempt
        self.busy.discard(conn)
        self.reasons[cid] = answer.reason
        usable = conn.open and conn.sock is not None
        if not usable:
            self._drop(conn)
        if answer.retry and attempt < _MAX_ATTEMPTS:
            self.outcomes[cid] = "unsent"  # refused: safe to send again
            # Full jitter; not for cryptography.
            wait = random.uniform(0, min(_BACKOFF_CAP_S, _BACKOFF_BASE_S * 2**attempt))  # noqa: S311
            if usable:
                self._want(conn, 0)
            heapq.heappush(self.later, (time.monotonic() + wait, next(self._order), cid,
                                        attempt + 1, conn if usable else None))
            return
        self.outcomes[cid] = answer.outcome
        self.finished.add(cid)
        if answer.outcome in ("unsent", "failed"):
            self.problems.append({"target": cid, "attempts": attempt, **(answer.problem or {})})
        if not usable:
            return
        if self.waiting and not self._past_deadline() and self._room():
            self._start(conn, time.monotonic())  # the same connection, the next post
            return
        self._want(conn, 0)
        self.free.append(conn)

    def _drop(self, conn: _Connection) -> None:
        self._want(conn, 0)
        conn.close()

    def _want(self, conn: _Connection, events: int) -> None:
        """Wait for ``events`` on ``conn``'s socket (0: not at all)."""
        assert self.selector is not None
        if events == conn.events and conn.registered is conn.sock:
            return
        if conn.registered is not None:
            if events and conn.registered is conn.sock:
                self.selector.modify(conn.sock, events, conn)
                conn.events = events
                return
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(conn.registered)
            conn.registered, conn.events = None, 0
        if events and conn.sock is not None:
            self.selector.register(conn.sock, events, conn)
            conn.registered, conn.events = conn.sock, events


def _reason(status: int) -> str:
    """Why an answer of ``status`` (not 2xx, not 410) did not deliver."""
    if status == 429:
        return _THROTTLED
    if status >= 500:
        return "server_error"
    return "forbidden" if status in (401, 403) else "rejected"


def _said(exc: BaseException) -> str:
    """What an exception says, for a log line: its first 200 characters."""
    return str(exc)[:200] or type(exc).__name__
