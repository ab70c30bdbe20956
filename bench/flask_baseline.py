"""The baseline: the single-process Flask-SocketIO + SQLite chat this project replaces.

    .venv/bin/pip install -e '.[bench]'     # flask-socketio, python-socketio, simple-websocket
    .venv/bin/python bench/flask_baseline.py --json --clients 50 --rooms 1 --rate-per-client 0.4

The app (``--serve``) is the seed's shape, minimal: a client connects with
``?username=&room=``, joins its room; a ``new_message`` ``{text, client_id}`` is stored
in SQLite (one INSERT, committed) and then emitted to the room as a ``message`` event.
Flask-SocketIO runs in its default threading mode (simple-websocket, one thread per
client). The load and the counting are ``bench.e2e.run_load``'s, the clients
python-socketio's ``AsyncClient`` over WebSocket only, in this process: the same load
shape as ``bench/e2e.py``, so the two are comparable when run in the same minute.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.e2e import Client, Connect, LoadResult, OnEvent, run_load  # noqa: E402

MISSING = ("The Flask-SocketIO baseline needs flask-socketio, python-socketio and "
           "simple-websocket (not part of the chat): .venv/bin/pip install -e '.[bench]'")


def _require() -> bool:
    try:
        import flask_socketio  # noqa: F401
        import simple_websocket  # noqa: F401
        import socketio  # noqa: F401
    except ImportError:
        print(MISSING, file=sys.stderr)
        return False
    return True


# -- the app -------------------------------------------------------------------------------


def serve(port: int, database: str) -> None:
    from flask import Flask, request
    from flask_socketio import SocketIO, emit, join_room

    app = Flask(__name__)
    socketio = SocketIO(app, async_mode="threading", logger=False, engineio_logger=False)
    db = sqlite3.connect(database, check_same_thread=False)
    db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, room TEXT, "
               "username TEXT, text TEXT, client_id TEXT, created_at REAL)")
    lock = threading.Lock()
    who: dict[str, tuple[str, str]] = {}

    @socketio.on("connect")
    def on_connect(auth: Any = None) -> None:
        username = request.args.get("username", "anon")
        room = request.args.get("room") or "general"
        who[request.sid] = (username, room)
        join_room(room)

    @socketio.on("disconnect")
    def on_disconnect(*args: Any) -> None:
        who.pop(request.sid, None)

    @socketio.on("new_message")
    def on_new_message(data: dict[str, Any]) -> None:
        username, room = who[request.sid]
        text, client_id = str(data.get("text", "")), data.get("client_id")
        now = time.time()
        with lock:
            cursor = db.execute(
                "INSERT INTO messages (room, username, text, client_id, created_at) "
                "VALUES (?, ?, ?, ?, ?)", (room, username, text, client_id, now))
            db.commit()
        emit("message", {"id": cursor.lastrowid, "room": room, "username": username,
                         "text": text, "client_id": client_id, "created_at": now}, to=room)

    print(f"baseline ready on {port}", flush=True)
    socketio.run(app, host="127.0.0.1", port=port, allow_unsafe_werkzeug=True,
                 log_output=False)


# -- the clients -----------------------------------------------------------------------------


class SocketIOClient(Client):
    def __init__(self, sio: Any) -> None:
        self.sio = sio

    async def send_message(self, text: str, client_id: str) -> None:
        await self.sio.emit("new_message", {"text": text, "client_id": client_id})

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.sio.disconnect()


def socketio_transport(url: str) -> Connect:
    import socketio

    async def connect(index: int, username: str, room: str, on_event: OnEvent) -> Client:
        sio = socketio.AsyncClient(reconnection=False)

        @sio.on("message")
        async def on_message(data: dict[str, Any]) -> None:
            on_event(index, {"type": "message", **data})

        await sio.connect(f"{url}?username={quote(username)}&room={quote(room)}",
                          transports=["websocket"], wait_timeout=60)
        return SocketIOClient(sio)

    return connect


class BaselineServer:
    """The app in a subprocess on a free port; a context manager."""

    def __enter__(self) -> BaselineServer:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._dir = tempfile.TemporaryDirectory(prefix="flask-baseline-")
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.port),
             "--database", str(Path(self._dir.name) / "chat.sqlite3")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if "ready" not in line:
            self.process.kill()
            raise RuntimeError(f"baseline did not start: {line}{self.process.stdout.read()}")
        threading.Thread(target=self.process.stdout.read, daemon=True).start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # the port opens just after the line
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                break
            time.sleep(0.05)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._dir.cleanup()


async def load_baseline(**load: Any) -> LoadResult:
    with BaselineServer() as server:
        return await run_load(socketio_transport(server.url), **load)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rooms", type=int, default=1)
    p.add_argument("--rate-per-client", type=float, default=0.4)
    p.add_argument("--seconds", type=float, default=25)
    p.add_argument("--grace", type=float, default=20)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--seed", type=int)
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--database", help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if not _require():
        return 2
    if a.serve:
        serve(a.serve, a.database)
        return 0
    result = asyncio.run(load_baseline(
        clients=a.clients, rooms=a.rooms, rate_per_client=a.rate_per_client,
        seconds=a.seconds, grace_s=a.grace, warmup_s=a.warmup, seed=a.seed))
    summary = {**result.summary(), "bench": "e2e-flask-socketio",
               "target": "Flask-SocketIO + SQLite (threading)"}
    if a.json:
        from bench.machine import machine

        print(json.dumps({**summary, "machine": machine()}))
    else:
        for key, value in summary.items():
            print(f"{key:>12}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
