"""The local stand-in for an API Gateway WebSocket API stage, on one aiohttp port.

One port serves what a deployed stack spreads over three hosts: the page (``GET /``
from ``frontend/``, and ``/config.json`` pointing it at this gateway), the WebSocket
stage (``/local``) and the Management API (``/local/@connections/{id}``) that the
handlers call through boto3 with ``CALLBACK_URL`` set to this gateway. The handlers are
the deployed ones, declared once in ``chat.routes`` and run in Lambda-like
environments (``lambda_runtime``) against moto's DynamoDB (``dynamodb``).

What API Gateway does and this reproduces (each limit a ``Settings`` field with the
real value as default):

- ``$connect`` runs before the handshake completes: a non-2xx ``statusCode`` refuses it
  with that HTTP status, an error with 500; no frame is routed before it returns.
- Posting to a connection during its own ``$connect`` answers 410, as on AWS: the
  connection exists for ``@connections`` only once the handshake is done.
- Route selection on ``$request.body.action``, ``$default`` otherwise; MOCK routes
  (``ping``) answered by the gateway itself.
- Frames are routed concurrently, not in order (API Gateway gives no ordering either).
- A handler that raises or times out: the client gets API Gateway's
  ``{"message": "Internal server error", ...}`` frame and the gateway keeps serving.
- 32 KB frames and 128 KB messages (close 1009), no binary frames (close 1003), 10
  minutes idle (only data frames from the client count), 2 hours at most (close 1001).
- ``$disconnect`` fires for every connection that was accepted, however it ended, with
  ``disconnectStatusCode``/``disconnectReason``; the client's close code when it sent
  one, 1005 "Client-side close frame status not set" when its close frame had none.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from aiohttp import WSCloseCode, WSMsgType, web

from chat.protocol import iso_time, page_config
from chat.routes import (
    FUNCTION_MEMORY_MB,
    FUNCTION_TIMEOUT_S,
    MOCK_ROUTES,
    ROUTES,
    Route,
    function_environment,
)
from chat.tables import TABLES, TableSpec
from local_gateway import limits
from local_gateway.dynamodb import (
    DUMMY_CREDENTIALS,
    STATE_FILE,
    LocalDynamoDB,
    load_state,
    save_state,
)
from local_gateway.events import (
    STAGE,
    ConnectionInfo,
    connect_event,
    disconnect_event,
    message_event,
    new_id,
    now_ms,
    select_route,
)
from local_gateway.lambda_runtime import (
    FunctionConfig,
    FunctionPool,
    InvocationResult,
    LambdaFunction,
)

log = logging.getLogger("local_gateway")

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Settings:
    """Everything the gateway can be told; defaults are API Gateway's and the CDK app's."""

    host: str = "127.0.0.1"
    port: int = 3000  # 0: any free port (read Gateway.port after start)
    state_dir: Path | None = Path(".local")  # None: nothing saved or loaded
    frontend_dir: Path = REPO_ROOT / "frontend"
    verbose: bool = False
    # API Gateway quotas (https://docs.aws.amazon.com/apigateway/latest/developerguide/
    # limits.html, WebSocket APIs).
    max_frame_bytes: int = 32 * 1024
    max_message_bytes: int = 128 * 1024
    idle_timeout_s: float = 10 * 60
    max_connection_s: float = 2 * 60 * 60
    # The CDK app's Lambda settings (infra/api.py: 256 MB, 10 s).
    handler_timeout_s: float = FUNCTION_TIMEOUT_S  # as the CDK app deploys them
    memory_mb: int = FUNCTION_MEMORY_MB
    max_concurrency: int = 10  # warm environments per function
    save_interval_s: float = 2.0
    extra_sys_path: tuple[str, ...] = ()  # prepended in the environments (test handlers)


# Close codes and $disconnect reasons for closes the gateway itself decides.
_GOING_AWAY = (WSCloseCode.GOING_AWAY, "Going away")
_DELETED = (WSCloseCode.OK, "Connection deleted through @connections")
_BINARY = (WSCloseCode.UNSUPPORTED_DATA, "Binary frames are not supported")
_TOO_BIG = (WSCloseCode.MESSAGE_TOO_BIG, "Message too big")
_NO_STATUS = (1005, "Client-side close frame status not set")
_ABNORMAL = (1006, "Connection closed abnormally")


@dataclass(eq=False)
class _Connection:
    info: ConnectionInfo
    ws: web.WebSocketResponse
    close_code: int | None = None  # set when the gateway closes it
    close_reason: str = ""
    watchdog: asyncio.Task[None] | None = None
    open: bool = True

    def mark_closing(self, code: int, reason: str) -> bool:
        if not self.open:
            return False
        self.open = False
        self.close_code, self.close_reason = code, reason
        return True


@dataclass
class _Stats:
    invocations: int = 0  # finished
    errors: int = 0
    by_route: Counter[str] = field(default_factory=Counter)  # started, per route key


class Gateway:
    """An API Gateway WebSocket stage plus Lambda plus DynamoDB, on 127.0.0.1.

    ``routes`` defaults to ``chat.routes.ROUTES``; tests pass their own to check what
    happens when a handler raises or hangs. Use ``await start()``/``await stop()``, or
    ``local_gateway.testing`` for a gateway in a thread or a subprocess.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        routes: Iterable[Route] = ROUTES,
        mock_routes: Mapping[str, str] = MOCK_ROUTES,
        tables: Iterable[TableSpec] = TABLES,
        connection_ids: Callable[[], str] = new_id,
    ) -> None:
        self.settings = settings or Settings()
        self.routes: dict[str, Route] = {route.key: route for route in routes}
        self.mock_routes = dict(mock_routes)
        self.dynamodb = LocalDynamoDB(tables)
        self._new_connection_id = connection_ids
        self._functions = FunctionPool()
        self._by_route: dict[str, LambdaFunction] = {}
        self._connections: dict[str, _Connection] = {}
        self._unfinished: dict[str, ConnectionInfo] = {}  # $connect begun, $disconnect not done
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._autosave: asyncio.Task[None] | None = None
        self._save_lock = asyncio.Lock()
        self._dirty = False
        self._stopping = False
        self._frame_guard_warned = False
        self._orphans: list[ConnectionInfo] = []
        self.stats = _Stats()
        self.port = 0

    # -- addresses -------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.settings.host}:{self.port}/{STAGE}"

    @property
    def callback_url(self) -> str:
        """What the handlers get as CALLBACK_URL: the stage URL for @connections."""
        return f"{self.http_url}/{STAGE}"

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # Start the forkserver (which imports boto3) while everything else starts up.
        loop.run_in_executor(None, _warm_forkserver)
        sock = self._bind()
        self.port = sock.getsockname()[1]
        await loop.run_in_executor(None, self._start_dynamodb)
        self._create_functions()

        app = web.Application(client_max_size=self.settings.max_message_bytes + 1)
        app.router.add_get("/config.json", self._config_json)
        app.router.add_get(f"/{STAGE}", self._websocket)
        app.router.add_route("*", f"/{STAGE}/@connections/{{connection_id:.+}}",
                             self._management)
        app.router.add_get("/", self._index)
        if self.settings.frontend_dir.is_dir():
            app.router.add_static("/", self.settings.frontend_dir)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()
        if self.settings.state_dir is not None:
            self._autosave = asyncio.create_task(self._autosave_loop())
        if self._orphans:
            # The last run ended without closing these (a crash or SIGKILL). API Gateway
            # always runs $disconnect, so the handlers can forget them: do it now.
            log.warning("%d connection(s) were open when the gateway last stopped without "
                        "closing them: running their $disconnect.", len(self._orphans))
            for info in self._orphans:
                self._unfinished[info.connection_id] = info  # until its $disconnect ran
                self._spawn(self._disconnect(info, *_ABNORMAL))
            self._orphans = []

    def _bind(self) -> socket.socket:
        # SO_REUSEADDR: a restarted gateway can take the port back at once, even with
        # the previous run's connections still in TIME_WAIT.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.host, self.settings.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        return sock

    def _start_dynamodb(self) -> None:
        self.dynamodb.start()
        if self.settings.state_dir is None:
            return
        saved = load_state(self.settings.state_dir)
        if saved is None:
            return
        try:
            count = self.dynamodb.restore(saved.tables)
        except Exception as exc:
            # Valid JSON but items DynamoDB refuses: treat like a corrupt file.
            path = self.settings.state_dir / STATE_FILE
            aside = path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                path.replace(aside)
            log.warning("Saved state %s could not be loaded (%s); moved to %s. Starting with "
                        "empty tables.", path, exc, aside)
            self.dynamodb.stop()
            self.dynamodb = LocalDynamoDB(self.dynamodb.specs)
            self.dynamodb.start()
            return
        log.info("Restored %d items from %s.", count, self.settings.state_dir)
        self._orphans = []
        for fields in saved.open_connections:
            with contextlib.suppress(TypeError):
                self._orphans.append(ConnectionInfo(**fields))

    def _create_functions(self) -> None:
        s = self.settings
        for route in self.routes.values():
            name = route.function_name
            environment = {
                **DUMMY_CREDENTIALS,
                "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.endpoint_url,
                # Any other AWS service a handler might call lands on moto, never on AWS.
                "AWS_ENDPOINT_URL": self.dynamodb.endpoint_url,
                "AWS_EC2_METADATA_DISABLED": "true",
                # What the Lambda runtime sets.
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(s.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                # A readable console: no EMF metric blobs, no X-Ray, handler logs only
                # when asked for (the gateway prints one line per invocation).
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "INFO" if s.verbose else "WARNING",
                # Last, so the function's own settings (exactly the CDK app's) win.
                **function_environment(route, table_names=self.dynamodb.table_names,
                                       callback_url=self.callback_url),
            }
            config = FunctionConfig(
                name=name,
                handler=route.handler,
                environment=environment,
                memory_mb=s.memory_mb,
                timeout_s=s.handler_timeout_s,
                max_concurrency=s.max_concurrency,
                extra_sys_path=s.extra_sys_path,
                quiet=not s.verbose,
            )
            self._by_route[route.key] = self._functions.add(config)

    async def stop(self) -> None:
        """Close every connection (running its $disconnect), save, release everything."""
        if self._stopping:
            return
        self._stopping = True
        closing = [
            self._close(conn, *_GOING_AWAY)
            for conn in list(self._connections.values())
        ]
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)
        if self._tasks:
            # $disconnect handlers and in-flight invocations, bounded so SIGTERM is prompt.
            await asyncio.wait(set(self._tasks), timeout=self.settings.handler_timeout_s / 2)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._autosave is not None:
            self._autosave.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._autosave
        if self.settings.state_dir is not None:
            await self.save()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._functions.close)
        await loop.run_in_executor(None, self.dynamodb.stop)

    async def save(self) -> Path | None:
        if self.settings.state_dir is None:
            return None
        state_dir = self.settings.state_dir
        async with self._save_lock:
            self._dirty = False
            loop = asyncio.get_running_loop()
            # Connections whose $disconnect has not run, before and after the dump: one
            # that ends during the dump gets a harmless second $disconnect on restart, one
            # that starts during the dump is not missed.
            unfinished = dict(self._unfinished)
            try:
                await loop.run_in_executor(None, self.dynamodb.sweep_expired)
                tables = await loop.run_in_executor(None, self.dynamodb.dump)
                unfinished.update(self._unfinished)
                open_connections = [asdict(info) for info in unfinished.values()]
                return await loop.run_in_executor(
                    None, save_state, state_dir, tables, open_connections)
            except Exception:
                self._dirty = True
                log.exception("Could not save state to %s", state_dir)
                return None

    async def _autosave_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.save_interval_s)
            if self._dirty:
                await self.save()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- HTTP --------------------------------------------------------------------------

    async def _config_json(self, request: web.Request) -> web.Response:
        return web.json_response(page_config(self.websocket_url),
                                 headers={"Cache-Control": "no-store"})

    async def _index(self, request: web.Request) -> web.StreamResponse:
        index = self.settings.frontend_dir / "index.html"
        if index.is_file():
            return web.FileResponse(index, headers={"Cache-Control": "no-cache"})
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><meta charset=utf-8><title>Chat (local)</title>"
                f"<p>No <code>{index}</code> yet. The WebSocket API is at "
                f"<code>{self.websocket_url}</code>; try<pre>npx wscat -c "
                f"'{self.websocket_url}?username=alice&amp;room=general'</pre>"
            ),
        )

    # -- WebSocket stage ---------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        s = self.settings
        ws = web.WebSocketResponse(
            # aiohttp refuses a message of exactly max_msg_size bytes; API Gateway
            # accepts 128 KB and refuses more.
            max_msg_size=s.max_message_bytes + 1,
            autoping=True,  # control frames: answered, and they do not reset the idle timer
            compress=False,  # API Gateway does not negotiate permessage-deflate
            timeout=2.0,
        )
        if self._stopping:
            return web.Response(status=503, text="Gateway is shutting down")
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="Upgrade Required")

        peer = request.remote or "127.0.0.1"
        info = ConnectionInfo(
            connection_id=self._new_connection_id(),
            source_ip=peer,
            domain_name=request.host,
            user_agent=request.headers.get("User-Agent", ""),
        )
        request_id = new_id()
        event = connect_event(
            info,
            headers=request.headers.items(),
            query_string=request.query_string,
            request_id=request_id,
            port=self.port,
        )
        # From here until its $disconnect has run, the handlers may hold records of this
        # connection: a crash in between must run that $disconnect on the next start.
        self._unfinished[info.connection_id] = info
        # No $connect route: API Gateway accepts every connection.
        status = 200
        if "$connect" in self.routes:
            status = _status_code(await self._invoke("$connect", event, info, request_id))
        if not 200 <= status < 300:
            # The handshake fails with the handler's status (a client sees e.g.
            # "Unexpected server response: 400"); nothing else happens: no $disconnect.
            self._unfinished.pop(info.connection_id, None)
            return web.Response(status=status)

        try:
            await ws.prepare(request)
        except Exception:
            # The client left while $connect ran: the handler has recorded a connection
            # that will never open, so $disconnect must still run (API Gateway's does).
            self._spawn(self._disconnect(info, *_ABNORMAL))
            raise
        if not limits.install(request, ws, s.max_frame_bytes) and not self._frame_guard_warned:
            self._frame_guard_warned = True
            log.warning("This aiohttp version hides its frame parser: the %d-byte frame "
                        "limit is not enforced (the message limit is).", s.max_frame_bytes)
        conn = _Connection(info, ws)
        self._connections[info.connection_id] = conn
        conn.watchdog = asyncio.create_task(self._watchdog(conn))
        try:
            await self._read_frames(conn)
        finally:
            conn.watchdog.cancel()
            self._connections.pop(info.connection_id, None)
            code, reason = self._disconnect_reason(conn)
            conn.open = False
            self._spawn(self._disconnect(info, code, reason))
        return ws

    async def _read_frames(self, conn: _Connection) -> None:
        ws = conn.ws
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                if not conn.open:
                    continue  # closing: API Gateway stops routing
                conn.info.last_active_at = now_ms()
                self._spawn(self._route_frame(conn, msg.data))
            elif msg.type is WSMsgType.BINARY:
                # Only data frames count as activity, but a binary one ends the connection.
                await self._close(conn, *_BINARY)
            elif msg.type is WSMsgType.ERROR:
                exc = msg.data
                if getattr(exc, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                    conn.mark_closing(*_TOO_BIG)
                else:
                    conn.mark_closing(*_ABNORMAL)
                return
            elif msg.type is WSMsgType.CLOSE:
                # The client closed: its code, or 1005 when its close frame had none.
                code = msg.data if isinstance(msg.data, int) else 0
                if code and code != 1005:
                    conn.mark_closing(code, msg.extra or "")
                else:
                    conn.mark_closing(*_NO_STATUS)
                await ws.close()
                return
            else:  # CLOSING / CLOSED
                return

    def _disconnect_reason(self, conn: _Connection) -> tuple[int, str]:
        if conn.close_code is not None:
            return conn.close_code, conn.close_reason
        code = conn.ws.close_code
        if code is None:
            return _ABNORMAL
        return int(code), ""

    async def _close(self, conn: _Connection, code: int, reason: str) -> None:
        if conn.mark_closing(code, reason):
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code, message=reason.encode())

    async def _watchdog(self, conn: _Connection) -> None:
        """API Gateway's idle timeout (client data frames only) and connection age limit."""
        s = self.settings
        info = conn.info
        while conn.open:
            idle_deadline = info.last_active_at + s.idle_timeout_s * 1000
            age_deadline = info.connected_at + s.max_connection_s * 1000
            wait_ms = min(idle_deadline, age_deadline) - now_ms()
            if wait_ms <= 0:
                await self._close(conn, *_GOING_AWAY)
                return
            await asyncio.sleep(wait_ms / 1000)

    async def _disconnect(self, info: ConnectionInfo, code: int, reason: str) -> None:
        try:
            if "$disconnect" not in self.routes:
                return
            request_id = new_id()
            event = disconnect_event(info, status_code=code, reason=reason, request_id=request_id)
            await self._invoke("$disconnect", event, info, request_id)
        finally:
            self._unfinished.pop(info.connection_id, None)

    async def _route_frame(self, conn: _Connection, body: str) -> None:
        request_id = new_id()
        try:
            await self._route(conn, body, request_id)
        except Exception:
            # A bug here must not swallow the frame silently: answer as API Gateway
            # does when something breaks behind it.
            log.exception("Routing a frame of %s failed", conn.info.connection_id)
            await self._send(conn, _gateway_error("Internal server error", conn, request_id))

    async def _route(self, conn: _Connection, body: str, request_id: str) -> None:
        route_key = select_route(body, self.routes, self.mock_routes)
        if route_key in self.mock_routes:
            started = time.monotonic()
            await self._send(conn, self.mock_routes[route_key])
            self._log_line(route_key, conn.info.connection_id, "MOCK",
                           (time.monotonic() - started) * 1000, "")
            return
        if route_key not in self.routes:
            # No $default route: API Gateway answers this itself.
            await self._send(conn, _gateway_error("Forbidden", conn, request_id))
            return
        event = message_event(conn.info, route_key=route_key, body=body, request_id=request_id)
        result = await self._invoke(route_key, event, conn.info, request_id)
        if not result.ok:
            await self._send(conn, _gateway_error("Internal server error", conn, request_id))

    async def _send(self, conn: _Connection, text: str) -> bool:
        if not conn.open or conn.ws.closed:
            return False
        try:
            await conn.ws.send_str(text)
        except Exception:
            return False
        return True

    async def _invoke(
        self, route_key: str, event: dict[str, Any], info: ConnectionInfo, request_id: str
    ) -> InvocationResult:
        function = self._by_route[route_key]
        self.stats.by_route[route_key] += 1
        if self.settings.verbose:
            log.info("event %s %s", route_key, json.dumps(event, ensure_ascii=False))
        lambda_request_id = str(uuid.uuid4())
        result = await function.invoke(event, lambda_request_id)
        self.stats.invocations += 1
        route = self.routes[route_key]
        if route.writes:
            self._dirty = True
        if result.ok:
            status = str(result.response.get("statusCode", "-")) if isinstance(
                result.response, dict) else "-"
        else:
            self.stats.errors += 1
            status = result.error.upper() if result.error else "ERROR"
        extra = f"cold start {result.init_ms:.0f} ms" if result.init_ms is not None else ""
        self._log_line(route_key, info.connection_id, status, result.duration_ms, extra)
        if not result.ok:
            log.error("%s (%s, request %s) failed:\n%s", function.config.name, route_key,
                      request_id, result.detail.rstrip())
        elif self.settings.verbose:
            log.info("response %s %s", route_key, json.dumps(result.response, default=str))
        return result

    def _log_line(self, route: str, connection_id: str, status: str, ms: float,
                  extra: str) -> None:
        log.info("%-12s %s  %-8s %7.1f ms%s", route, connection_id, status, ms,
                 f"  ({extra})" if extra else "")

    # -- Management API ------------------------------------------------------------------

    async def _management(self, request: web.Request) -> web.StreamResponse:
        # The id is URL-encoded by boto3 (API Gateway ids contain "=" and may contain
        # "+" and "/"): decode it from the raw path, whatever aiohttp normalised.
        raw_path = request.raw_path.split("?", 1)[0]
        prefix = f"/{STAGE}/@connections/"
        connection_id = unquote(raw_path[len(prefix):]) if raw_path.startswith(prefix) else ""
        conn = self._connections.get(connection_id)
        if conn is None or not conn.open or conn.ws.closed:
            return _gone()
        if request.method == "POST":
            data = await request.read()
            if len(data) > self.settings.max_message_bytes:
                return _error(413, "PayloadTooLargeException", "Message too long")
            if not await self._send(conn, data.decode("utf-8", errors="replace")):
                return _gone()
            return web.Response(status=200)
        if request.method == "GET":
            return web.json_response({
                "connectedAt": iso_time(conn.info.connected_at),
                "identity": {"sourceIp": conn.info.source_ip,
                             "userAgent": conn.info.user_agent},
                "lastActiveAt": iso_time(conn.info.last_active_at),
            })
        if request.method == "DELETE":
            self._spawn(self._close(conn, *_DELETED))
            return web.Response(status=204)
        return _error(405, "MethodNotAllowedException", "Method not allowed")


