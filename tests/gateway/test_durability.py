"""A message whose echo the sender got survives every way ``python -m local_gateway`` can
stop: Ctrl-C, SIGTERM and SIGHUP to the gateway or to its whole process group (what a
terminal, ``timeout``, a process manager or a CI job's clean-up sends), SIGKILL of the
gateway, SIGKILL of moto's process. Each runs the command in a process group of its own
with a fresh state directory, sends a message, waits for its echo, stops it that way,
starts it again and reads the room's history."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from urllib.parse import urlencode

import pytest

from local_gateway.journal import STATE_FILE
from local_gateway.testing import GatewayProcess
from tests.gateway.conftest import open_client, unique_room

pytestmark = [
    pytest.mark.timeout(180),
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)"),
]


def history(gp: GatewayProcess, room: str) -> list[str]:
    with open_client(gp.websocket_url, urlencode({"username": "reader", "room": room})) as c:
        return [m["text"] for m in c.request({"action": "history"}, "history")["messages"]]


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found[int(entry.name)] = cmdline
    return found


def moto_pid(gp: GatewayProcess) -> int:
    assert gp.process is not None
    pids = [pid for pid, cmd in children(gp.process.pid).items()
            if "local_gateway.dynamodb" in cmd]
    assert len(pids) == 1, children(gp.process.pid)
    return pids[0]


def running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie waiting for a reaper has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while running(pid):
        assert time.monotonic() < deadline, f"process {pid} is still running"
        time.sleep(0.05)


STOPS = {
    # name: (signal, to the whole process group?, exit code the gateway ends with)
    "SIGINT to the gateway": (signal.SIGINT, False, 0),
    "SIGTERM to the gateway": (signal.SIGTERM, False, 0),
    "SIGHUP to the gateway": (signal.SIGHUP, False, 0),
    "SIGINT to its process group": (signal.SIGINT, True, 0),
    "SIGTERM to its process group": (signal.SIGTERM, True, 0),
    "SIGHUP to its process group": (signal.SIGHUP, True, 0),
    "SIGKILL of the gateway": (signal.SIGKILL, False, -signal.SIGKILL),
    "SIGKILL of moto's process": (signal.SIGKILL, None, 1),
}


@pytest.mark.parametrize("stop", list(STOPS))
def test_an_echoed_message_is_in_the_history_after_the_restart(state_dir, stop):
    sig, group, exit_code = STOPS[stop]
    room = unique_room()
    text = f"kept through {stop}"
    gp = GatewayProcess(state_dir=state_dir, new_session=True).start()
    try:
        assert gp.process is not None
        moto = moto_pid(gp)
        with open_client(gp.websocket_url, urlencode({"username": "ana", "room": room})) as ana:
            echo = ana.request({"action": "new_message", "text": text}, "message")
            assert echo["text"] == text
            if group is None:
                os.kill(moto, sig)
            elif group:
                os.killpg(gp.process.pid, sig)
            else:
                os.kill(gp.process.pid, sig)
            code = gp.process.wait(timeout=120)
        assert code == exit_code, gp.output
        wait_until_gone(moto)  # moto's process never outlives the gateway
        if group is False and sig != signal.SIGKILL:
            # A clean stop. (To the group, the signal also ends the functions'
            # forkserver, and without moto their $disconnect fails: both log it.)
            assert "Traceback" not in gp.output, gp.output
        assert "Could not compact" not in gp.output, gp.output
    finally:
        gp.stop(signal.SIGKILL)
    again = GatewayProcess(state_dir=state_dir, new_session=True).start()
    try:
        assert history(again, room) == [text], again.output
        assert again.stop(signal.SIGTERM) == 0, again.output
    finally:
        again.stop(signal.SIGKILL)


def test_moto_ignores_the_signals_of_the_gateways_group_until_the_gateway_is_done(state_dir):
    """A signal to the group reaches the gateway only: moto's process is still answering
    while the gateway closes its connections and writes the last snapshot."""
    room = unique_room()
    gp = GatewayProcess(state_dir=state_dir, new_session=True).start()
    try:
        assert gp.process is not None
        with open_client(gp.websocket_url, urlencode({"username": "ana", "room": room})) as ana:
            ana.request({"action": "new_message", "text": "before"}, "message")
            os.killpg(gp.process.pid, signal.SIGTERM)
            assert gp.process.wait(timeout=120) == 0, gp.output
    finally:
        gp.stop(signal.SIGKILL)
    assert "Could not compact" not in gp.output and "moto's process" not in gp.output
    # The shutdown wrote the snapshot: the journal it started holds nothing.
    assert "before" in (state_dir / STATE_FILE).read_text()


@pytest.mark.parametrize("content", [
    '{"format": "serverless-chat-local-state/1", "tables": {"Messages": [{"pk": {"S": "a"',
    "",
    "\x00\x00\x00\x00",
])
def test_a_cut_short_or_corrupt_state_file_is_refused_with_one_clear_line(state_dir, content):
    state_dir.mkdir(parents=True)
    path = state_dir / STATE_FILE
    path.write_text(content)
    gp = GatewayProcess(state_dir=state_dir)
    with pytest.raises(RuntimeError):
        gp.start(timeout=60)
    assert gp.process is not None and gp.process.returncode == 1
    lines = [line for line in gp.lines if str(path) in line]
    assert len(lines) == 1, gp.output
    assert "not starting" in lines[0] and f"mv {path}" in lines[0]
    assert "Traceback" not in gp.output
    assert path.read_text() == content  # never written over
