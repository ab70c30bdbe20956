"""Sign-in over real sockets: the gateway's $connect authorizer emulation, and the chat
with ``auth=cognito`` (moto's Cognito behind ``/cognito/``, the real authorizer).

The first part drives a test-only authorizer (``fake_authorizers``) through every answer
an authorizer can give and checks the handshake's status as API Gateway answers it. The
second signs people up and in through the gateway's Cognito path with boto3, exactly as
against Cognito, and offers every hostile token of ``tests.tokens`` at the handshake.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from chat.config import AUTH, AUTH_COGNITO
from chat.functions import ConnectAuthorizer, Function, Route
from chat.protocol import SUBPROTOCOL, SUBPROTOCOL_HEADER, cognito_auth
from chat.tables import CONNECTIONS
from local_gateway.settings import GatewaySettings, default_function_settings
from local_gateway.testing import GatewayThread
from tests.gateway.conftest import fake_route, fake_settings, unique_room
from tests.tokens import HOSTILE

FAKE_AUTH = "tests.gateway.fake_authorizers."
IDENTITY = ("route.request.header.Sec-WebSocket-Protocol",)
PASSWORD = "Sup3r-secret!"


def _auth_functions() -> tuple[Function, ...]:
    return (
        Function(name="Authorizer", handler=FAKE_AUTH + "authorize",
                 trigger=ConnectAuthorizer(IDENTITY), description="test authorizer",
                 tables={CONNECTIONS: "read_write"}),
        Function(name="Connect", handler=FAKE_AUTH + "connect", trigger=Route("$connect"),
                 description="test $connect", tables={CONNECTIONS: "read_write"}),
        fake_route("$disconnect", "disconnect"),
        fake_route("echo", "echo"),
        fake_route("record", "get_record"),
    )


@pytest.fixture(scope="module")
def auth_gw() -> Iterator[GatewayThread]:
    with GatewayThread(fake_settings(), functions=_auth_functions()) as gw:
        yield gw


def status_of(url: str, subprotocols: list[str] | None = None) -> int:
    """The handshake's HTTP status (101 when it opened)."""
    try:
        with connect(url, subprotocols=subprotocols, open_timeout=15):  # type: ignore[arg-type]
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


def invocations(gw: GatewayThread, name: str) -> int:
    return gw.gateway.stats.by_function[name]


def record(gw: GatewayThread, key: str) -> Any:
    with connect(gw.websocket_url, subprotocols=["x"], open_timeout=15) as ws:
        ws.send(json.dumps({"action": "record", "key": key}))
        value = json.loads(ws.recv(timeout=15))["value"]
    return json.loads(value) if value else None


def test_a_missing_identity_source_is_401_without_invoking_the_authorizer(auth_gw) -> None:
    before = (invocations(auth_gw, "Authorizer"), invocations(auth_gw, "Connect"))
    assert status_of(auth_gw.websocket_url) == 401
    assert status_of(auth_gw.websocket_url + "?auth=allow") == 401
    assert (invocations(auth_gw, "Authorizer"), invocations(auth_gw, "Connect")) == before


@pytest.mark.parametrize(("how", "status"), [
    ("allow", 101), ("wildcard", 101), ("deny", 403), ("other-route", 403),
    ("unauthorized", 401), ("boom", 500), ("garbage", 500), ("nested", 500),
])
def test_the_authorizers_answer_becomes_the_handshakes_status(auth_gw, how, status) -> None:
    connects = invocations(auth_gw, "Connect")
    assert status_of(f"{auth_gw.websocket_url}?auth={how}", ["x"]) == status
    # $connect runs only for an allowed handshake.
    assert invocations(auth_gw, "Connect") == connects + (status == 101)


