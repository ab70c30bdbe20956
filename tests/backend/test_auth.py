"""Sign-in (auth=cognito) in process: the $connect authorizer against moto-issued ID tokens
and every hostile variant of them, the pre sign-up check, and $connect taking the
verified identity.

moto's Cognito (in-process ``mock_aws``) makes the pool and issues the tokens; its JWKS is
served over real HTTP by ``jwks``, so the authorizer fetches keys as it does on AWS
(and a test can count the fetches or rotate the keys).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import jwt
import pytest

from chat.adapters.tokens import KeysUnavailable, TokenVerifier
from chat.config import AUTH_COGNITO
from chat.functions import AUTHORIZER, SIGN_UP_CHECK
from chat.handlers import authorizer
from chat.protocol import SUBPROTOCOL, SUBPROTOCOL_HEADER
from local_gateway.cognito import UserPool, create_user_pool
from local_gateway.events import ConnectionInfo, authorizer_event, connect_event, new_gateway_id
from local_gateway.testing import InProcessStage
from tests.backend.conftest import items
from tests.tokens import HOSTILE, claims_of, moto_public_jwks, new_rsa_key, sign

PASSWORD = "Sup3r-secret!"


class _Jwks(ThreadingHTTPServer):
    """The pool's ``/.well-known/jwks.json`` over HTTP: what is served, and GETs counted."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _JwksHandler)
        self.document: dict[str, Any] = moto_public_jwks()
        self.gets = 0
        self.broken = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/pool/.well-known/jwks.json"