def _status_code(result: InvocationResult) -> int:
    """The HTTP status a $connect invocation amounts to."""
    if not result.ok:
        return 500
    response = result.response
    if response is None:
        return 200
    if not isinstance(response, dict):
        return 500
    status = response.get("statusCode", 200)
    try:
        return int(status)
    except (TypeError, ValueError):
        return 500


def _gateway_error(message: str, conn: _Connection, request_id: str) -> str:
    # The frame API Gateway itself sends when the integration fails.
    return json.dumps({"message": message, "connectionId": conn.info.connection_id,
                       "requestId": request_id})


def _error(status: int, error_type: str, message: str | None) -> web.Response:
    # botocore (rest-json) takes the error code from x-amzn-ErrorType.
    return web.Response(
        status=status,
        headers={"x-amzn-ErrorType": error_type, "x-amzn-RequestId": str(uuid.uuid4())},
        content_type="application/json",
        text=json.dumps({"message": message}),
    )


def _gone() -> web.Response:
    # What API Gateway answers for an unknown or closed connection: 410 with
    # "x-amzn-ErrorType: GoneException" and an empty body. That is what SDKs show for a
    # real stage: Java "GoneException: null", JS "GoneException: 410", PHP "Error parsing
    # JSON", botocore "(GoneException) ...: Unknown". botocore reads the code from the
    # header and raises client.exceptions.GoneException.
    return web.Response(
        status=410,
        headers={"x-amzn-ErrorType": "GoneException", "x-amzn-RequestId": str(uuid.uuid4()),
                 "Content-Type": "application/json"},
    )


def _warm_forkserver() -> None:
    import multiprocessing.forkserver

    from local_gateway.lambda_runtime import _process_context

    _process_context()
    with contextlib.suppress(Exception):
        multiprocessing.forkserver.ensure_running()
