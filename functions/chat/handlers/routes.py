"""Lambda entry points, one per API Gateway route (declared in ``chat.functions``).

Thin on purpose: read the event, get the chat from ``chat.bootstrap``, call it, turn
the outcome into a response. Replies and broadcasts go out through the Management API
(``chat.adapters.management_api``), never as route responses, so the same code works
behind API Gateway and the local gateway. A client never sees a stack trace: refusals
become ``error`` events, anything unexpected an ``internal`` error and a logged
traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from chat import bootstrap
from chat.config import AUTH_COGNITO
from chat.model import MessageNotStored, UnknownConnection
from chat.observability import instrumented, logger, metrics
from chat.protocol import (
    SUBPROTOCOL,
    SUBPROTOCOL_HEADER,
    ProtocolError,
    client_id_of,
    error_event,
    header,
    is_clean_text,
    offered_subprotocols,
    parse_frame,
)
from chat.service import Chat

Response = dict[str, Any]


class RequestContext:
    """The ``requestContext`` fields the routes read (``../shared/aws-events``)."""

    __slots__ = ("api_id", "authorizer", "connected_at", "connection_id", "request_id",
                 "route_key", "stage")

    def __init__(self, ctx: dict[str, Any]) -> None:
        self.connection_id: str = ctx.get("connectionId") or ""
        self.route_key: str | None = ctx.get("routeKey")
        self.request_id: str | None = ctx.get("requestId")
        self.api_id: str | None = ctx.get("apiId")
        self.stage: str | None = ctx.get("stage")
        self.connected_at: int | None = ctx.get("connectedAt")
        # What the $connect authorizer returned as its context, if one ran.
        self.authorizer: Any = ctx.get("authorizer")


class WebSocketEvent:
    """An API Gateway WebSocket event, as the routes read it.

    A plain view rather than Powertools' ``APIGatewayWebSocketEvent``: importing any of
    Powertools' event classes imports all of them, ~28 ms of every route's cold start
    here (``bench/coldstart.py``), for five fields. ``body`` is the frame as API Gateway
    passes it; ``headers`` as the handshake sent them (``protocol.header`` ignores case).
    """

    __slots__ = ("body", "headers", "query_string_parameters", "request_context")

    def __init__(self, event: dict[str, Any]) -> None:
        self.request_context = RequestContext(event.get("requestContext") or {})
        self.body: str | None = event.get("body")
        self.headers: dict[str, str] = event.get("headers") or {}
        self.query_string_parameters: dict[str, str] = event.get("queryStringParameters") or {}


def _chat(event: WebSocketEvent, context: Any) -> Chat:
    ctx = event.request_context
    return bootstrap.chat(bootstrap.remaining_ms(context), api_id=ctx.api_id, stage=ctx.stage)


def _refusal(exc: Exception) -> tuple[str, str] | None:
    """The ``error`` event's code and text for a frame that was refused, not broken."""
    if isinstance(exc, ProtocolError):
        return exc.code, exc.message
    if isinstance(exc, UnknownConnection):
        return "internal", "this connection is not registered; reconnect"
    if isinstance(exc, MessageNotStored):
        return "internal", "the message could not be stored; send it again"
    return None


def _lambda(fn: Callable[[WebSocketEvent, Any], Response]) -> Callable[..., Response]:
    """Powertools around a handler: JSON logs with connection/route/request ids, EMF flush."""

    @instrumented(correlation_paths.API_GATEWAY_REST)
    @functools.wraps(fn)
    def handler(event: dict[str, Any], context: Any) -> Response:
        ws = WebSocketEvent(event)
        ctx = ws.request_context
        logger.append_keys(
            connection_id=ctx.connection_id, route=ctx.route_key, request_id=ctx.request_id
        )
        return fn(ws, context)

    return handler


