"""Lambda REQUEST authorizers on ``$connect``, run the way API Gateway runs them.

For a function declared with a ``ConnectAuthorizer`` trigger (``chat.functions``), each
handshake goes through ``authorize`` before ``$connect``:

- an identity source that is missing or empty: **401**, and the function is not invoked;
- the function raises with the message ``Unauthorized``: **401**; raises anything else,
  times out, or answers something that is not a policy: **500**;
- a policy that does not allow ``execute-api:Invoke`` on this ``$connect`` (its
  ``methodArn``), or denies it: **403**;
- an Allow: its ``principalId`` and ``context`` (string, number and boolean values)
  become ``requestContext.authorizer`` of ``$connect`` and of every later event of the
  connection, as on AWS.

WebSocket APIs do not cache authorizer results: every handshake invokes the function.
Refused handshakes never reach ``$connect``, so nothing is stored for them.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from chat.functions import ConnectAuthorizer, Function
from local_gateway.events import ConnectionInfo, authorizer_event, connect_event
from local_gateway.lambda_service import LambdaService
from local_gateway.runtime import InvocationResult

UNAUTHORIZED = "Unauthorized"
_INVOKE_ACTIONS = ("execute-api:Invoke", "execute-api:*", "*")


@dataclass(frozen=True)
class Decision:
    """``status`` None: allowed, with ``context`` for ``requestContext.authorizer``."""

    status: int | None
    context: dict[str, Any] | None = None
    reason: str = ""


def missing_identity(sources: Iterable[str], headers: Mapping[str, str],
                     query: Mapping[str, str]) -> str | None:
    """The first identity source the handshake lacks (API Gateway then answers 401)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    for source in sources:
        if source.startswith("route.request.header."):
            value = lowered.get(source.removeprefix("route.request.header.").lower())
        elif source.startswith("route.request.querystring."):
            value = query.get(source.removeprefix("route.request.querystring."))
        else:
            raise ValueError(f"identity source {source!r} is not emulated locally")
        if not value:
            return source
    return None


def error_message(result: InvocationResult) -> str:
    """What Lambda would report as ``errorMessage``: the raised exception's text (the
    local runtime hands back the traceback, whose last line is ``Type: message``)."""
    lines = [line for line in result.detail.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return last.partition(": ")[2].strip() if ": " in last else ""


def _allows(policy: Mapping[str, Any], method_arn: str) -> bool | None:
    """True: allowed; False: denied or not allowed; None: not a policy document."""
    statements = policy.get("Statement")
    if isinstance(statements, Mapping):
        statements = [statements]
    if not isinstance(statements, list):
        return None
    allowed = False
    for statement in statements:
        if not isinstance(statement, Mapping):
            return None
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        matches = any(a in _INVOKE_ACTIONS for a in actions) and any(
            isinstance(r, str) and fnmatch.fnmatchcase(method_arn, r) for r in resources)
        if not matches:
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed = True
    return allowed


def decide(result: InvocationResult, method_arn: str, latency_ms: int) -> Decision:
    """API Gateway's reading of an authorizer invocation."""
    if not result.ok:
        if result.error == "error" and error_message(result) == UNAUTHORIZED:
            return Decision(401, reason="the authorizer said Unauthorized")
        return Decision(500, reason=f"the authorizer failed ({result.error})")
    answer = result.response
    if not isinstance(answer, Mapping) or not isinstance(answer.get("policyDocument"), Mapping):
        return Decision(500, reason="the authorizer answered no policy")
    allowed = _allows(answer["policyDocument"], method_arn)
    if allowed is None:
        return Decision(500, reason="the authorizer's policy is malformed")
    if not allowed:
        return Decision(403, reason="the policy does not allow this $connect")
    context = answer.get("context") or {}
    if not isinstance(context, Mapping) or not all(
        isinstance(v, str | int | float | bool) for v in context.values()
    ):
        # API Gateway accepts only flat string/number/boolean values in the context.
        return Decision(500, reason="the authorizer's context is not flat")
    return Decision(None, {
        "principalId": str(answer.get("principalId", "")),
        **context,
        "integrationLatency": latency_ms,
    })


class ConnectAuthorizers:
    """The stage's ``$connect`` authorizer, if a function declares one."""

    def __init__(self, lambdas: LambdaService, functions: Iterable[Function]) -> None:
        declared = [fn for fn in functions if isinstance(fn.trigger, ConnectAuthorizer)]
        if len(declared) > 1:
            raise ValueError("API Gateway allows one authorizer on $connect")
        self.lambdas = lambdas
        self.function = declared[0] if declared else None

    async def authorize(
        self, info: ConnectionInfo, headers: Iterable[tuple[str, str]], query_string: str,
        request_id: str, port: int,
    ) -> Decision:
        fn = self.function
        if fn is None:
            return Decision(None)
        assert isinstance(fn.trigger, ConnectAuthorizer)
        pairs = list(headers)
        query = dict(parse_qsl(query_string, keep_blank_values=True))
        missing = missing_identity(fn.trigger.identity_source, dict(pairs), query)
        if missing is not None:
            return Decision(401, reason=f"no {missing}")
        event = authorizer_event(info, connect_event(
            info, headers=pairs, query_string=query_string, request_id=request_id, port=port))
        started = time.monotonic()
        result = await self.lambdas.invoke(fn.name, event, label="authorizer",
                                           subject=info.connection_id,
                                           expected_error=UNAUTHORIZED)
        latency_ms = round((time.monotonic() - started) * 1000)
        return decide(result, event["methodArn"], latency_ms)
