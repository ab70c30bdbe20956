"""The API Gateway Management API (``@connections``) of the local stage.

The functions reach it through boto3's ``apigatewaymanagementapi`` client with
``CALLBACK_URL`` pointing here, exactly as they reach API Gateway's on AWS: the same
paths, status codes and ``x-amzn-ErrorType`` headers, so botocore raises the same
exceptions (``GoneException`` for 410).
"""

from __future__ import annotations

import json
import uuid
from urllib.parse import unquote

from aiohttp import web

from chat.protocol import iso_time
from local_gateway.events import STAGE
from local_gateway.stage import DELETED, Stage


class ManagementApi:
    """``POST``/``GET``/``DELETE /<stage>/@connections/{connection_id}``."""

    def __init__(self, stage: Stage, max_message_bytes: int) -> None:
        self.stage = stage
        self.max_message_bytes = max_message_bytes
        self.prefix = f"/{STAGE}/@connections/"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", self.prefix + "{connection_id:.+}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        # The id is URL-encoded by boto3 (API Gateway ids contain "=" and may contain
        # "+" and "/"): decode it from the raw path, whatever aiohttp normalised.
        raw_path = request.raw_path.split("?", 1)[0]
        connection_id = (
            unquote(raw_path[len(self.prefix):]) if raw_path.startswith(self.prefix) else ""
        )
        sock = self.stage.open_socket(connection_id)
        if sock is None:
            return _gone()
        if request.method == "POST":
            data = await request.read()
            if len(data) > self.max_message_bytes:
                return _error(413, "PayloadTooLargeException", "Message too long")
            if self.stage.buffer_full(sock):
                # API Gateway's answer when "the WebSocket client side buffer is full"
                # (see local_gateway.stage); the function may retry it later.
                return _error(429, "LimitExceededException", "Too Many Requests")
            if not await self.stage.send(sock, data.decode("utf-8", errors="replace")):
                return _gone()
            return web.Response(status=200)
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
