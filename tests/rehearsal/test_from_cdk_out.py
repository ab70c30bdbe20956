"""``python -m local_gateway --from-cdk-out DIR``: the synthesized app for any client.

The command itself in a subprocess, on the ``cdk.out`` folders the session's rehearsal
synthesized: a client chats in the open mode; in the cognito mode the page is told how
to sign in, a handshake without a token is refused and one with a token from the local
Cognito is let in (the authorizer and the pre sign-up check under awslambdaric too).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request

import boto3
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from local_gateway.cdk_out import CloudAssembly
from local_gateway.settings import REPO_ROOT
from local_gateway.testing import GatewayProcess

# The session's rehearsal (two synths) runs in the first test's setup: on two busy
# cores that alone has taken three minutes.
pytestmark = pytest.mark.timeout(900)

PASSWORD = "Sup3r-secret!"


def test_it_serves_the_open_mode_to_a_client(rehearsal) -> None:
    with GatewayProcess(args=["--from-cdk-out", str(rehearsal.root / "cdk.out-none")]) as gw:
        assert "(awslambdaric)" in gw.output
        # The page is the one the stack's bucket deployment ships.
        with urllib.request.urlopen(gw.http_url + "/", timeout=30) as answer:
            page = answer.read()
        shipped = CloudAssembly(rehearsal.root / "cdk.out-none").page_dir()
        assert shipped is not None and page == (shipped / "index.html").read_bytes()
        with connect(f"{gw.websocket_url}?room=cli&username=zoe", open_timeout=60) as ws:
            ws.send(json.dumps({"action": "new_message", "text": "hi", "client_id": "z-1"}))
            event = json.loads(ws.recv(timeout=60))
            while event.get("type") != "message":
                event = json.loads(ws.recv(timeout=60))
            assert (event["username"], event["text"]) == ("zoe", "hi")
        assert gw.stop() == 0


def test_it_serves_the_cognito_mode_with_its_authorizer(rehearsal) -> None:
    with GatewayProcess(args=["--from-cdk-out", str(rehearsal.root / "cdk.out-cognito")]) as gw:
        with urllib.request.urlopen(gw.http_url + "/config.json", timeout=30) as answer:
            auth = json.load(answer)["auth"]
        assert auth["endpoint"] == f"{gw.http_url}/cognito/"
        url = f"{gw.websocket_url}?room=cli"
        with pytest.raises(InvalidStatus) as refused:
            connect(url, subprotocols=["chat.v1"], open_timeout=60)
        assert refused.value.response.status_code == 401
        cognito = boto3.client("cognito-idp", endpoint_url=auth["endpoint"],
                               region_name=auth["region"], aws_access_key_id="x",
                               aws_secret_access_key="x")
        cognito.sign_up(ClientId=auth["clientId"], Username="yan", Password=PASSWORD,
                        UserAttributes=[{"Name": "email", "Value": "yan@example.com"}])
        cognito.confirm_sign_up(ClientId=auth["clientId"], Username="yan",
                                ConfirmationCode="1")
        token = cognito.initiate_auth(
            ClientId=auth["clientId"], AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": "yan", "PASSWORD": PASSWORD},
        )["AuthenticationResult"]["IdToken"]
        with connect(url, subprotocols=["chat.v1", "bearer." + token], open_timeout=60) as ws:
            ws.send(json.dumps({"action": "who"}))
            assert json.loads(ws.recv(timeout=60))["users"] == ["yan"]
        assert token not in gw.output


def test_an_auth_mode_the_app_was_not_synthesized_in_is_refused(rehearsal) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local_gateway", "--port", "0", "--no-state", "--auth",
         "cognito", "--from-cdk-out", str(rehearsal.root / "cdk.out-none")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "synthesized with auth=none" in result.stderr


def test_a_folder_that_is_not_a_cdk_out_is_refused(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local_gateway", "--port", "0", "--no-state",
         "--from-cdk-out", str(tmp_path)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1
    assert "has no manifest.json" in result.stderr
