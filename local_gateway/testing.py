"""The local gateway for tests and benches, whole or in parts.

``GatewayThread`` is the quick one (no interpreter start, a real port, any functions)::

    with GatewayThread(GatewaySettings(port=0, state_dir=None)) as gw:
        websockets.sync.client.connect(gw.websocket_url + "?username=alice")

``GatewayProcess`` runs exactly what ``make dev`` runs (``python -m local_gateway``), for
tests of the command itself: signals, restarts on the same port, the printed banner.
Both pick a free port with ``port=0`` and report the real one.

For tests of the functions themselves, without sockets or processes:

- ``ScriptedConnections``: an ``@connections`` endpoint (real HTTP) that records every
  post one by one and answers 410 Gone, 500, 429 or late for chosen connections, which
  the local stage never does on purpose (and moto's never does at all);
- ``InProcessStage``: invokes the declared functions in this process with the events
  ``local_gateway.events`` builds (the same builders the gateway uses), routing frames
  with the same ``select_route``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode

from chat.functions import FUNCTIONS, MOCK_ROUTES, Function, QueueConsumer, routes
from local_gateway.event_sources import SqsPoller, sqs_event
from local_gateway.events import (
    ConnectionInfo,
    connect_event,
    disconnect_event,
    new_gateway_id,
    route_event,
)
from local_gateway.gateway import Gateway
from local_gateway.routing import select_route
from local_gateway.runtime import FunctionConfig, LambdaContext
from local_gateway.settings import REPO_ROOT, GatewaySettings

_PAGE_LINE = re.compile(r"Page:\s+http://127\.0\.0\.1:(\d+)/")


class GatewayThread:
    """A ``Gateway`` on its own event loop in a daemon thread; a context manager."""

    def __init__(self, settings: GatewaySettings | None = None, **gateway_kwargs: Any) -> None:
        self.gateway = Gateway(settings or GatewaySettings(port=0, state_dir=None),
                               **gateway_kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="local-gateway")

    def start(self) -> GatewayThread:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.gateway.start(), self._loop).result(timeout=30)
        except BaseException:
            self.stop()  # e.g. the port is taken: release what did start
            raise
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.gateway.stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the gateway's loop (e.g. ``gw.call(gw.gateway.save())``)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def http_url(self) -> str:
        return self.gateway.http_url

    @property
    def websocket_url(self) -> str:
        return self.gateway.websocket_url


class GatewayProcess:
    """``python -m local_gateway`` in a subprocess; output collected in ``output``."""

    def __init__(self, *, port: int = 0, state_dir: Path | None = None,
                 args: Sequence[str] = (), env: dict[str, str] | None = None,
                 new_session: bool = False) -> None:
        self.requested_port = port
        self.new_session = new_session  # its own process group, as a shell job has
        self.state_dir = state_dir
        self.args = list(args)
        self.env = env
        self.port = 0
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self.startup_s = 0.0
        self._ready = threading.Event()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/local"

    def start(self, timeout: float = 30) -> GatewayProcess:
        command = [sys.executable, "-m", "local_gateway", "--port", str(self.requested_port)]
        command += ["--no-state"] if self.state_dir is None else [
            "--state-dir", str(self.state_dir)]
        command += self.args
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        self.lines, self.port = [], 0
        self._ready.clear()
        started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, cwd=REPO_ROOT, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local gateway did not start:\n{self.output}")
        self.startup_s = time.monotonic() - started
        return self

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            match = _PAGE_LINE.search(line)
            if match:
                self.port = int(match.group(1))
                self._ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Send ``sig`` and wait; returns the exit code (kills after ``timeout``)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- the functions without the gateway ---------------------------------------------------


class _ConnectionsHandler(BaseHTTPRequestHandler):
    """``POST/GET/DELETE /<stage>/@connections/{id}`` with scripted failures."""

    server: ScriptedConnections
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every post
    protocol_version = "HTTP/1.1"  # keep-alive, as API Gateway's endpoint

    def _id(self) -> str:
        return unquote(self.path.rsplit("/@connections/", 1)[1])

    def _answer(self, status: int, body: bytes = b"", error: str | None = None) -> None:
        self.send_response(status)
        if error:
            self.send_header("x-amzn-ErrorType", error)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        cid = self._id()
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        rec = self.server
        with rec.lock:
            rec.attempts[cid] += 1
            if cid in rec.gone:
                return self._answer(410, b'{"message": null}', "GoneException")
            if cid in rec.failing:
                return self._answer(500, b'{"message": "Internal server error"}')
            if rec.throttle.get(cid, 0) > 0:
                rec.throttle[cid] -= 1
                return self._answer(
                    429, b'{"message": "Too Many Requests"}', "LimitExceededException"
                )
            rec.posts[cid].append(json.loads(data))
            delay = rec.slow.get(cid, rec.latency_s)
        if delay:
            time.sleep(delay)  # API Gateway's own round trip, or an answer that comes late
        self._answer(200)

    def do_GET(self) -> None:
        self._answer(200, b'{"connectedAt": "2026-11-27T05:00:00Z"}')

    def do_DELETE(self) -> None:
        self._answer(204)

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


class ScriptedConnections(ThreadingHTTPServer):
    """An ``@connections`` endpoint on a free port; ``start()`` serves it in a thread."""

    daemon_threads = True
    request_queue_size = 1024  # fan-out opens many connections at once

    def __init__(self, latency_s: float = 0.0, stage: str = "prod") -> None:
        super().__init__(("127.0.0.1", 0), _ConnectionsHandler)
        self.stage = stage
        self.latency_s = latency_s
        self.lock = threading.Lock()
        self.posts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.attempts: dict[str, int] = defaultdict(int)
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.throttle: dict[str, int] = {}
        self.slow: dict[str, float] = {}  # delivered, but answered after this many seconds

    def start(self) -> ScriptedConnections:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on a late answer (a read timeout) is what "slow" tests.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self) -> str:
        """The callback URL (``CALLBACK_URL``) the functions post through."""
        return f"http://127.0.0.1:{self.server_address[1]}/{self.stage}"

    def reset(self) -> None:
        with self.lock:
            for record in (self.posts, self.attempts, self.gone, self.failing,
                           self.throttle, self.slow):
                record.clear()

    def take(self, cid: str) -> list[dict[str, Any]]:
        """Events received by a connection since the last take."""
        with self.lock:
            events, self.posts[cid] = self.posts[cid], []
        return events


class InProcessStage:
    """Invokes the declared route functions in this process, as API Gateway would.

    The functions' environment is this process's (set it first); their replies go to
    ``connections`` (``CALLBACK_URL`` pointing at it).
    """

    def __init__(
        self,
        connections: ScriptedConnections,
        *,
        domain: str = "abc123.execute-api.us-east-1.amazonaws.com",
        api_id: str = "abc123",
        stage: str = "prod",
        functions: Iterable[Function] = FUNCTIONS,
    ) -> None:
        self.connections = connections
        self.domain, self.api_id, self.stage = domain, api_id, stage
        self.functions = tuple(functions)
        self.routes = routes(self.functions)
        self.open: dict[str, ConnectionInfo] = {}

    def _invoke(self, route_key: str, event: dict[str, Any]) -> Any:
        return self.invoke(self.routes[route_key], event)

    @staticmethod
    def invoke(fn: Function, event: dict[str, Any]) -> Any:
        """Invoke a declared function here, with a Lambda-like context."""
        module, _, name = fn.handler.rpartition(".")
        handler = getattr(importlib.import_module(module), name)
        context = LambdaContext(
            FunctionConfig(fn.name, fn.handler, {}, fn.memory_mb, fn.timeout_s),
            str(uuid.uuid4()),
            time.time() + fn.timeout_s,
        )
        return handler(event, context)

    def connect(
        self,
        username: str | None = None,
        room: str | None = None,
        query: Mapping[str, str] | None = None,
        age_s: float = 0,
        *,
        headers: Iterable[tuple[str, str]] = (),
        authorizer: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """``age_s``: pretend the socket opened that long ago (connectedAt in the past);
        ``authorizer``: what a $connect authorizer allowed the connection with."""
        info = ConnectionInfo(
            connection_id=new_gateway_id(), source_ip="203.0.113.7", domain_name=self.domain,
            connected_at=int((time.time() - age_s) * 1000), api_id=self.api_id,
            stage=self.stage, authorizer=authorizer,
        )
        if query is None:
            query = {k: v for k, v in (("username", username), ("room", room)) if v is not None}
        event = connect_event(info, headers=[("Host", self.domain), *headers],
                              query_string=urlencode(dict(query)),
                              request_id=new_gateway_id(), port=443)
        response = self._invoke("$connect", event)
        if response["statusCode"] == 200:
            self.open[info.connection_id] = info
        return info.connection_id, response

    def join(self, username: str, room: str | None = None, age_s: float = 0) -> str:
        cid, response = self.connect(username, room, age_s=age_s)
        assert response["statusCode"] == 200, response
        return cid

    def send(self, cid: str, body: Any) -> Any:
        """Route a frame on ``$request.body.action`` and invoke its function."""
        text = body if isinstance(body, str) else json.dumps(body)
        route = select_route(text, self.routes, MOCK_ROUTES)
        if route in MOCK_ROUTES:  # answered by API Gateway itself: no function runs
            with self.connections.lock:
                self.connections.posts[cid].append(json.loads(MOCK_ROUTES[route]))
            return {"statusCode": 200}
        event = route_event(self.open[cid], route_key=route, body=text,
                            request_id=new_gateway_id())
        return self._invoke(route, event)

    def disconnect(self, cid: str) -> Any:
        info = self.open[cid]  # kept: API Gateway may deliver $disconnect twice
        event = disconnect_event(info, status_code=1000, reason="", request_id=new_gateway_id())
        return self._invoke("$disconnect", event)

    def take(self, cid: str) -> list[dict[str, Any]]:
        return self.connections.take(cid)

    def run_queue(self, sqs: Any, queue_url: str, *, timeout_s: float = 60) -> int:
        """Be the SQS event source of the queue's consumer until the queue is empty.

        Receives as Lambda's event source does (``local_gateway.event_sources``: the same
        event and the same deletion of what succeeded), invokes the consumer in this
        process, and returns how many batches it ran. Messages that failed come back
        after their visibility timeout; delayed ones when their delay ends.
        """
        batches = 0
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.run_queue_once(sqs, queue_url):
                batches += 1
                continue
            attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
            waiting = sum(int(attrs["Attributes"].get(name, 0)) for name in (
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"))
            if waiting == 0:
                return batches
            time.sleep(0.05)
        raise TimeoutError(f"{queue_url} still had work after {timeout_s} s")

    def run_queue_once(self, sqs: Any, queue_url: str) -> bool:
        """Receive one batch and hand it to the consumer; False when none was visible."""
        (consumer,) = [fn for fn in self.functions if isinstance(fn.trigger, QueueConsumer)]
        assert isinstance(consumer.trigger, QueueConsumer)
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=consumer.trigger.batch_size,
            AttributeNames=["All"], WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            return False
        try:
            response = self.invoke(consumer, sqs_event(messages, queue_url))
        except BaseException:  # a crashed invocation (even SystemExit): nothing is deleted
            response = None
        for message in SqsPoller.succeeded(messages, response):
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return True
