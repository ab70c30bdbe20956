"""API Gateway's behaviours and limits, checked over real sockets with test handlers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from websockets.exceptions import InvalidStatus

from local_gateway.settings import REPO_ROOT
from tests.gateway.conftest import FAKE_FUNCTIONS, fake_gateway, open_client

pytestmark = pytest.mark.timeout(90)

INTERNAL_ERROR_KEYS = {"message", "connectionId", "requestId"}


def connection_id_of(client):
    return client.request({"action": "echo"}, "echo")["event"]["requestContext"]["connectionId"]


# -- $connect ------------------------------------------------------------------------------


def test_connect_non_2xx_refuses_the_handshake_with_that_status(fake_gw):
    for status in (400, 403):
        with pytest.raises(InvalidStatus) as refused:
            open_client(fake_gw.websocket_url, f"refuse={status}")
        assert refused.value.response.status_code == status


def test_connect_that_raises_fails_the_handshake_with_500_and_the_gateway_carries_on(fake_gw):
    with pytest.raises(InvalidStatus) as refused:
        open_client(fake_gw.websocket_url, "boom=1")
    assert refused.value.response.status_code == 500
    with open_client(fake_gw.websocket_url) as client:
        assert client.request({"action": "echo"}, "echo")["type"] == "echo"


def test_posting_to_a_connection_during_its_own_connect_is_gone(fake_gw):
    # API Gateway answers 410 until the handshake is complete; boto3 raises GoneException.
    with open_client(fake_gw.websocket_url, "post_self=1") as client:
        assert client.request({"action": "record", "key": "connect-post"},
                              "record")["value"] == "gone"
        client.assert_no_events()  # the early post never arrived


# -- routing, MOCK ping, errors ------------------------------------------------------------


def test_unmatched_and_non_json_frames_go_to_default(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        for body in ("not json", "[1, 2]", '{"action": "nope"}', '{"no": "action"}'):
            assert client.request(body, "default")["body"] == body


def test_ping_is_answered_by_the_gateway_without_any_handler(fake_gw):
    def invoked():  # $disconnect of other tests' connections may still be running
        counts = dict(fake_gw.gateway.stats.by_function)
        counts.pop("Disconnect", None)
        return counts

    with open_client(fake_gw.websocket_url) as client:
        before = invoked()
        for _ in range(3):
            client.send({"action": "ping"})
            assert client.recv() == {"type": "pong"}
        assert invoked() == before
        assert "ping" not in before


def test_a_raising_handler_sends_api_gateways_error_frame_and_the_connection_lives(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        connection_id = connection_id_of(client)
        client.send({"action": "boom"})
        error = client.recv()
        assert set(error) == INTERNAL_ERROR_KEYS
        assert error["message"] == "Internal server error"
        assert error["connectionId"] == connection_id
        assert len(error["requestId"]) == 16 and error["requestId"].endswith("=")
        assert client.request({"action": "echo"}, "echo")["type"] == "echo"


def test_a_handler_that_times_out_gets_the_error_frame_and_its_environment_is_replaced(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        started = time.monotonic()
        client.send({"action": "slow", "seconds": 60})
        # Well before the handler's 60 s: the 1.5 s timeout of these tests ended it.
        error = client.recv(timeout=45)
        assert error["message"] == "Internal server error"
        assert time.monotonic() - started >= 1.5
        # The hung process was killed: the function still answers (a fresh environment).
        client.send({"action": "slow", "seconds": 0})
        assert client.recv()["type"] == "slow-done"


def test_one_slow_invocation_does_not_stall_other_connections():
    with fake_gateway(handler_timeout_s=15) as gw, open_client(
        gw.websocket_url
    ) as slow, open_client(gw.websocket_url) as fast:
        connection_id_of(fast)  # warm
        slow.send({"action": "slow", "seconds": 10})
        for _ in range(3):
            fast.request({"action": "echo"}, "echo")
        # The fast answers came while the slow invocation was still running.
        slow.assert_no_events()
        assert slow.recv(timeout=15)["type"] == "slow-done"


# -- the Lambda environment ----------------------------------------------------------------


def test_each_function_gets_the_environment_the_cdk_app_sets(fake_gw):
    gateway = fake_gw.gateway
    with open_client(fake_gw.websocket_url) as client:
        echo = client.request({"action": "echo"}, "echo")
        bare = client.request({"action": "echo_bare"}, "echo")
    routes = {r.route_key: r for r in FAKE_FUNCTIONS}
    for answer, key in ((echo, "echo"), (bare, "echo_bare")):
        expected = routes[key].environment(gateway.environment_values())
        env = answer["env"]
        assert {k: env.get(k) for k in expected} == expected
        # Only the tables the route touches, as in the CDK app.
        for spec in gateway.dynamodb.table_names:
            assert (spec.env_var in env) == (spec.env_var in expected)
        assert env["AWS_ENDPOINT_URL_DYNAMODB"] == gateway.dynamodb.endpoint_url
        assert env["AWS_ACCESS_KEY_ID"] == "testing" and env["AWS_REGION"] == "us-east-1"
        assert env["AWS_LAMBDA_FUNCTION_NAME"] == routes[key].name
        assert env["POWERTOOLS_METRICS_DISABLED"] == "true"
    assert echo["env"]["CALLBACK_URL"] == f"http://127.0.0.1:{fake_gw.port}/local"
    assert echo["pid"] != bare["pid"]  # separate execution environments


def test_the_context_object_is_lambda_like_and_environments_stay_warm(fake_gw):
    with open_client(fake_gw.websocket_url) as client:
        first = client.request({"action": "echo"}, "echo")
        time.sleep(0.2)  # let the first invocation return, so its environment is idle
        second = client.request({"action": "echo"}, "echo")
    ctx = first["context"]
    assert ctx["function_name"] == "Echo"
    assert ctx["memory_limit_in_mb"] == "256"
    assert 0 < ctx["remaining_ms"] <= 1500
    assert ctx["aws_request_id"] != second["context"]["aws_request_id"]
    # Warm start: same process, module state kept.
    assert second["pid"] == first["pid"]
    assert second["invocations"] == first["invocations"] + 1


def test_shell_aws_settings_never_reach_the_handlers():
    # A developer's real profile or keys must never be used: environments drop every
    # AWS_* variable they inherit. Run in a fresh interpreter so its forkserver inherits
    # the "shell" environment below.
    script = (
        "import asyncio, json\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from local_gateway.runtime import FunctionConfig, LambdaFunction\n"
        "config = FunctionConfig(name='Env', handler='tests.gateway.fake_handlers.environment',"
        " environment={'AWS_REGION': 'eu-west-1'}, timeout_s=10)\n"
        "function = LambdaFunction(config, ThreadPoolExecutor(2))\n"
        "result = asyncio.run(function.invoke({}, 'r-1'))\n"
        "function.close()\n"
        "print(json.dumps({'ok': result.ok, 'detail': result.detail, 'env': result.response}))\n"
    )
    shell = {**os.environ, "AWS_PROFILE": "production", "AWS_SECRET_ACCESS_KEY": "real",
             "AWS_ENDPOINT_URL_DYNAMODB": "https://dynamodb.us-east-1.amazonaws.com",
             "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], env=shell, capture_output=True,
                          text=True, timeout=60, check=True, cwd=REPO_ROOT)
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    assert answer["ok"], answer["detail"]
    env = answer["env"]
    assert env["AWS_REGION"] == "eu-west-1"
    for leaked in ("AWS_PROFILE", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_DYNAMODB"):
        assert leaked not in env
    assert env["PATH"]  # the rest of the environment is inherited
