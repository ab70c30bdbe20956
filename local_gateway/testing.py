"""Start a local gateway from tests: in a thread of the test process, or as a subprocess.

``GatewayThread`` is the quick one (no interpreter start, a real port, any routes)::

    with GatewayThread(Settings(port=0, state_dir=None)) as gw:
        websockets.sync.client.connect(gw.websocket_url + "?username=alice")

``GatewayProcess`` runs exactly what ``make dev`` runs (``python -m local_gateway``), for
tests of the command itself: signals, restarts on the same port, the printed banner.
Both pick a free port with ``port=0`` and report the real one.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from local_gateway.server import REPO_ROOT, Gateway, Settings

_PAGE_LINE = re.compile(r"Page:\s+http://127\.0\.0\.1:(\d+)/")


class GatewayThread:
    """A ``Gateway`` on its own event loop in a daemon thread; a context manager."""

    def __init__(self, settings: Settings | None = None, **gateway_kwargs: Any) -> None:
        self.gateway = Gateway(settings or Settings(port=0, state_dir=None), **gateway_kwargs)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name="local-gateway")

    def start(self) -> GatewayThread:
        self._thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.gateway.start(), self._loop).result(timeout=30)
        except BaseException:
            self.stop()  # e.g. the port is taken: release what did start
            raise
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            asyncio.run_coroutine_threadsafe(self.gateway.stop(), self._loop).result(timeout=30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the gateway's loop (e.g. ``gw.call(gw.gateway.save())``)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=timeout)

    def __enter__(self) -> GatewayThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self.gateway.port

    @property
    def http_url(self) -> str:
        return self.gateway.http_url

    @property
    def websocket_url(self) -> str:
        return self.gateway.websocket_url


class GatewayProcess:
    """``python -m local_gateway`` in a subprocess; output collected in ``output``."""

    def __init__(self, *, port: int = 0, state_dir: Path | None = None,
                 args: Sequence[str] = (), env: dict[str, str] | None = None) -> None:
        self.requested_port = port
        self.state_dir = state_dir
        self.args = list(args)
        self.env = env
        self.port = 0
        self.lines: list[str] = []
        self.process: subprocess.Popen[str] | None = None
        self.startup_s = 0.0
        self._ready = threading.Event()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def websocket_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/local"

    def start(self, timeout: float = 30) -> GatewayProcess:
        command = [sys.executable, "-m", "local_gateway", "--port", str(self.requested_port)]
        command += ["--no-state"] if self.state_dir is None else [
            "--state-dir", str(self.state_dir)]
        command += self.args
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(self.env or {})}
        self.lines, self.port = [], 0
        self._ready.clear()
        started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            command, cwd=REPO_ROOT, env=env, text=True,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        threading.Thread(target=self._pump, args=(self.process,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"local gateway did not start:\n{self.output}")
        self.startup_s = time.monotonic() - started
        return self

    def _pump(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            self.lines.append(line)
            match = _PAGE_LINE.search(line)
            if match:
                self.port = int(match.group(1))
                self._ready.set()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int | None:
        """Send ``sig`` and wait; returns the exit code (kills after ``timeout``)."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> GatewayProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