def test_the_authorizer_gets_api_gateways_request_event(auth_gw) -> None:
    assert status_of(f"{auth_gw.websocket_url}?auth=deny&room=r1", ["chat.v1", "bearer.t"]) == 403
    event = record(auth_gw, "authorizer-event-r1")
    assert event["type"] == "REQUEST"
    assert event["methodArn"].startswith("arn:aws:execute-api:")
    assert event["methodArn"].endswith("/local/$connect")
    assert event["headers"][SUBPROTOCOL_HEADER] == "chat.v1, bearer.t"
    assert event["queryStringParameters"] == {"auth": "deny", "room": "r1"}
    assert event["stageVariables"] == {}
    context = event["requestContext"]
    assert (context["routeKey"], context["eventType"]) == ("$connect", "CONNECT")
    assert "authorizer" not in context


def test_the_allow_context_reaches_connect_and_every_later_event(auth_gw) -> None:
    with connect(f"{auth_gw.websocket_url}?auth=allow", subprotocols=["x"],
                 open_timeout=15) as ws:
        ws.send(json.dumps({"action": "echo"}))
        echoed = json.loads(ws.recv(timeout=15))["event"]["requestContext"]
    connected = record(auth_gw, f"conn#{echoed['connectionId']}")["requestContext"]
    expected = {"principalId": "user-1", "username": "alice", "n": 1, "ok": True}
    assert {k: v for k, v in connected["authorizer"].items()
            if k != "integrationLatency"} == expected
    assert isinstance(connected["authorizer"]["integrationLatency"], int)
    assert {k: v for k, v in echoed["authorizer"].items()
            if k != "integrationLatency"} == expected


def test_the_subprotocol_connect_returns_is_the_one_selected(auth_gw) -> None:
    url = f"{auth_gw.websocket_url}?auth=allow"
    with connect(url + "&select=chat.v1", subprotocols=["chat.v1", "bearer.t"],
                 open_timeout=15) as ws:
        assert ws.subprotocol == "chat.v1"
    # $connect returned none: none is selected (a browser then fails the handshake).
    with connect(url, subprotocols=["chat.v1", "bearer.t"], open_timeout=15) as ws:
        assert ws.subprotocol is None


# -- the chat with auth=cognito ----------------------------------------------------------


def cognito_settings(**overrides: Any) -> GatewaySettings:
    functions = {**default_function_settings(), AUTH.env_var: AUTH_COGNITO}
    return GatewaySettings(port=0, state_dir=None, function_settings=functions, **overrides)


@pytest.fixture(scope="module")
def chat_gw() -> Iterator[GatewayThread]:
    with GatewayThread(cognito_settings(verbose=True)) as gw:
        yield gw


