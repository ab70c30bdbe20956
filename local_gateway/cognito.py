"""Cognito for the local gateway (``--auth cognito``): moto's user pool behind ``/cognito/``.

moto's Cognito issues real RS256 ID tokens and serves each pool's JWKS; it runs in the
moto server the gateway already has (``local_gateway.dynamodb``: one server answers
every service). The gateway serves it on one path of its own port, so the page
(``fetch``) and boto3 (``endpoint_url``) call ``http://127.0.0.1:<port>/cognito/``
exactly as they call ``https://cognito-idp.<region>.amazonaws.com/`` when deployed,
with no CORS and no second port. The pool and its app client are made from
``chat.identity``, the declaration the CDK app builds the deployed pool from.

What Cognito does and moto does not, added here:

- the **pre sign-up trigger**: a ``SignUp`` (or ``AdminCreateUser``) is first handed to
  the function declared with ``UserPoolTrigger("pre_sign_up")``, with the event Cognito
  builds; if it raises, the client gets ``UserLambdaValidationException`` "PreSignUp
  failed with error <message>." and no user is made.

What differs, on purpose or because moto does: no email is sent and **any confirmation
code works**; every pool moto makes signs with the same published key (fine for a
laptop, which is why ``--auth cognito`` never leaves 127.0.0.1); ID tokens last one
hour whatever the client's setting; users live as long as the gateway process (they
are not in the saved state).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession, ClientTimeout, web

from chat.config import JWKS_URL_ENV, TOKEN_AUDIENCE_ENV, TOKEN_ISSUER_ENV
from chat.functions import Function, UserPoolTrigger
from chat.identity import AUTH_FLOWS, CASE_SENSITIVE, PASSWORD_POLICY, VERIFIED_ATTRIBUTE
from chat.protocol import cognito_auth
from local_gateway.authorizers import error_message
from local_gateway.dynamodb import DUMMY_CREDENTIALS, REGION
from local_gateway.lambda_service import LambdaService

log = logging.getLogger("local_gateway")

PATH = "/cognito/"
_TARGET_PREFIX = "AWSCognitoIdentityProviderService."
# Requests that create a user, and so run the pre sign-up trigger first.
_SIGN_UPS = {"SignUp": "PreSignUp_SignUp", "AdminCreateUser": "PreSignUp_AdminCreateUser"}
# Headers passed on to moto and back: what the Cognito API's JSON protocol uses.
_REQUEST_HEADERS = ("Content-Type", "X-Amz-Target", "Authorization", "X-Amz-Date",
                    "X-Amz-Security-Token", "X-Amz-Content-Sha256")
_RESPONSE_HEADERS = ("Content-Type", "x-amzn-ErrorType", "x-amzn-RequestId")


@dataclass(frozen=True)
class UserPool:
    """A user pool and the app client the page signs in with."""

    pool_id: str
    client_id: str

    @property
    def issuer(self) -> str:
        """The ``iss`` of its tokens (moto writes the regional Cognito URL, as Cognito)."""
        return f"https://cognito-idp.{REGION}.amazonaws.com/{self.pool_id}"


def create_user_pool(client: Any, name: str = "chat-local") -> UserPool:
    """The pool and public app client of ``chat.identity``, through the Cognito API."""
    p = PASSWORD_POLICY
    pool = client.create_user_pool(
        PoolName=name,
        Policies={"PasswordPolicy": {
            "MinimumLength": p.min_length,
            "RequireLowercase": p.require_lowercase,
            "RequireUppercase": p.require_uppercase,
            "RequireNumbers": p.require_digits,
            "RequireSymbols": p.require_symbols,
        }},
        AutoVerifiedAttributes=[VERIFIED_ATTRIBUTE],
        UsernameConfiguration={"CaseSensitive": CASE_SENSITIVE},
        Schema=[{"Name": VERIFIED_ATTRIBUTE, "AttributeDataType": "String", "Required": True,
                 "Mutable": True}],
    )["UserPool"]
    app = client.create_user_pool_client(
        UserPoolId=pool["Id"], ClientName="page", GenerateSecret=False,
        ExplicitAuthFlows=list(AUTH_FLOWS),
    )["UserPoolClient"]
    return UserPool(pool["Id"], app["ClientId"])


class LocalCognito:
    """moto's Cognito with the chat's pool, served at ``/cognito/`` on the gateway's port."""

    def __init__(self, functions: Iterable[Function]) -> None:
        self.lambdas: LambdaService | None = None  # set once the functions exist
        self.pre_sign_up = next((fn for fn in functions if isinstance(fn.trigger, UserPoolTrigger)
                                 and fn.trigger.operation == "pre_sign_up"), None)
        self.moto_url = ""
        self.pool: UserPool | None = None
        self._session: ClientSession | None = None

    def start(self, moto_url: str) -> UserPool:
        """Create the pool on moto (blocking: call it from an executor)."""
        import boto3

        self.moto_url = moto_url.rstrip("/")
        client = boto3.client(
            "cognito-idp", endpoint_url=self.moto_url, region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        self.pool = create_user_pool(client)
        return self.pool

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- what the gateway hands out ----------------------------------------------------

    def endpoint(self, http_url: str) -> str:
        return f"{http_url}{PATH}"

    def environment_values(self, http_url: str) -> dict[str, str]:
        """What a function that verifies tokens is given (``Function.verifies_tokens``)."""
        assert self.pool is not None, "start() first"
        return {
            TOKEN_ISSUER_ENV: self.pool.issuer,
            TOKEN_AUDIENCE_ENV: self.pool.client_id,
            JWKS_URL_ENV: f"{self.endpoint(http_url)}{self.pool.pool_id}/.well-known/jwks.json",
        }

    def page_auth(self, http_url: str) -> dict[str, Any]:
        """``config.json``'s ``auth``."""
        assert self.pool is not None, "start() first"
        return cognito_auth(REGION, self.pool.pool_id, self.pool.client_id,
                            self.endpoint(http_url))

    # -- the proxy ---------------------------------------------------------------------

    def add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", PATH + "{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(_TARGET_PREFIX)
        if request.method == "POST" and operation in _SIGN_UPS and self.pre_sign_up:
            refusal = await self._check_sign_up(body, _SIGN_UPS[operation])
            if refusal is not None:
                return refusal
        return await self._forward(request, body)

    async def _forward(self, request: web.Request, body: bytes) -> web.StreamResponse:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=30))
        path = "/" + request.match_info.get("tail", "")
        headers = {k: request.headers[k] for k in _REQUEST_HEADERS if k in request.headers}
        async with self._session.request(request.method, self.moto_url + path, data=body,
                                         headers=headers, params=request.query) as answer:
            payload = await answer.read()
            out = {k: answer.headers[k] for k in _RESPONSE_HEADERS if k in answer.headers}
            return web.Response(status=answer.status, body=payload, headers=out)

    async def _check_sign_up(self, body: bytes, trigger_source: str) -> web.Response | None:
        """Run the pre sign-up function as Cognito would; its refusal, if it refused."""
        assert self.pre_sign_up is not None and self.pool is not None
        assert self.lambdas is not None, "the gateway sets lambdas before serving"
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return None  # let moto answer the malformed request its own way
        if not isinstance(request, dict):
            return None
        attributes = {a.get("Name"): a.get("Value")
                      for a in request.get("UserAttributes") or [] if isinstance(a, dict)}
        event = {
            "version": "1",
            "region": REGION,
            "userPoolId": self.pool.pool_id,
            "userName": request.get("Username"),
            "callerContext": {"awsSdkVersion": "local", "clientId": request.get("ClientId")},
            "triggerSource": trigger_source,
            "request": {"userAttributes": attributes, "validationData": None},
            "response": {"autoConfirmUser": False, "autoVerifyEmail": False,
                         "autoVerifyPhone": False},
        }
        result = await self.lambdas.invoke(self.pre_sign_up.name, event, label="pre_sign_up",
                                           subject=str(request.get("Username"))[:40])
        if result.ok:
            return None
        message = error_message(result) if result.error == "error" else "the trigger timed out"
        return web.json_response(
            {"__type": "UserLambdaValidationException",
             "message": f"PreSignUp failed with error {message}."},
            status=400, headers={"x-amzn-ErrorType": "UserLambdaValidationException"},
            content_type="application/x-amz-json-1.1",
        )
