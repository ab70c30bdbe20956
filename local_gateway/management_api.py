"""The API Gateway Management API (``@connections``) of the local stage.

The functions reach it through boto3's ``apigatewaymanagementapi`` client (or any
SigV4 HTTP client) with ``CALLBACK_URL`` pointing here, exactly as they reach API
Gateway's on AWS: the same paths, status codes and ``x-amzn-ErrorType`` headers, so
botocore raises the same exceptions (``GoneException`` for 410, ``LimitExceededException``
for 429).

Every message to a room of N is N posts here, so a post's cost matters more than
anything else the gateway does: through aiohttp's web stack (request and response
objects, routing) a post cost about twice what reading it, writing the frame and
answering does. ``listen`` therefore puts a small HTTP/1.1 reader in front of aiohttp on
the gateway's one port: a connection whose requests are ``POST /<stage>/@connections/…``
with a ``Content-Length`` (what the functions send, kept alive) is answered by it
directly; the first request that is anything else (the page, the WebSocket upgrade, a
GET or DELETE of a connection, chunked bodies) hands the connection, bytes and all, to
aiohttp for good. Both paths give the same answers (``ManagementApi.post``).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from chat.protocol import iso_time
from local_gateway.events import STAGE
from local_gateway.stage import DELETED, Stage

# An answer: HTTP status, x-amzn-ErrorType (None when it worked), JSON body (or None).
Answer = tuple[int, str | None, str | None]
_GONE: Answer = (410, "GoneException", None)


class ManagementApi:
    """``POST``/``GET``/``DELETE /<stage>/@connections/{connection_id}``."""

    def __init__(self, stage: Stage, max_message_bytes: int) -> None:
        self.stage = stage
        self.max_message_bytes = max_message_bytes
        self.prefix = f"/{STAGE}/@connections/"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", self.prefix + "{connection_id:.+}", self.handle)

    def connection_id(self, raw_path: str) -> str:
        # The id is URL-encoded by boto3 (API Gateway ids contain "=" and may contain
        # "+" and "/"): decode it from the raw path, whatever a server normalised.
        raw_path = raw_path.split("?", 1)[0]
        return unquote(raw_path[len(self.prefix):]) if raw_path.startswith(self.prefix) else ""

    async def post(self, connection_id: str, data: bytes) -> Answer:
        """``POST @connections/{id}``: write ``data`` to the socket as one text frame."""
        sock = self.stage.open_socket(connection_id)
        if sock is None:
            return _GONE
        if len(data) > self.max_message_bytes:
            return 413, "PayloadTooLargeException", "Message too long"
        if self.stage.buffer_full(sock):
            # API Gateway's answer when "the WebSocket client side buffer is full" (see
            # local_gateway.stage); the function may retry it later.
            return 429, "LimitExceededException", "Too Many Requests"
        if not await self.stage.send(sock, data.decode("utf-8", errors="replace")):
            return _GONE
        return 200, None, None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        connection_id = self.connection_id(request.raw_path)
        if request.method == "POST":
            status, error_type, message = await self.post(connection_id, await request.read())
            if status == 200:
                return web.Response(status=200)
            return _gone() if status == 410 else _error(status, error_type or "", message)
        sock = self.stage.open_socket(connection_id)
        if sock is None:
            return _gone()
        if request.method == "GET":
            return web.json_response({
                "connectedAt": iso_time(sock.info.connected_at),
                "identity": {"sourceIp": sock.info.source_ip,
                             "userAgent": sock.info.user_agent},
                "lastActiveAt": iso_time(sock.info.last_active_at),
            })
        if request.method == "DELETE":
            self.stage.spawn(self.stage.close(sock, *DELETED))
            return web.Response(status=204)
        return _error(405, "MethodNotAllowedException", "Method not allowed")


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


# -- the posts' fast path --------------------------------------------------------------

_MAX_HEAD = 16 * 1024  # request line and headers; anything longer goes to aiohttp


def _answer_bytes(answer: Answer, close: bool) -> bytes:
    status, error_type, message = answer
    reason = {200: "OK", 410: "Gone", 413: "Payload Too Large",
              429: "Too Many Requests"}.get(status, "Error")
    body = b"" if status in (200, 410) else json.dumps({"message": message}).encode()
    head = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json",
            f"Content-Length: {len(body)}", f"x-amzn-RequestId: {uuid.uuid4()}"]
    if error_type:
        head.append(f"x-amzn-ErrorType: {error_type}")
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class _PostReader(asyncio.Protocol):
    """One connection on the gateway's port: posts answered here, the rest by aiohttp."""

    def __init__(self, api: ManagementApi, aiohttp_protocol: Callable[[], Any],
                 open_readers: set[_PostReader]) -> None:
        self.api = api
        self._aiohttp_protocol = aiohttp_protocol
        self._open = open_readers
        self._buffer = bytearray()
        self._busy = False  # a post is being written; the next waits (no pipelining)
        self._post_line = f"POST {api.prefix}".encode()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._open.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._open.discard(self)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        if not self._busy:
            self._next()

    def eof_received(self) -> bool | None:
        return None  # close

    def _next(self) -> None:
        """Answer the next complete post in the buffer, or hand over to aiohttp."""
        buffer = self._buffer
        if not buffer:
            return
        if not buffer.startswith(self._post_line[:len(buffer)]):
            return self._hand_over()
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > _MAX_HEAD:
                self._hand_over()
            return
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        method, _, rest = lines[0].partition(" ")
        target, _, version = rest.rpartition(" ")
        length, close = None, version != "HTTP/1.1"
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value) if value.strip().isdigit() else None
                if length is None:
                    return self._hand_over()
            elif name in ("transfer-encoding", "expect", "upgrade"):
                return self._hand_over()
            elif name == "connection":
                close = "close" in value.lower() or (
                    version != "HTTP/1.1" and "keep-alive" not in value.lower())
        if method != "POST" or length is None:
            return self._hand_over()
        if len(buffer) < end + 4 + length:
            return  # the body is still coming
        body = bytes(buffer[end + 4:end + 4 + length])
        del buffer[:end + 4 + length]
        self._busy = True
        task = asyncio.get_running_loop().create_task(
            self._answer(self.api.connection_id(target), body, close))
        task.add_done_callback(_log_failure)

    async def _answer(self, connection_id: str, body: bytes, close: bool) -> None:
        try:
            answer = await self.api.post(connection_id, body)
        except Exception:
            answer = (500, "InternalServerErrorException", "Internal server error")
            close = True
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(_answer_bytes(answer, close))
        if close:
            transport.close()
            return
        self._busy = False
        self._next()

    def _hand_over(self) -> None:
        """From here on this connection is aiohttp's, starting with what is buffered."""
        transport = self.transport
        if transport is None:
            return
        self._open.discard(self)
        protocol = self._aiohttp_protocol()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        if self._buffer:
            data, self._buffer = bytes(self._buffer), bytearray()
            protocol.data_received(data)
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        import logging

        logging.getLogger("local_gateway").error(
            "Answering a post failed", exc_info=task.exception())


class Listener:
    """The gateway's port: ``_PostReader`` in front of an aiohttp ``AppRunner``."""

    def __init__(self, server: asyncio.Server, readers: set[_PostReader]) -> None:
        self._server = server
        self._readers = readers

    def close(self) -> None:
        self._server.close()
        for reader in list(self._readers):
            reader.close()


async def listen(runner: web.AppRunner, sock: Any, api: ManagementApi) -> Listener:
    """Serve ``runner``'s app on ``sock``, posts to ``@connections`` by the fast path.

    Use instead of ``web.SockSite(runner, sock).start()``; close the listener before
    ``runner.cleanup()``.
    """
    assert runner.server is not None, "call runner.setup() first"
    readers: set[_PostReader] = set()
    factory = runner.server
    server = await asyncio.get_running_loop().create_server(
        lambda: _PostReader(api, factory, readers), sock=sock)
    return Listener(server, readers)