class People:
    """Signs people up and in through the gateway's Cognito, as the page or boto3 would."""

    def __init__(self, gw: GatewayThread) -> None:
        with urllib.request.urlopen(gw.http_url + "/config.json", timeout=15) as answer:
            self.auth = json.load(answer)["auth"]
        self.client = boto3.client(
            "cognito-idp", endpoint_url=self.auth["endpoint"], region_name=self.auth["region"],
            aws_access_key_id="unused", aws_secret_access_key="unused")

    def sign_up(self, username: str) -> Any:
        return self.client.sign_up(
            ClientId=self.auth["clientId"], Username=username, Password=PASSWORD,
            UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}])

    def token(self, username: str) -> str:
        self.sign_up(username)
        self.client.confirm_sign_up(ClientId=self.auth["clientId"], Username=username,
                                    ConfirmationCode="123456")  # any code works locally
        answer = self.client.initiate_auth(
            ClientId=self.auth["clientId"], AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
        return answer["AuthenticationResult"]["IdToken"]


@pytest.fixture(scope="module")
def people(chat_gw) -> People:
    return People(chat_gw)


def stored_connections(gw: GatewayThread) -> list[dict[str, Any]]:
    items = gw.gateway.dynamodb.dump()[CONNECTIONS.logical_id]
    return [i for i in items if i["pk"]["S"].startswith("CONN#")]


def test_config_json_says_how_to_sign_in(chat_gw, people) -> None:
    pool = chat_gw.gateway.cognito.pool
    assert people.auth == cognito_auth("us-east-1", pool.pool_id, pool.client_id,
                                       f"{chat_gw.http_url}/cognito/")


def test_signed_in_people_chat_under_their_verified_names(chat_gw, people) -> None:
    room = unique_room()
    url = f"{chat_gw.websocket_url}?room={room}&username=mallory"  # the query's name is ignored
    ana, ben = people.token("ana"), people.token("ben")
    with connect(url, subprotocols=[SUBPROTOCOL, "bearer." + ana], open_timeout=15) as a, \
            connect(url, subprotocols=[SUBPROTOCOL, "bearer." + ben], open_timeout=15) as b:
        assert a.subprotocol == b.subprotocol == SUBPROTOCOL
        a.send(json.dumps({"action": "new_message", "text": "hola", "client_id": "c-1"}))
        for ws in (a, b):
            event = json.loads(ws.recv(timeout=15))
            while event["type"] != "message":
                event = json.loads(ws.recv(timeout=15))
            assert (event["username"], event["text"]) == ("ana", "hola")


@pytest.mark.parametrize("case", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_tokens_are_refused_at_the_handshake(chat_gw, people, case, capfd,
                                                     caplog) -> None:
    caplog.set_level(logging.INFO)
    valid = people.token(f"u{HOSTILE.index(case)}")
    other = _other_pool_token(chat_gw)
    token = case.make(valid, other)
    # As ids: an earlier test's connections may still be leaving meanwhile.
    before = {item["connection_id"]["S"] for item in stored_connections(chat_gw)}
    url = f"{chat_gw.websocket_url}?room=general"
    assert status_of(url, [SUBPROTOCOL, "bearer." + token]) == case.status
    after = {item["connection_id"]["S"] for item in stored_connections(chat_gw)}
    assert after <= before  # nothing stored
    logged = capfd.readouterr().out + caplog.text  # the gateway's and the functions' logs
    assert token not in logged


@pytest.mark.parametrize("offered", [None, [SUBPROTOCOL], [SUBPROTOCOL, "bearer."]])
def test_no_token_is_401(chat_gw, offered) -> None:
    invoked = invocations(chat_gw, "Authorizer")
    assert status_of(f"{chat_gw.websocket_url}?room=general&username=alice", offered) == 401
    # No Sec-WebSocket-Protocol at all: API Gateway answers without invoking the authorizer.
    assert invocations(chat_gw, "Authorizer") == invoked + (offered is not None)


def test_sign_up_refuses_names_the_chat_cannot_show(people) -> None:
    with pytest.raises(people.client.exceptions.UserLambdaValidationException,
                       match="PreSignUp failed with error username"):
        people.sign_up("<b>")
    with pytest.raises(people.client.exceptions.UserNotFoundException):
        people.client.confirm_sign_up(ClientId=people.auth["clientId"], Username="<b>",
                                      ConfirmationCode="1")


def test_the_cognito_path_answers_clients_as_cognito_does(people) -> None:
    people.sign_up("carla")
    errors = people.client.exceptions
    with pytest.raises(errors.UsernameExistsException):
        people.sign_up("carla")
    with pytest.raises(errors.UserNotConfirmedException):
        people.client.initiate_auth(ClientId=people.auth["clientId"],
                                    AuthFlow="USER_PASSWORD_AUTH",
                                    AuthParameters={"USERNAME": "carla", "PASSWORD": PASSWORD})
    with pytest.raises(errors.InvalidPasswordException):
        people.client.sign_up(ClientId=people.auth["clientId"], Username="dora",
                              Password="weak", UserAttributes=[])


def _other_pool_token(gw: GatewayThread) -> str:
    """An ID token of another pool on the same moto (same key, another issuer)."""
    client = boto3.client("cognito-idp", endpoint_url=gw.gateway.dynamodb.endpoint_url,
                          region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    from local_gateway.cognito import create_user_pool

    pool = create_user_pool(client, "another")
    client.admin_create_user(UserPoolId=pool.pool_id, Username="eve",
                             TemporaryPassword=PASSWORD, MessageAction="SUPPRESS")
    client.admin_set_user_password(UserPoolId=pool.pool_id, Username="eve",
                                   Password=PASSWORD, Permanent=True)
    answer = client.initiate_auth(ClientId=pool.client_id, AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": "eve", "PASSWORD": PASSWORD})
    return answer["AuthenticationResult"]["IdToken"]