class _JwksHandler(BaseHTTPRequestHandler):
    server: _Jwks

    def do_GET(self) -> None:
        self.server.gets += 1
        if self.server.broken:
            self.send_error(503)
            return
        body = json.dumps(self.server.document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def jwks() -> Iterator[_Jwks]:
    server = _Jwks()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


class Pools:
    def __init__(self, client: Any) -> None:
        self.client = client
        self.pool = create_user_pool(client, "chat")
        self.other = create_user_pool(client, "another-chat")

    def token(self, username: str = "alice", pool: UserPool | None = None) -> str:
        pool = pool or self.pool
        self.client.sign_up(ClientId=pool.client_id, Username=username, Password=PASSWORD,
                            UserAttributes=[{"Name": "email", "Value": "a@example.com"}])
        self.client.admin_confirm_sign_up(UserPoolId=pool.pool_id, Username=username)
        answer = self.client.initiate_auth(
            ClientId=pool.client_id, AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
        return answer["AuthenticationResult"]["IdToken"]


@pytest.fixture
def pools(aws: Any, jwks: _Jwks) -> Iterator[Pools]:
    """Two user pools on moto; the authorizer verifies the first one's tokens."""
    p = Pools(boto3.client("cognito-idp", region_name="us-east-1"))
    authorizer.use(TokenVerifier(p.pool.issuer, p.pool.client_id, jwks.url))
    yield p
    authorizer.use(None)


def authorize(*subprotocols: str, headers: dict[str, str] | None = None) -> Any:
    """Run the authorizer on a handshake that offered ``subprotocols``: its policy, or
    the exception it raised."""
    info = ConnectionInfo(new_gateway_id(), "203.0.113.7", "abc.execute-api.example")
    pairs = list((headers or {}).items())
    if subprotocols:
        pairs.append((SUBPROTOCOL_HEADER, ", ".join(subprotocols)))
    event = authorizer_event(info, connect_event(
        info, headers=pairs, query_string="room=general", request_id=new_gateway_id(), port=443))
    try:
        return InProcessStage.invoke(AUTHORIZER, event)
    except Exception as exc:
        return exc


def effect(policy: dict[str, Any]) -> str:
    (statement,) = policy["policyDocument"]["Statement"]
    return statement["Effect"]


def test_a_valid_id_token_is_allowed_with_the_verified_identity(pools: Pools, json_logs) -> None:
    token = pools.token("alice")
    policy = authorize(SUBPROTOCOL, "bearer." + token)
    assert effect(policy) == "Allow"
    (statement,) = policy["policyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    assert statement["Resource"].endswith("/$connect")  # this $connect only
    assert policy["context"]["username"] == "alice"
    assert policy["principalId"] == policy["context"]["sub"] != ""
    assert token not in json.dumps(json_logs())


@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_tokens_are_refused_and_never_logged(pools: Pools, case, json_logs) -> None:
    valid = pools.token("alice")
    other = pools.token("bob", pools.other)
    token = case.make(valid, other)
    answer = authorize(SUBPROTOCOL, "bearer." + token)
    if case.status == 401:
        assert isinstance(answer, Exception) and str(answer) == "Unauthorized"
    else:
        assert effect(answer) == "Deny"
    logs = json_logs()
    assert [line["reason"] for line in logs if "reason" in line] == [case.reason]
    text = json.dumps(logs)
    assert token not in text and "bearer." not in text


@pytest.mark.parametrize("offered", [(), (SUBPROTOCOL,), ("bearer.",), ("chat.v2", "x")])
def test_no_bearer_subprotocol_is_unauthorized(pools: Pools, offered) -> None:
    answer = authorize(*offered)
    assert isinstance(answer, Exception) and str(answer) == "Unauthorized"


def test_the_header_name_is_matched_whatever_its_case(pools: Pools) -> None:
    token = pools.token("alice")
    policy = authorize(headers={"sec-websocket-protocol": f"{SUBPROTOCOL}, bearer.{token}"})
    assert effect(policy) == "Allow"


def test_the_keys_are_fetched_once_and_again_only_for_an_unknown_key_id(
    pools: Pools, jwks: _Jwks
) -> None:
    token = pools.token("alice")
    for _ in range(3):
        assert effect(authorize(SUBPROTOCOL, "bearer." + token)) == "Allow"
    assert jwks.gets == 1
    # Cognito rotates its keys: a token signed by a new key names a kid the cache does
    # not have, so the JWKS is fetched again, and the new key verifies it.
    key = new_rsa_key()
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    jwks.document = {"keys": [*jwks.document["keys"], {**public, "kid": "k2", "alg": "RS256",
                                                        "use": "sig"}]}
    rotated = sign(claims_of(token), key=key, kid="k2")
    # Within the refresh interval an unknown kid does not fetch again (no fetch storm).
    assert isinstance(authorize(SUBPROTOCOL, "bearer." + rotated), Exception)
    assert jwks.gets == 1
    authorizer.use(TokenVerifier(pools.pool.issuer, pools.pool.client_id, jwks.url))
    assert effect(authorize(SUBPROTOCOL, "bearer." + token)) == "Allow"
    assert effect(authorize(SUBPROTOCOL, "bearer." + rotated)) == "Allow"
    assert jwks.gets == 2


def test_an_unknown_key_id_refreshes_at_most_once_per_interval(jwks: _Jwks) -> None:
    clock = [0.0]
    verifier = TokenVerifier("https://issuer", "client", jwks.url, clock=lambda: clock[0])
    claims = {"iss": "https://issuer", "aud": "client", "sub": "s", "token_use": "id",
              "iat": 0, "exp": 2**31, "cognito:username": "alice"}
    for _ in range(5):
        with pytest.raises(Exception, match="unknown key id"):
            verifier.verify(sign(claims, kid="made-up"))
    assert jwks.gets == 1
    clock[0] += 61
    with pytest.raises(Exception, match="unknown key id"):
        verifier.verify(sign(claims, kid="made-up"))
    assert jwks.gets == 2


def test_unreachable_keys_are_an_error_not_a_bad_token(pools: Pools, jwks: _Jwks) -> None:
    jwks.broken = True
    answer = authorize(SUBPROTOCOL, "bearer." + pools.token("alice"))
    assert isinstance(answer, KeysUnavailable)  # API Gateway answers 500


def test_sign_up_check_takes_protocol_usernames_only() -> None:
    def check(name: object) -> Any:
        event = {"userName": name, "triggerSource": "PreSignUp_SignUp",
                 "request": {"userAttributes": {}}, "response": {}}
        try:
            return InProcessStage.invoke(SIGN_UP_CHECK, event)
        except Exception as exc:
            return exc

    for good in ("alice", "josé", "ana_1", "a.b-c", "Ωmega"):
        assert check(good)["userName"] == good
    for bad in ("<b>", "a b", "", "a" * 33, "jose\u0301", None, "emoji😀"):
        answer = check(bad)
        assert isinstance(answer, Exception), bad
        assert "username" in str(answer)


# -- $connect in auth=cognito --------------------------------------------------------------


@pytest.fixture
def signed_in(configure) -> None:
    configure(auth=AUTH_COGNITO)


def test_connect_takes_the_verified_name_and_ignores_the_query(gw, aws, signed_in) -> None:
    cid, response = gw.connect(
        "mallory", "general",
        headers=[(SUBPROTOCOL_HEADER, f"{SUBPROTOCOL}, bearer.x")],
        authorizer={"principalId": "sub-1", "sub": "sub-1", "username": "alice"},
    )
    assert response["statusCode"] == 200
    assert response["headers"] == {SUBPROTOCOL_HEADER: SUBPROTOCOL}
    gw.send(cid, {"action": "new_message", "text": "hola"})
    (event,) = [e for e in gw.take(cid) if e["type"] == "message"]
    assert event["username"] == "alice"


def test_connect_without_a_verified_identity_is_refused(gw, aws, signed_in) -> None:
    _, response = gw.connect("alice", "general")
    assert response["statusCode"] == 401
    assert items(aws, "chat-connections") == []


def test_the_open_mode_selects_the_subprotocol_only_when_offered(gw, aws) -> None:
    _, offered = gw.connect("alice", headers=[(SUBPROTOCOL_HEADER, SUBPROTOCOL)])
    assert offered["headers"] == {SUBPROTOCOL_HEADER: SUBPROTOCOL}
    _, plain = gw.connect("bob")
    assert "headers" not in plain
