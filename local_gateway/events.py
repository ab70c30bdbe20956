"""The Lambda events API Gateway builds for a WebSocket API, rebuilt locally.

Handlers only ever see these dicts, so they are where "the same handlers run locally"
is won or lost. Every key and type follows the real events published by Powertools for
AWS Lambda (copied to ``tests/events/``); ``tests/gateway/test_events.py`` compares
them key by key. Where the samples are silent the choices are written down here:

- ``$connect`` carries the handshake's headers (minus the hop-by-hop ``Connection`` and
  ``Upgrade``, which API Gateway does not forward) plus the ``X-Amzn-Trace-Id`` and
  ``X-Forwarded-*`` headers its front end adds, and ``queryStringParameters`` /
  ``multiValueQueryStringParameters`` only when the URL has a query string.
- ``$disconnect`` carries the odd fixed header set API Gateway sends (``x-api-key``,
  ``X-Forwarded-For``, ``x-restapi``, all empty) and ``disconnectStatusCode`` /
  ``disconnectReason``.
- Message routes carry ``messageId`` and ``body`` and no headers at all.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

STAGE = "local"
API_ID = "local"

# Handshake headers API Gateway does not hand to $connect.
_HOP_BY_HOP = frozenset({"connection", "upgrade"})


def new_gateway_id() -> str:
    """An id shaped like API Gateway's connection/request ids: 16 chars ending ``=``.

    API Gateway's ids are standard base64 of 11 bytes (``BFHPhfCWIAMCKlQ=``), so they can
    contain ``+`` and ``/``: a client must URL-encode them in ``@connections`` paths
    (boto3 does), and this gateway must decode them there.
    """
    return base64.b64encode(os.urandom(11)).decode("ascii")


def request_time(epoch_ms: int) -> str:
    """API Gateway's CLF-style ``requestTime``: ``11/Nov/2024:11:35:24 +0000``."""
    months = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    t = time.gmtime(epoch_ms / 1000)
    return (f"{t.tm_mday:02d}/{months[t.tm_mon - 1]}/{t.tm_year}:"
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} +0000")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class ConnectionInfo:
    """What API Gateway remembers about a connection, and repeats in every event."""

    connection_id: str
    source_ip: str
    domain_name: str
    user_agent: str = ""
    connected_at: int = field(default_factory=now_ms)  # epoch milliseconds
    last_active_at: int = 0  # epoch milliseconds of the last data frame from the client
    api_id: str = API_ID
    stage: str = STAGE
    # What a $connect authorizer allowed it with (principalId and its context): API
    # Gateway repeats it as requestContext.authorizer in every event of the connection.
    authorizer: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        if not self.last_active_at:
            self.last_active_at = self.connected_at


def _request_context(
    conn: ConnectionInfo, route_key: str, event_type: str, request_id: str
) -> dict[str, Any]:
    epoch = now_ms()
    # Key order as in the real events (it does not matter to json, but helps a reader
    # diffing --verbose output against a CloudWatch log).
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": request_id,
        "requestTime": request_time(epoch),
        "messageDirection": "IN",
        "stage": conn.stage,
        "connectedAt": conn.connected_at,
        "requestTimeEpoch": epoch,
        "identity": {"sourceIp": conn.source_ip},
        "requestId": request_id,
        "domainName": conn.domain_name,
        "connectionId": conn.connection_id,
        "apiId": conn.api_id,
        **({"authorizer": dict(conn.authorizer)} if conn.authorizer is not None else {}),
    }


def _headers(pairs: Iterable[tuple[str, str]]) -> tuple[dict[str, str], dict[str, list[str]]]:
    single: dict[str, str] = {}
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        single[name] = value  # API Gateway keeps the last value of a repeated header
        multi.setdefault(name, []).append(value)
    return single, multi


def connect_event(
    conn: ConnectionInfo,
    *,
    headers: Iterable[tuple[str, str]],
    query_string: str,
    request_id: str,
    port: int,
) -> dict[str, Any]:
    pairs = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
    pairs += [
        ("X-Amzn-Trace-Id", f"Root=1-{int(time.time()):08x}-{os.urandom(12).hex()}"),
        ("X-Forwarded-For", conn.source_ip),
        ("X-Forwarded-Port", str(port)),
        ("X-Forwarded-Proto", "http"),  # "https" on AWS; the local gateway is plain http
    ]
    single, multi = _headers(pairs)
    event: dict[str, Any] = {"headers": single, "multiValueHeaders": multi}
    if query_string:
        query = parse_qsl(query_string, keep_blank_values=True)
        event["queryStringParameters"], event["multiValueQueryStringParameters"] = (
            _headers(query)
        )
    event["requestContext"] = _request_context(conn, "$connect", "CONNECT", request_id)
    event["isBase64Encoded"] = False
    return event


ACCOUNT_ID = "123456789012"  # moto's default account, in ARNs
REGION = "us-east-1"


def method_arn(conn: ConnectionInfo, route_key: str = "$connect") -> str:
    """What a WebSocket authorizer is asked about: ``…:<api>/<stage>/$connect``."""
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{conn.api_id}/{conn.stage}/{route_key}"


def authorizer_event(conn: ConnectionInfo, connect: dict[str, Any]) -> dict[str, Any]:
    """The event of a Lambda REQUEST authorizer on ``$connect``: the handshake as
    ``$connect`` would see it (``connect``, from ``connect_event``), plus ``type``,
    ``methodArn`` and ``stageVariables``."""
    event: dict[str, Any] = {"type": "REQUEST", "methodArn": method_arn(conn)}
    event["headers"], event["multiValueHeaders"] = connect["headers"], connect["multiValueHeaders"]
    for key in ("queryStringParameters", "multiValueQueryStringParameters"):
        if key in connect:
            event[key] = connect[key]
    event["stageVariables"] = {}
    context = connect["requestContext"]
    context.pop("authorizer", None)  # not decided yet
    event["requestContext"] = context
    return event


def disconnect_event(
    conn: ConnectionInfo, *, status_code: int, reason: str, request_id: str
) -> dict[str, Any]:
    # API Gateway sends this fixed, mostly empty header set, not the handshake's.
    single, multi = _headers([
        ("Host", conn.domain_name),
        ("x-api-key", ""),
        ("X-Forwarded-For", ""),
        ("x-restapi", ""),
    ])
    context = _request_context(conn, "$disconnect", "DISCONNECT", request_id)
    context = {
        "routeKey": context.pop("routeKey"),
        "disconnectStatusCode": status_code,
        "eventType": context.pop("eventType"),
        "extendedRequestId": context.pop("extendedRequestId"),
        "requestTime": context.pop("requestTime"),
        "messageDirection": context.pop("messageDirection"),
        "disconnectReason": reason,
        **context,
    }
    return {
        "headers": single,
        "multiValueHeaders": multi,
        "requestContext": context,
        "isBase64Encoded": False,
    }


def route_event(
    conn: ConnectionInfo, *, route_key: str, body: str, request_id: str
) -> dict[str, Any]:
    context = _request_context(conn, route_key, "MESSAGE", request_id)
    context = {"routeKey": context.pop("routeKey"), "messageId": new_gateway_id(), **context}
    return {"requestContext": context, "body": body, "isBase64Encoded": False}
