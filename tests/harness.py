"""A stand-in for API Gateway around the real handlers, shared by tests and benches.

- ``Recorder``: a small real HTTP server serving ``POST/GET/DELETE /<stage>/@connections/
  {id}`` that records every post one by one and can answer 410 Gone, 500 or 429 for
  chosen connections (moto's Management API accepts any id and never answers 410). The
  handlers reach it through boto3 via ``CALLBACK_URL``, exactly as they reach API
  Gateway's.
- ``FakeGateway``: builds events from the real API Gateway samples in ``tests/events``
  (route selection on ``$request.body.action``) and invokes the handlers.
"""

from __future__ import annotations

import base64
import copy
import importlib
import json
import secrets
import threading
import time
import uuid
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from chat import config, fanout, handlers, store
from chat.routes import MOCK_ROUTES, ROUTES
from chat.tables import TABLES
from local_gateway.dynamodb import create_table
from local_gateway.events import select_route

EVENTS = Path(__file__).resolve().parent / "events"
STAGE = "prod"


ROUTE_TABLE = {route.key: route for route in ROUTES}


def sample(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"powertools_apiGatewayWebSocketApi{name}.json").read_text())


class LambdaContext:
    """What the Lambda runtime passes as ``context``."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + 10

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


class Connections(BaseHTTPRequestHandler):
    """``POST/GET/DELETE /<stage>/@connections/{id}`` with scripted failures."""

    server: Recorder
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to every post

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

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass


class Recorder(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # fan-out opens up to 16 connections at once

    def __init__(self, latency_s: float = 0.0) -> None:
        super().__init__(("127.0.0.1", 0), Connections)
        self.latency_s = latency_s
        self.lock = threading.Lock()
        self.posts: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.attempts: dict[str, int] = defaultdict(int)
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.throttle: dict[str, int] = {}
        self.slow: dict[str, float] = {}  # delivered, but answered after this many seconds

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{STAGE}"

    def take(self, cid: str) -> list[dict[str, Any]]:
        """Events received by a connection since the last take."""
        with self.lock:
            events, self.posts[cid] = self.posts[cid], []
        return events


def reset_caches() -> None:
    """Forget cached settings and clients (after the environment changed)."""
    config.settings.cache_clear()
    handlers._store.cache_clear()
    store._client.cache_clear()
    fanout._client.cache_clear()


def create_tables(db: Any, names: dict[str, str]) -> None:
    """Create the project's tables (``chat.tables``) under the given physical names."""
    for spec in TABLES:
        create_table(db, spec, names[spec.env_var])


def connection_id() -> str:
    """16 characters ending in '=', like API Gateway's (base64 of 11 bytes)."""
    return base64.b64encode(secrets.token_bytes(11)).decode()[:15] + "="


class FakeGateway:
    """Builds API Gateway's events and invokes the handlers, as the real stage would."""

    def __init__(
        self, recorder: Recorder, domain: str = "abc123.execute-api.us-east-1.amazonaws.com"
    ):
        self.recorder = recorder
        self.domain = domain
        self.connected_at: dict[str, int] = {}

    def _context(self, event: dict[str, Any], route: str, cid: str) -> None:
        now = int(time.time() * 1000)
        ctx = event["requestContext"]
        ctx.update(
            routeKey=route,
            connectionId=cid,
            domainName=self.domain,
            stage=STAGE,
            apiId="abc123",
            requestId=secrets.token_urlsafe(12)[:15] + "=",
            extendedRequestId=secrets.token_urlsafe(12)[:15] + "=",
            requestTimeEpoch=now,
            connectedAt=self.connected_at.get(cid, now),
        )

    def connect(
        self,
        username: str | None = None,
        room: str | None = None,
        query: dict[str, str] | None = None,
        age_s: float = 0,
    ) -> tuple[str, dict[str, Any]]:
        """``age_s``: pretend the socket opened that long ago (connectedAt in the past)."""
        cid = connection_id()
        event = sample("Connect")
        self.connected_at[cid] = int((time.time() - age_s) * 1000)
        self._context(event, "$connect", cid)
        if query is None:
            query = {k: v for k, v in (("username", username), ("room", room)) if v is not None}
        if query:
            event["queryStringParameters"] = dict(query)
            event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()}
        response = handlers.connect(event, LambdaContext("Connect"))
        if response["statusCode"] != 200:
            del self.connected_at[cid]
        return cid, response

    def join(self, username: str, room: str | None = None, age_s: float = 0) -> str:
        cid, response = self.connect(username, room, age_s=age_s)
        assert response["statusCode"] == 200, response
        return cid

    def send(self, cid: str, body: Any) -> dict[str, Any]:
        """Route a frame on ``$request.body.action`` and invoke its handler."""
        text = body if isinstance(body, str) else json.dumps(body)
        route = select_route(text, ROUTE_TABLE, MOCK_ROUTES)
        if route in MOCK_ROUTES:  # answered by API Gateway itself: no handler runs
            with self.recorder.lock:
                self.recorder.posts[cid].append(json.loads(MOCK_ROUTES[route]))
            return {"statusCode": 200}
        event = copy.deepcopy(sample("Message"))
        self._context(event, route, cid)
        event["requestContext"]["messageId"] = secrets.token_urlsafe(12)[:15] + "="
        event["body"] = text
        module, _, name = ROUTE_TABLE[route].handler.rpartition(".")
        return getattr(importlib.import_module(module), name)(event, LambdaContext(route))

    def disconnect(self, cid: str) -> dict[str, Any]:
        event = sample("Disconnect")
        self._context(event, "$disconnect", cid)
        return handlers.disconnect(event, LambdaContext("Disconnect"))

    def take(self, cid: str) -> list[dict[str, Any]]:
        return self.recorder.take(cid)


def items(db: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table (a Scan is fine in a test, never in functions/)."""
    return db.scan(TableName=table)["Items"]


def messages_in(db: Any) -> list[dict[str, Any]]:
    return [i for i in items(db, "chat-messages") if i["sk"]["S"].startswith("MSG#")]
