"""No sign-in token reaches a log: ``python -m local_gateway --auth cognito --verbose`` is
offered a real ID token on handshakes it accepts and refuses, and every line it (and its
functions' processes) wrote is searched for the token and for anything JWT-shaped."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.request
from typing import Any

import boto3
import pytest
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from chat.protocol import SUBPROTOCOL
from local_gateway.logs import RedactingFilter, RedactingStream
from local_gateway.testing import GatewayProcess
from tests.gateway.conftest import unique_room
from tests.tokens import altered

pytestmark = pytest.mark.timeout(120)

PASSWORD = "Sup3r-secret!"
# Written independently of local_gateway.logs: a JWT's base64url header, payload, signature.
JWT_SHAPED = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.")


def _id_token(http_url: str, username: str) -> str:
    """Sign up and in through the gateway's Cognito path, as the page does."""
    with urllib.request.urlopen(http_url + "/config.json", timeout=15) as answer:
        auth = json.load(answer)["auth"]
    client = boto3.client("cognito-idp", endpoint_url=auth["endpoint"],
                          region_name=auth["region"], aws_access_key_id="unused",
                          aws_secret_access_key="unused")
    client.sign_up(ClientId=auth["clientId"], Username=username, Password=PASSWORD,
                   UserAttributes=[{"Name": "email", "Value": f"{username}@example.com"}])
    client.confirm_sign_up(ClientId=auth["clientId"], Username=username,
                           ConfirmationCode="123456")
    answer = client.initiate_auth(ClientId=auth["clientId"], AuthFlow="USER_PASSWORD_AUTH",
                                  AuthParameters={"USERNAME": username, "PASSWORD": PASSWORD})
    return answer["AuthenticationResult"]["IdToken"]


def _handshake(url: str, subprotocols: list[str]) -> int | str:
    """The handshake's HTTP status (101 when it opened), or how the client refused it."""
    try:
        with connect(url, subprotocols=subprotocols, open_timeout=30) as ws:  # type: ignore[arg-type]
            ws.send(json.dumps({"action": "who"}))
            json.loads(ws.recv(timeout=30))
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code
    except InvalidHandshake as exc:
        return type(exc).__name__


def test_no_token_reaches_the_gateways_output_accepted_or_refused() -> None:
    with GatewayProcess(args=["--auth", "cognito", "--verbose"]) as gw:
        token = _id_token(gw.http_url, "tessa")
        forged = altered(token, **{"cognito:username": "mallory"})
        url = f"{gw.websocket_url}?room={unique_room()}"
        # Accepted: the authorizer, $connect, a frame and $disconnect all see the token.
        assert _handshake(url, [SUBPROTOCOL, "bearer." + token]) == 101
        # Refused by $connect after the authorizer allowed it (a room the chat refuses).
        assert _handshake(f"{gw.websocket_url}?room=NOT%20A%20ROOM",
                          [SUBPROTOCOL, "bearer." + token]) == 400
        # Refused by the authorizer (a bad signature).
        assert _handshake(url, [SUBPROTOCOL, "bearer." + forged]) == 401
        # Accepted with no subprotocol selected: the server library warns, quoting each one
        # the client offered (the client then gives up on the handshake itself).
        _handshake(url, ["bearer." + token])
        code = gw.stop()
        output = gw.output
    assert code == 0, output
    assert "<redacted>" in output  # the token was offered to the log, and replaced
    for secret in (token, forged, *token.split("."), *forged.split(".")[1:]):
        assert secret not in output
    assert not JWT_SHAPED.search(output), JWT_SHAPED.search(output)


def _record(msg: str, *args: Any, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("aiohttp.websocket", logging.WARNING, __file__, 1, msg, args,
                             exc_info)


def test_the_filter_redacts_arguments_and_tracebacks_of_any_logger() -> None:
    token = "eyJraWQiOiJkdW1teSJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    try:
        raise ValueError(f"bad header chat.v1, bearer.{token}")
    except ValueError as error:
        handler.handle(_record("Client protocols %r don't match", [f"BEARER.{token}"],
                               exc=error))
    handler.handle(_record("plain %s", token))
    handler.handle(_record("nothing secret: a.b.c, eyJ"))
    written = stream.getvalue()
    assert token not in written and "c2lnbmF0dXJl" not in written
    assert "['BEARER.<redacted>'] don't match" in written
    assert "bad header chat.v1, bearer.<redacted>" in written  # the traceback's last line
    assert "plain <redacted>" in written
    assert "nothing secret: a.b.c, eyJ" in written


def test_a_token_written_in_pieces_to_a_stream_is_still_found() -> None:
    out = io.StringIO()
    stream = RedactingStream(out)
    stream.write("offered bearer.eyJhbGci")
    stream.write("OiJSUzI1NiJ9.eyJzdWIi.sig")
    assert out.getvalue() == ""  # held until the line ends
    stream.write("\nnext line ")
    assert out.getvalue() == "offered bearer.<redacted>\n"
    stream.flush()
    assert out.getvalue() == "offered bearer.<redacted>\nnext line "


def test_records_of_any_logger_are_redacted_in_a_process_running_a_gateway(caplog) -> None:
    """Whatever handlers write them (here pytest's): the gateway's stage installs the
    redaction for every record its process makes."""
    import local_gateway.stage  # noqa: F401 - what every gateway imports

    token = "eyJraWQiOiJkdW1teSJ9.eyJzdWIiOiJ5In0.c2lnbmF0dXJlMg"
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").warning("offered %s", ["chat.v1", f"bearer.{token}"])
        try:
            raise RuntimeError(token)
        except RuntimeError:
            logging.getLogger("another").exception("failed")
    assert "c2lnbmF0dXJlMg" not in caplog.text
    assert "offered ['chat.v1', 'bearer.<redacted>']" in caplog.text
