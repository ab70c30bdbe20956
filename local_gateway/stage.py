"""The WebSocket stage: handshakes, the socket lifecycle and API Gateway's limits.

What API Gateway does and this reproduces (each limit a ``GatewaySettings`` field with
the real value as default):

- A ``$connect`` authorizer (``authorizers``), if one is declared, runs first: its
  refusal (401/403/500) ends the handshake before ``$connect`` is invoked.
- ``$connect`` runs before the handshake completes: a non-2xx ``statusCode`` refuses it
  with that HTTP status, an error with 500; no frame is routed before it returns. The
  ``Sec-WebSocket-Protocol`` header it returns is the subprotocol the handshake selects.
- Posting to a connection during its own ``$connect`` answers 410, as on AWS: the
  connection exists for ``@connections`` only once the handshake is done.
- Frames are routed concurrently, not in order (API Gateway gives no ordering either).
- 32 KB frames and 128 KB messages (close 1009), no binary frames (close 1003), 10
  minutes idle (only data frames from the client count), 2 hours at most (close 1001).
- ``$disconnect`` fires for every connection that was accepted, however it ended, with
  ``disconnectStatusCode``/``disconnectReason``; the client's close code when it sent
  one, 1005 "Client-side close frame status not set" when its close frame had none.

Load: the gateway never queues without bound.

- **The stage's throttle**, as deployed (``throttle_rate_limit``/``throttle_burst_limit``
  from ``cdk.json``: 50 requests a second, bursts of 100): a token bucket over every
  data frame of every client, mock routes included. API Gateway documents that a
  throttled request gets "429 Too Many Requests"; on a WebSocket there is no status to
  send, and what clients report receiving is a frame in the shape of its other
  gateway-made answers, ``{"message": "Too Many Requests", "connectionId": …,
  "requestId": …}``, with the connection left open and nothing invoked. That frame is
  what this stage sends (the exact text is from reports, not from AWS documentation).
  Handshakes are not counted (API Gateway limits new connections by an account quota
  of its own, 500 a second, not by the stage's throttle).
- **Frames in flight per connection**: at most ``max_frames_in_flight`` frames of one
  connection are waiting for or running in a function; one more is answered like a
  throttled frame, before it takes a token. API Gateway has no such documented number
  (it has whole fleets to queue on); here every connection shares two cores, and
  without it one client flooding the socket filled the invocation queue and every
  other client's frames waited behind its backlog. With it, a flood costs the flooder
  its own frames and never another client's place in line.
- **What one connection can have waiting to be written**: ``@connections`` answers a
  post with 429 ``LimitExceededException`` when more than ``max_buffered_bytes`` are
  already queued on that socket (a client that stopped reading). botocore documents
  that exception as "…or the WebSocket client side buffer is full"; how big API
  Gateway's buffer is, is not documented (1 MiB here, a guess). Below that, a post never
  waits for the client to read, so a slow reader cannot hold up the function posting
  to a whole room.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from local_gateway import frame_limit, logs
from local_gateway.authorizers import ConnectAuthorizers
from local_gateway.events import (
    ConnectionInfo,
    connect_event,
    disconnect_event,
    new_gateway_id,
    now_ms,
)
from local_gateway.routing import Router, gateway_error
from local_gateway.runtime import InvocationResult
from local_gateway.settings import GatewaySettings

log = logging.getLogger("local_gateway")

# Close codes and $disconnect reasons for closes the gateway itself decides.
GOING_AWAY = (WSCloseCode.GOING_AWAY, "Going away")
DELETED = (WSCloseCode.OK, "Connection deleted through @connections")
_BINARY = (WSCloseCode.UNSUPPORTED_DATA, "Binary frames are not supported")
_TOO_BIG = (WSCloseCode.MESSAGE_TOO_BIG, "Message too big")
_NO_STATUS = (1005, "Client-side close frame status not set")
ABNORMAL = (1006, "Connection closed abnormally")


THROTTLED = "Too Many Requests"

# aiohttp warns when no offered subprotocol is selected, quoting them all, and with
# sign-in one is bearer.<ID token>: every record of this process is redacted by content
# (local_gateway.logs), whatever its wording.
logs.install_record_factory()


class TokenBucket:
    """API Gateway's throttle: ``rate`` tokens a second, at most ``burst`` kept."""

    def __init__(self, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self._clock = clock
        self._updated = clock()

    def take(self) -> bool:
        now = self._clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self._updated) * self.rate)
        self._updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass(eq=False)
class Socket:
    """An accepted WebSocket and the connection API Gateway knows it as."""

    info: ConnectionInfo
    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None = None
    close_code: int | None = None  # set when the gateway closes it
    close_reason: str = ""
    watchdog: asyncio.Task[None] | None = None
    open: bool = True
    in_flight: int = 0  # frames routed and not finished

    def mark_closing(self, code: int, reason: str) -> bool:
        if not self.open:
            return False
        self.open = False
        self.close_code, self.close_reason = code, reason
        return True