def _message_route(action: Callable[[Chat, str, dict[str, Any]], None]) -> Callable[..., Response]:
    """A route for frames on an open connection: errors go back as ``error`` events."""

    @_lambda
    @functools.wraps(action)
    def handler(event: WebSocketEvent, context: Any) -> Response:
        connection_id = event.request_context.connection_id
        chat = _chat(event, context)
        frame: dict[str, Any] = {}
        try:
            frame = parse_frame(event.body)
            action(chat, connection_id, frame)
        except Exception as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                code, text = refusal
                logger.info("frame refused", extra={"code": code, "reason": type(exc).__name__})
                chat.reply(connection_id, error_event(code, text, client_id_of(frame)))
                return {"statusCode": 200}
            logger.exception("handler failed")
            metrics.add_metric(name="HandlerErrors", unit="Count", value=1)
            chat.reply(
                connection_id,
                error_event("internal", "something went wrong; try again", client_id_of(frame)),
            )
        return {"statusCode": 200}

    return handler


def verified_username(event: WebSocketEvent) -> str | None:
    """The username the $connect authorizer verified (its context), if one ran."""
    authorizer = event.request_context.authorizer or {}
    username = authorizer.get("username") if isinstance(authorizer, dict) else None
    return username if isinstance(username, str) and username else None


def _accepted(event: WebSocketEvent) -> Response:
    """200, selecting ``chat.v1`` when the client offered it: a browser that offered
    subprotocols fails a handshake whose answer selects none, and API Gateway's answer
    carries the header only if $connect returns it."""
    offered = offered_subprotocols(header(event.headers, SUBPROTOCOL_HEADER))
    if SUBPROTOCOL in offered:
        return {"statusCode": 200, "headers": {SUBPROTOCOL_HEADER: SUBPROTOCOL}}
    return {"statusCode": 200}


@_lambda
def connect(event: WebSocketEvent, context: Any) -> Response:
    ctx = event.request_context
    username = None
    if bootstrap.services().config.auth == AUTH_COGNITO:
        # Signed-in mode: the name is the authorizer's, the query's is ignored. None here
        # means the route has no authorizer (a misconfigured stage): never fall back to
        # trusting the URL.
        username = verified_username(event)
        if username is None:
            logger.error("connect refused: no verified identity (is the authorizer attached?)")
            metrics.add_metric(name="HandlerErrors", unit="Count", value=1)
            return {"statusCode": 401, "body": "sign in first"}
    try:
        conn = _chat(event, context).connect(
            ctx.connection_id, event.query_string_parameters, ctx.connected_at or 0,
            username=username,
        )
    except ProtocolError as exc:
        # A non-2xx status refuses the WebSocket handshake; nothing was stored.
        logger.info("connect refused", extra={"reason": exc.message})
        return {"statusCode": 400, "body": exc.message}
    except Exception:
        logger.exception("connect failed")
        metrics.add_metric(name="HandlerErrors", unit="Count", value=1)
        return {"statusCode": 500, "body": "internal error"}
    logger.info("connected", extra={"username": conn.username, "room": conn.room})
    metrics.add_metric(name="Connections", unit="Count", value=1)
    return _accepted(event)


@_lambda
def disconnect(event: WebSocketEvent, context: Any) -> Response:
    ctx = event.request_context
    try:
        _chat(event, context).disconnect(ctx.connection_id)
    except Exception:
        # Nothing to tell the client (it is gone); TTL removes what we could not.
        logger.exception("disconnect failed")
        metrics.add_metric(name="HandlerErrors", unit="Count", value=1)
    return {"statusCode": 200}


@_message_route
def new_message(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.new_message(connection_id, frame)


@_message_route
def history(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.history(connection_id, frame)


@_message_route
def who(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.who(connection_id)


@_message_route
def typing(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.typing(connection_id)


@_message_route
def edit_message(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.edit_message(connection_id, frame)


@_message_route
def delete_message(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.delete_message(connection_id, frame)


@_message_route
def react(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.react(connection_id, frame)


@_message_route
def mark_read(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.mark_read(connection_id, frame)


@_message_route
def rooms(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    chat.rooms(connection_id)


@_message_route
def default(chat: Chat, connection_id: str, frame: dict[str, Any]) -> None:
    # Reached with valid JSON only when the action is missing or not a route
    # (parse_frame already turned bad JSON into invalid_json).
    action = frame.get("action")
    known = f" '{action[:32]}'" if isinstance(action, str) and is_clean_text(action) else ""
    raise ProtocolError("unknown_action", f"unknown action{known}; see PROTOCOL.md")
