"""Fixtures for the browser tests: Debian's Chromium through Playwright (sync API), and a
local gateway subprocess shared by the tests (or one of its own, for the restart test).
What the tests do with them (join, send, proxy a socket, a second client) is in helpers.py.

Chromium comes from apt (`.ci/run` installs it), not from `playwright install`: the
tests find it through ``CHROMIUM_PATH`` (default ``/usr/bin/chromium``). Without it they
skip, saying how to install it; with ``CI=true`` they fail instead, so CI cannot pass
without having driven a browser.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from local_gateway.testing import GatewayProcess

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "artifacts" / "browser"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# A shared, noisy 2-core machine: wait on conditions, and wait generously.
TIMEOUT_MS = 20_000
GATEWAY_START_S = 60.0
START_TRIES = 8  # restarting on the same port: attempts while it is still in use
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.browser)


def _unavailable(reason: str) -> None:
    how = (
        f"{reason}. Install Debian's Chromium (`sudo apt-get install -y chromium`) or point "
        "CHROMIUM_PATH at a Chromium binary; the Python side is `pip install -e '.[dev]'`."
    )
    if IN_CI:
        pytest.fail(f"CI=true and the browser tests cannot run: {how}", pytrace=False)
    pytest.skip(how)


# ---------------------------------------------------------------- the gateway


@contextmanager
def dead_port() -> Iterator[int]:
    """A port that refuses connections: bound (so nobody else gets it) but not listening."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@dataclass
class Gateway:
    """`python -m local_gateway` on a state dir, restartable on the same port.

    The first start passes ``--port 0``: the gateway binds a free port itself and prints
    it (no pick-close-rebind race with other processes). A restart asks for that port
    again and retries while it is still "in use" (a socket of the old process lingering).
    """

    state_dir: Path
    log_path: Path
    port: int = 0
    proc: GatewayProcess | None = field(default=None, repr=False)
    output: str = field(default="", repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ws_url(self) -> str:
        with urllib.request.urlopen(self.url + "config.json", timeout=5) as r:
            return json.load(r)["websocketUrl"]

    def start(self) -> None:
        for attempt in range(1, START_TRIES + 1):
            proc = GatewayProcess(port=self.port, state_dir=self.state_dir)
            try:
                proc.start(timeout=GATEWAY_START_S)
            except RuntimeError:
                in_use = self._says_in_use(proc)
                self._keep_output(proc)
                if self.port and in_use and attempt < START_TRIES:
                    time.sleep(0.5 * attempt)
                    continue
                raise RuntimeError(f"local gateway did not start:\n{self.log_tail()}") from None
            self.proc, self.port = proc, proc.port
            return

    @staticmethod
    def _says_in_use(proc: GatewayProcess) -> bool:
        # The process has exited; its output may still be on its way through the pipe.
        deadline = time.monotonic() + 2
        while "already in use" not in proc.output and time.monotonic() < deadline:
            time.sleep(0.05)
        return "already in use" in proc.output

    def _keep_output(self, proc: GatewayProcess) -> None:
        self.output += proc.output
        with self.log_path.open("a", errors="replace") as log:
            log.write(proc.output)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.stop(timeout=20)
        self._keep_output(self.proc)
        self.proc = None

    def log_tail(self, lines: int = 40) -> str:
        current = self.proc.output if self.proc else ""
        return "\n".join((self.output + current).splitlines()[-lines:]) or "(no output)"


@pytest.fixture(scope="session")
def gateway_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[], Gateway]]:
    started: list[Gateway] = []

    def make() -> Gateway:
        base = tmp_path_factory.mktemp("gateway")
        gw = Gateway(base / "state", base / "gateway.log")
        gw.state_dir.mkdir()
        gw.start()
        started.append(gw)
        return gw

    yield make
    for gw in started:
        gw.stop()