class Stage:
    """The ``/<stage>`` WebSocket endpoint and the connections open on it."""

    def __init__(
        self,
        settings: GatewaySettings,
        router: Router,
        *,
        port: Callable[[], int],
        connection_ids: Callable[[], str] = new_gateway_id,
        spawn: Callable[[Any], asyncio.Task[Any]],
        authorizers: ConnectAuthorizers | None = None,
    ) -> None:
        self.settings = settings
        self.router = router
        self.authorizers = authorizers
        self._port = port
        self._new_connection_id = connection_ids
        self.spawn = spawn
        self.sockets: dict[str, Socket] = {}
        # $connect begun, $disconnect not done: what a crash would leave for the next
        # start to clean up (see local_gateway.state).
        self.unfinished: dict[str, ConnectionInfo] = {}
        self.stopping = False
        self._frame_guard_warned = False
        self.throttle = TokenBucket(settings.throttle_rate_limit, settings.throttle_burst_limit)
        self.throttled = 0  # frames answered "Too Many Requests" (stage or per connection)

    # -- handshake ---------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        s = self.settings
        if self.stopping:
            return web.Response(status=503, text="Gateway is shutting down")
        if not web.WebSocketResponse().can_prepare(request).ok:
            return web.Response(status=426, text="Upgrade Required")

        info = ConnectionInfo(
            connection_id=self._new_connection_id(),
            source_ip=request.remote or "127.0.0.1",
            domain_name=request.host,
            user_agent=request.headers.get("User-Agent", ""),
        )
        request_id = new_gateway_id()
        if self.authorizers is not None:
            # Before $connect, as API Gateway runs it; a refusal ends the handshake here.
            decision = await self.authorizers.authorize(
                info, request.headers.items(), request.query_string, request_id, self._port())
            if decision.status is not None:
                log.info("$connect refused with %d: %s", decision.status, decision.reason)
                return web.Response(status=decision.status)
            info.authorizer = decision.context
        event = connect_event(
            info,
            headers=request.headers.items(),
            query_string=request.query_string,
            request_id=request_id,
            port=self._port(),
        )
        # From here until its $disconnect has run, the handlers may hold records of this
        # connection: a crash in between must run that $disconnect on the next start.
        self.unfinished[info.connection_id] = info
        # No $connect route: API Gateway accepts every connection.
        status, subprotocols = 200, ()
        if self.router.has("$connect"):
            result = await self.router.invoke("$connect", event, info.connection_id)
            status, subprotocols = _status_code(result), _subprotocol(result)
        if not 200 <= status < 300:
            # The handshake fails with the handler's status (a client sees e.g.
            # "Unexpected server response: 400"); nothing else happens: no $disconnect.
            self.unfinished.pop(info.connection_id, None)
            return web.Response(status=status)

        ws = web.WebSocketResponse(
            # aiohttp refuses a message of exactly max_msg_size bytes; API Gateway
            # accepts 128 KB and refuses more.
            max_msg_size=s.max_message_bytes + 1,
            autoping=True,  # control frames: answered, and they do not reset the idle timer
            compress=False,  # API Gateway does not negotiate permessage-deflate
            timeout=2.0,
            # The Sec-WebSocket-Protocol $connect returned, passed through as API Gateway
            # does (none returned: none selected, and a browser that offered one fails).
            protocols=subprotocols,
        )
        try:
            await ws.prepare(request)
        except Exception:
            # The client left while $connect ran: the handler has recorded a connection
            # that will never open, so $disconnect must still run (API Gateway's does).
            self.spawn(self.disconnect(info, *ABNORMAL))
            raise
        if not frame_limit.install(request, ws, s.max_frame_bytes) and not self._frame_guard_warned:
            self._frame_guard_warned = True
            log.warning("This aiohttp version hides its frame parser: the %d-byte frame "
                        "limit is not enforced (the message limit is).", s.max_frame_bytes)
        sock = Socket(info, ws, request.transport)
        if isinstance(sock.transport, asyncio.WriteTransport):
            # Never make a post wait for a slow reader below the cap: @connections
            # refuses at max_buffered_bytes (see buffer_full), the transport pauses
            # only a message beyond it.
            sock.transport.set_write_buffer_limits(
                high=s.max_buffered_bytes + s.max_message_bytes + 64 * 1024)
        self.sockets[info.connection_id] = sock
        sock.watchdog = asyncio.create_task(self._watchdog(sock))
        try:
            await self._read_frames(sock)
        finally:
            sock.watchdog.cancel()
            self.sockets.pop(info.connection_id, None)
            code, reason = _disconnect_reason(sock)
            sock.open = False
            self.spawn(self.disconnect(info, code, reason))
        return ws

    # -- frames ------------------------------------------------------------------------

    async def _read_frames(self, sock: Socket) -> None:
        ws = sock.ws
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.TEXT:
                if not sock.open:
                    continue  # closing: API Gateway stops routing
                sock.info.last_active_at = now_ms()
                if (sock.in_flight >= self.settings.max_frames_in_flight
                        or not self.throttle.take()):
                    # Answered here, in the reader: a client flooding faster than its
                    # answers can be written is slowed down by its own socket.
                    self.throttled += 1
                    await self.send(sock, gateway_error(
                        THROTTLED, sock.info.connection_id, new_gateway_id()))
                    continue
                sock.in_flight += 1
                self.spawn(self._route(sock, msg.data))
            elif msg.type is WSMsgType.BINARY:
                # Only data frames count as activity, but a binary one ends the connection.
                await self.close(sock, *_BINARY)
            elif msg.type is WSMsgType.ERROR:
                exc = msg.data
                if getattr(exc, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                    sock.mark_closing(*_TOO_BIG)
                else:
                    sock.mark_closing(*ABNORMAL)
                return
            elif msg.type is WSMsgType.CLOSE:
                # The client closed: its code, or 1005 when its close frame had none.
                code = msg.data if isinstance(msg.data, int) else 0
                if code and code != 1005:
                    sock.mark_closing(code, msg.extra or "")
                else:
                    sock.mark_closing(*_NO_STATUS)
                await ws.close()
                return
            else:  # CLOSING / CLOSED
                return

    async def _route(self, sock: Socket, body: str) -> None:
        try:
            await self.router.route_frame(
                sock.info, body, lambda text: self.send(sock, text))
        finally:
            sock.in_flight -= 1

    def buffer_full(self, sock: Socket) -> bool:
        """Whether the client has stopped reading long enough to refuse posts to it."""
        transport = sock.transport
        if not isinstance(transport, asyncio.WriteTransport):
            return False
        return transport.get_write_buffer_size() > self.settings.max_buffered_bytes

    async def send(self, sock: Socket, text: str) -> bool:
        if not sock.open or sock.ws.closed:
            return False
        try:
            await sock.ws.send_str(text)
        except Exception:
            return False
        return True

    # -- endings -----------------------------------------------------------------------

    def open_socket(self, connection_id: str) -> Socket | None:
        """The socket of an open connection (what ``@connections`` may post to)."""
        sock = self.sockets.get(connection_id)
        if sock is None or not sock.open or sock.ws.closed:
            return None
        return sock

    async def close(self, sock: Socket, code: int, reason: str) -> None:
        if sock.mark_closing(code, reason):
            with contextlib.suppress(Exception):
                await sock.ws.close(code=code, message=reason.encode())

    async def close_all(self) -> None:
        self.stopping = True
        closing = [self.close(sock, *GOING_AWAY) for sock in list(self.sockets.values())]
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)

    async def _watchdog(self, sock: Socket) -> None:
        """API Gateway's idle timeout (client data frames only) and connection age limit."""
        s = self.settings
        info = sock.info
        while sock.open:
            idle_deadline = info.last_active_at + s.idle_timeout_s * 1000
            age_deadline = info.connected_at + s.max_connection_s * 1000
            wait_ms = min(idle_deadline, age_deadline) - now_ms()
            if wait_ms <= 0:
                await self.close(sock, *GOING_AWAY)
                return
            await asyncio.sleep(wait_ms / 1000)

    async def disconnect(self, info: ConnectionInfo, code: int, reason: str) -> None:
        """Run ``$disconnect`` for a connection (once its socket is gone)."""
        try:
            if not self.router.has("$disconnect"):
                return
            event = disconnect_event(info, status_code=code, reason=reason,
                                     request_id=new_gateway_id())
            await self.router.invoke("$disconnect", event, info.connection_id)
        finally:
            self.unfinished.pop(info.connection_id, None)


def _disconnect_reason(sock: Socket) -> tuple[int, str]:
    if sock.close_code is not None:
        return sock.close_code, sock.close_reason
    code = sock.ws.close_code
    if code is None:
        return ABNORMAL
    return int(code), ""


def _subprotocol(result: InvocationResult) -> tuple[str, ...]:
    """The ``Sec-WebSocket-Protocol`` header of a $connect response, if it has one."""
    response = result.response if result.ok else None
    headers = response.get("headers") if isinstance(response, dict) else None
    for name, value in (headers or {}).items() if isinstance(headers, dict) else ():
        if name.lower() == "sec-websocket-protocol" and isinstance(value, str) and value:
            return (value,)
    return ()


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
