"""The ``$connect`` authorizer (``chat.functions.AUTHORIZER``, only when ``auth=cognito``).

API Gateway runs it before ``$connect`` with the handshake's headers (a Lambda REQUEST
authorizer whose identity source is ``Sec-WebSocket-Protocol``: a handshake without that
header is answered 401 by API Gateway itself, without invoking this). It answers:

- an **Allow** policy for this connection's ``$connect`` with the verified ``sub`` and
  username in its context, which API Gateway hands to ``$connect`` (and every later
  event of the connection) as ``requestContext.authorizer``;
- **"Unauthorized"** (raised: API Gateway answers 401) when no ``bearer.<token>``
  subprotocol was offered or the token is not a valid ID token of the pool and client:
  malformed, expired, forged, altered, ``alg: none``, another audience or issuer;
- a **Deny** policy (403) for a valid token whose username breaks PROTOCOL.md's rules
  (the pre sign-up check refuses such names, so only an account made around it has one);
- an error (500) when the pool's keys cannot be fetched: a token is not bad because the
  keys were out of reach.

Refusals are logged with their reason, never with the token or the header.

The verifier is kept for the life of the process here rather than built by
``chat.bootstrap``: the composition root imports boto3 and the DynamoDB and
``@connections`` adapters, which this function never uses and whose import would about
double its cold start (``bench/coldstart.py``).
"""

from __future__ import annotations

import os
from typing import Any

from chat.adapters.tokens import InvalidToken, KeysUnavailable, TokenVerifier
from chat.config import JWKS_URL_ENV, TOKEN_AUDIENCE_ENV, TOKEN_ISSUER_ENV
from chat.observability import instrumented, logger, metrics
from chat.protocol import (
    SUBPROTOCOL_HEADER,
    ProtocolError,
    bearer_token,
    header,
    offered_subprotocols,
    parse_username,
)

# The exact message API Gateway turns into 401 Unauthorized.
UNAUTHORIZED = "Unauthorized"

_verifier: TokenVerifier | None = None


def verifier() -> TokenVerifier:
    """This process's verifier (its JWKS cache lives as long as the container)."""
    global _verifier
    if _verifier is None:
        _verifier = TokenVerifier(
            issuer=os.environ.get(TOKEN_ISSUER_ENV, ""),
            audience=os.environ.get(TOKEN_AUDIENCE_ENV, ""),
            jwks_url=os.environ.get(JWKS_URL_ENV, ""),
        )
    return _verifier


def use(replacement: TokenVerifier | None) -> None:
    """Install a verifier built elsewhere (tests), or ``None`` to rebuild on next use."""
    global _verifier
    _verifier = replacement


def policy(principal_id: str, effect: str, resource: str,
           context: dict[str, str] | None = None) -> dict[str, Any]:
    """An IAM policy for this one ``$connect`` (``methodArn``), as API Gateway expects it."""
    answer: dict[str, Any] = {
        "principalId": principal_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}
            ],
        },
    }
    if context:
        answer["context"] = context
    return answer


def _unauthorized(reason: str) -> Exception:
    """What to raise for a 401 (the message is API Gateway's contract), logged."""
    logger.info("connection refused", extra={"reason": reason})
    metrics.add_metric(name="ConnectionsRefused", unit="Count", value=1)
    return Exception(UNAUTHORIZED)


def _denied(reason: str, sub: str, method_arn: str) -> dict[str, Any]:
    logger.info("connection denied", extra={"reason": reason, "sub": sub})
    metrics.add_metric(name="ConnectionsRefused", unit="Count", value=1)
    return policy(sub, "Deny", method_arn)


@instrumented()
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    request = event.get("requestContext") or {}
    logger.append_keys(connection_id=request.get("connectionId"),
                       request_id=request.get("requestId"))
    method_arn = str(event.get("methodArn", ""))
    offered = offered_subprotocols(header(event.get("headers"), SUBPROTOCOL_HEADER))
    token = bearer_token(offered)
    if token is None:
        raise _unauthorized("no bearer subprotocol")
    try:
        identity = verifier().verify(token)
    except InvalidToken as exc:
        raise _unauthorized(exc.reason) from None
    except KeysUnavailable as exc:
        logger.error("the user pool's keys are out of reach", extra={"reason": str(exc)})
        metrics.add_metric(name="HandlerErrors", unit="Count", value=1)
        raise
    try:
        username = parse_username(identity.username)
    except ProtocolError as exc:
        return _denied(exc.message, identity.sub, method_arn)
    if username != identity.username:
        # Not NFC: the name people would see is not the one the pool holds.
        return _denied("username is not NFC-normalized", identity.sub, method_arn)
    logger.info("connection allowed", extra={"sub": identity.sub, "username": username})
    return policy(identity.sub, "Allow", method_arn, {"sub": identity.sub, "username": username})