@pytest.fixture(scope="session")
def gateway(gateway_factory: Callable[[], Gateway]) -> Gateway:
    """One gateway shared by all the browser tests; each test uses its own room."""
    return gateway_factory()


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium not found at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session", autouse=True)
def _expect_timeout() -> None:
    try:
        from playwright.sync_api import expect
    except ImportError:
        return
    expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def new_page(browser) -> Iterator[Callable[..., object]]:
    """Open a page in a fresh browser context (its own storage: one person per context).

    Every page records the dialogs it raised (``page.dialogs``) and its uncaught errors
    (``page.errors``); a test fails if the page threw.
    """
    contexts = []
    pages = []

    def make(width: int = 1280, height: int = 800, locale: str | None = None) -> object:
        options = {"locale": locale} if locale else {}
        ctx = browser.new_context(viewport={"width": width, "height": height}, **options)
        ctx.set_default_timeout(TIMEOUT_MS)
        contexts.append(ctx)
        page = ctx.new_page()
        page.dialogs = []
        page.errors = []

        def on_dialog(d):
            page.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        pages.append(page)
        return page

    yield make
    errors = [e for p in pages for e in p.errors]
    for ctx in contexts:
        ctx.close()
    assert not errors, f"uncaught errors in the page: {errors}"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def room_name(prefix: str) -> str:
    """A fresh room per test: tests share a gateway but never each other's messages."""
    return f"{prefix}-{os.urandom(3).hex()}"


@pytest.fixture
def room(request: pytest.FixtureRequest) -> str:
    return room_name(request.node.name.removeprefix("test_").replace("_", "-")[:30])


# ---------------------------------------------------------------- both auth modes


class Chat:
    """How a test enters a room in one auth mode: ``enter(page, who, room)`` joins (open
    mode: the name ``who``; signed in: a fresh account ``who_<hex>``, signed up and
    confirmed), ``second_tab`` opens another tab of the same person, ``rejoin`` comes back
    after a reload, ``name`` is the username the others see."""

    PASSWORD = "Sup3r-secret!"

    def __init__(self, mode: str, gateway) -> None:
        self.mode = mode
        self.gateway = gateway
        self.url = f"http://127.0.0.1:{gateway.port}/"
        self._names: dict[str, str] = {}  # who -> the username they entered with

    def name(self, who: str) -> str:
        return self._names.get(who, who)

    def enter(self, page, who: str, room: str, *, name: str | None = None,
              expect_status: str = "Online") -> str:
        from tests.browser import helpers as h

        if self.mode == "open":
            name = name or who
            h.submit_join(page, self.gateway, name, room)
            h.expect_online(page, expect_status)
        else:
            if name is None:
                name = f"{who}_{os.urandom(3).hex()}"
                h.sign_up(page, self.url, name, self.PASSWORD)
            else:
                h.sign_in(page, self.url, name, self.PASSWORD)
            page.locator("input[name=room]").fill(room)
            page.locator("#join-form button[type=submit]").click()
            h.expect_online(page, expect_status)
        self._names[who] = name
        return name

    def second_tab(self, page, who: str, room: str) -> None:
        """Another tab (its own browser context) of the person ``who`` who entered before."""
        self.enter(page, who, room, name=self.name(who))

    def rejoin(self, page) -> None:
        from tests.browser import helpers as h

        page.locator("#join-form button[type=submit]").click()
        h.expect_online(page)


@pytest.fixture(scope="session")
def signin_gateway() -> Iterator[GatewayProcess]:
    proc = GatewayProcess(args=["--auth", "cognito"])
    proc.start(timeout=GATEWAY_START_S)
    yield proc
    proc.stop(timeout=20)


@pytest.fixture(params=["open", "cognito"])
def chat(request: pytest.FixtureRequest, gateway: Gateway) -> Chat:
    """The room, entered in each auth mode: open (a claimed name) and signed in (Cognito)."""
    if request.param == "open":
        return Chat("open", gateway)
    return Chat("cognito", request.getfixturevalue("signin_gateway"))
