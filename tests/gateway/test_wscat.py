"""The real ``wscat`` (npm, pinned in package.json) against the local gateway.

wscat exits at once, printing nothing, when its stdin is closed (as in CI), so the test
keeps stdin open while wscat sends its frame and waits (``-w``), then closes it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import urlencode

import pytest

from local_gateway.settings import REPO_ROOT
from tests.gateway.conftest import open_client, unique_room

pytestmark = pytest.mark.timeout(60)

WSCAT = REPO_ROOT / "node_modules" / ".bin" / "wscat"


@pytest.fixture(scope="module")
def wscat() -> Path:
    if not WSCAT.exists() or not shutil.which("node"):
        if os.environ.get("CI") == "true":
            pytest.fail("wscat is missing: `make test` installs it (npm install)")
        pytest.skip("wscat not installed (run `npm install` or `make test`)")
    return WSCAT


def run_wscat(wscat: Path, url: str, *frames: str, wait: int = 2) -> subprocess.CompletedProcess:
    args = [str(wscat), "-c", url, "-w", str(wait)]
    for frame in frames:
        args += ["-x", frame]
    # stdin: a pipe held open until wscat exits on its own -w timer (closing it, as
    # communicate() would, makes wscat quit before it sends anything).
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=out,
                                   stderr=err, text=True)
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdin is not None
            process.stdin.close()
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(args, process.returncode, out.read(), err.read())


def test_a_message_from_wscat_reaches_a_python_client(chat_gw, wscat):
    room = unique_room()
    with open_client(chat_gw.websocket_url, urlencode({"username": "bob", "room": room})) as bob:
        url = f"{chat_gw.websocket_url}?{urlencode({'username': 'wscat', 'room': room})}"
        done = run_wscat(wscat, url, '{"action": "new_message", "text": "hello from wscat"}')
        event = bob.recv_type("message")
        assert (event["username"], event["text"], event["room"]) == (
            "wscat", "hello from wscat", room)
    assert done.returncode == 0, done.stderr
    assert '"hello from wscat"' in done.stdout  # wscat printed its own copy too


def test_wscat_gets_pong_and_sees_a_refused_handshake(chat_gw, wscat):
    ok = run_wscat(wscat, f"{chat_gw.websocket_url}?username=alice", '{"action": "ping"}',
                   wait=1)
    assert ok.returncode == 0, ok.stderr
    assert '{"type": "pong"}' in ok.stdout
    refused = run_wscat(wscat, f"{chat_gw.websocket_url}?username=%3Cb%3E", wait=1)
    assert refused.returncode != 0
    assert "Unexpected server response: 400" in refused.stdout + refused.stderr
