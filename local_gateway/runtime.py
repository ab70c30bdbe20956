"""Lambda execution environments on a laptop: one process per environment.

Why processes and not a thread pool: on AWS each function runs in its own execution
environments, each a separate process with that function's environment variables and
its own module-level state (boto3 clients, caches), created on first use (a cold start)
and reused while warm. One process handles one invocation at a time; concurrency comes
from more environments. Running the handlers in threads of the gateway would share one
``os.environ`` and one set of module globals between functions, and a handler that
hangs could not be stopped. Here:

- each function (a route) keeps a list of warm environments and starts a new one when
  none is idle, up to ``max_concurrency``; a slow invocation only occupies its own
  process, so other connections and routes carry on;
- a function starts one new environment at a time: an invocation that finds none idle
  while another is already cold-starting takes whichever is free first, the new one or
  a warm one finishing its invocation. On AWS a burst starts many environments at once
  on other machines; here each cold start (imports, boto3 clients: ~0.5 s of CPU) is
  taken from the same two cores that are running the burst, so starting ten at once
  made a burst slower, which made more invocations overlap, which started more
  environments. Handlers cannot tell: they still see cold and warm environments, one
  invocation per process at a time, up to ``max_concurrency`` of them;
- an environment's ``os.environ`` is built from nothing, as Lambda builds it: the
  function's own variables exactly as the CDK app sets them (``chat.functions``), what
  the Lambda runtime adds (``AWS_LAMBDA_FUNCTION_NAME``…), local endpoints and dummy
  credentials, and from the developer's shell only ``INHERITED`` (``PATH``, locale,
  ``HOME``…). A ``CONNECTIONS_TABLE`` or ``AWS_PROFILE`` exported in the shell never
  reaches a function, so nothing works locally that the deployed stack would not set;
- an invocation that runs past the timeout gets its environment killed, as Lambda does
  ("Task timed out"), and the next invocation cold-starts a fresh one.

Processes come from a ``forkserver`` that has already imported boto3: a fork of a clean,
single-threaded server (never of the gateway with its event loop and moto threads) that
skips boto3's ~140 ms import, so a cold start costs about what importing the handler
module costs, as on Lambda with boto3 in the runtime.

The other way to run a function is Lambda's own runtime interface client
(``runtime_api``: awslambdaric on Python 3.13 behind a Runtime API), which serves a
synthesized app (``--from-cdk-out``) and ``make rehearse``. ``make dev`` and the gateway's
tests keep these processes. Measured in one run on this 2-core machine
(``python -m local_gateway.rehearse --measure 50``, three runs): a ``new_message`` to 50
members costs the same once warm (median end to end 33-38 ms here, 35-40 ms under
awslambdaric), but a cold start is about four times longer there (init 38-44 ms here,
forked from a server that has imported boto3; 145-164 ms for a fresh interpreter that
imports boto3 and awslambdaric; first invocation 124-154 ms against 220-307 ms), and the
gateway's tests run handlers of their own from the tests package on the venv's Python
(``extra_sys_path``), which a runtime that only sees the code asset cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import threading
import time
import traceback
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import popen_forkserver, spawn
from multiprocessing.connection import Connection as Pipe
from typing import Any

# Lambda's own limit on the init phase (importing the handler module).
INIT_TIMEOUT_S = 10.0

# The only variables an environment keeps from the shell that started the gateway: what
# a process needs to run at all, none of which configures the chat. (Lambda sets PATH,
# LANG and TZ itself; HOME and TMPDIR keep Python and pip caches where the developer
# expects them.)
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class FunctionConfig:
    """One execution environment's recipe: which handler, with which environment and limits."""

    name: str
    handler: str  # "package.module.function"
    environment: dict[str, str]
    memory_mb: int = 256
    timeout_s: float = 10.0
    max_concurrency: int = 10
    extra_sys_path: tuple[str, ...] = ()
    quiet: bool = True  # hide Powertools' "No application metrics" warning on every call


@dataclass
class InvocationResult:
    """What happened to one invocation; ``error`` is set for raise/timeout/crash."""

    response: Any = None
    error: str | None = None  # "error" | "timeout" | "crash"
    detail: str = ""  # the traceback or reason, for the gateway's log
    duration_ms: float = 0.0
    init_ms: float | None = None  # set on a cold start

    @property
    def ok(self) -> bool:
        return self.error is None


class LambdaContext:
    """The subset of the Lambda context object handlers and Powertools use."""

    def __init__(self, config: FunctionConfig, request_id: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.function_name = config.name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = str(config.memory_mb)  # a str on AWS too
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{config.name}"
        )
        self.log_group_name = f"/aws/lambda/{config.name}"
        self.log_stream_name = "local"
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _worker_main(conn: Pipe, config: FunctionConfig) -> None:
    """Body of one execution environment: init once, then serve invocations forever."""
    # Ctrl-C reaches the whole process group; the gateway decides when environments
    # stop (it still runs $disconnect handlers while shutting down).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What the handler prints or logs reaches the terminal with sign-in tokens redacted.
    from local_gateway.logs import redact_process_output
    redact_process_output()
    kept = {key: os.environ[key] for key in INHERITED if key in os.environ}
    os.environ.clear()
    os.environ.update(kept)
    os.environ.update(config.environment)
    sys.path[:0] = list(config.extra_sys_path)
    if config.quiet:
        # Metrics are disabled locally, so every invocation would warn about it.
        warnings.filterwarnings("ignore", message="No application metrics to publish")

    started = time.monotonic()
    handler = None
    init_error = ""
    try:
        module_name, _, function_name = config.handler.rpartition(".")
        handler = getattr(importlib.import_module(module_name), function_name)
    except BaseException:
        init_error = traceback.format_exc()
    init_ms: float | None = (time.monotonic() - started) * 1000
    # What init built (modules, boto3's models and clients) lives as long as the
    # process: keep it out of the cyclic collector's way, which otherwise walks it again
    # and again while handlers allocate (invisible to handlers; only the CPU changes).
    gc.freeze()

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        event, request_id, timeout_s = message
        deadline = time.time() + timeout_s
        conn.send(("started", init_ms))
        init_ms = None
        if handler is None:
            # Lambda reports Runtime.ImportModuleError on every invocation.
            conn.send(("error", init_error))
            continue
        try:
            response = handler(event, LambdaContext(config, request_id, deadline))
            conn.send(("ok", response))
        except BaseException:
            conn.send(("error", traceback.format_exc()))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()


_mp_context_lock = threading.Lock()
_mp_context: Any = None


def warm_up() -> None:
    """Start the forkserver (which imports boto3) now, so the first cold start is quick."""
    import multiprocessing.forkserver

    _process_context()
    with contextlib.suppress(Exception):
        multiprocessing.forkserver.ensure_running()


def _process_context() -> Any:
    global _mp_context
    with _mp_context_lock:
        if _mp_context is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(
                ["boto3", "botocore.session", "local_gateway.runtime"]
            )
            _mp_context = ctx
        return _mp_context


class _Popen(popen_forkserver.Popen):
    """The stdlib's forkserver Popen, minus re-importing the parent's ``__main__``.

    multiprocessing re-runs the parent's main module in every child (pytest's entry
    script, or ``local_gateway.__main__`` with aiohttp): work a Lambda environment never
    does, and a cold start it would add. The stdlib's ``_launch`` runs unchanged, with
    the main-module entries left out of the data it sends to the child.
    """

    _patch_lock = threading.Lock()

    def _launch(self, process_obj: Any) -> None:
        original = spawn.get_preparation_data

        def without_main(name: str) -> dict[str, Any]:
            data = original(name)
            data.pop("init_main_from_path", None)
            data.pop("init_main_from_name", None)
            return data

        with self._patch_lock:
            spawn.get_preparation_data = without_main
            try:
                super()._launch(process_obj)
            finally:
                spawn.get_preparation_data = original


class _EnvironmentProcess(multiprocessing.context.ForkServerProcess):  # type: ignore[name-defined]
    @staticmethod
    def _Popen(process_obj: Any) -> _Popen:
        return _Popen(process_obj)


class _Environment:
    def __init__(self, config: FunctionConfig) -> None:
        ctx = _process_context()
        self.conn, child = ctx.Pipe()
        self.process = _EnvironmentProcess(
            target=_worker_main, args=(child, config), name=f"lambda-{config.name}", daemon=True
        )
        self.process.start()
        child.close()

    def kill(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=1)
            self.conn.close()



@dataclass
class LambdaFunction:
    """A function with its pool of warm environments."""

    config: FunctionConfig
    _executor: ThreadPoolExecutor
    _idle: list[_Environment] = field(default_factory=list)
    _busy: set[_Environment] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _freed: threading.Condition = field(init=False)
    _starting: int = 0  # environments started whose init has not finished
    _closed: bool = False
    _semaphore: asyncio.Semaphore | None = None

    def __post_init__(self) -> None:
        self._freed = threading.Condition(self._lock)

    async def invoke(self, event: dict[str, Any], request_id: str) -> InvocationResult:
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.config.max_concurrency)
        async with self._semaphore:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, self._invoke_blocking, event, request_id
            )

    def _invoke_blocking(self, event: dict[str, Any], request_id: str) -> InvocationResult:
        started = time.monotonic()
        with self._lock:
            while True:
                if self._closed:
                    return InvocationResult(error="crash", detail="gateway is shutting down")
                if self._idle:
                    env, cold = self._idle.pop(), False
                    break
                if not self._starting:
                    # No environment free and none on its way: start one (see the
                    # module docstring for why only one at a time).
                    self._starting += 1
                    env, cold = None, True
                    break
                self._freed.wait()
            if env is not None:
                self._busy.add(env)
        if env is None:
            try:
                env = _Environment(self.config)
            except Exception:
                self._init_done()
                return InvocationResult(error="crash", detail=traceback.format_exc())
            with self._lock:
                self._busy.add(env)
        result = self._run(env, event, request_id, cold)
        result.duration_ms = (time.monotonic() - started) * 1000
        with self._lock:
            self._busy.discard(env)
            if result.error in (None, "error") and not self._closed:
                self._idle.append(env)  # a raising handler leaves a warm environment
                self._freed.notify()
            else:
                env.kill()
        return result

    def _init_done(self) -> None:
        with self._lock:
            self._starting -= 1
            self._freed.notify()

    def _run(
        self, env: _Environment, event: dict[str, Any], request_id: str, cold: bool = False
    ) -> InvocationResult:
        timeout = self.config.timeout_s
        try:
            try:
                env.conn.send((event, request_id, timeout))
                if not env.conn.poll(INIT_TIMEOUT_S):
                    return InvocationResult(error="timeout", detail="init phase timed out")
                _, init_ms = env.conn.recv()
            finally:
                if cold:
                    self._init_done()
            if not env.conn.poll(timeout):
                return InvocationResult(
                    error="timeout", detail=f"Task timed out after {timeout:.2f} seconds",
                    init_ms=init_ms,
                )
            kind, payload = env.conn.recv()
        except (EOFError, OSError) as exc:
            code = env.process.exitcode
            return InvocationResult(
                error="crash", detail=f"environment exited (exit code {code}): {exc!r}"
            )
        if kind == "ok":
            return InvocationResult(response=payload, init_ms=init_ms)
        return InvocationResult(error="error", detail=payload, init_ms=init_ms)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
            busy = list(self._busy)
            self._freed.notify_all()
        # Like Lambda reclaiming environments: no goodbye. They hold nothing to save (the
        # handlers' state is in DynamoDB), and waiting for each would slow every restart.
        for env in idle + busy:
            env.kill()

    @property
    def warm_environments(self) -> int:
        with self._lock:
            return len(self._idle) + len(self._busy)


class FunctionPool:
    """All functions of the gateway, created lazily by name."""

    def __init__(self) -> None:
        # Threads only wait on pipes; the work happens in the environments' processes.
        self._executor = ThreadPoolExecutor(max_workers=128, thread_name_prefix="invoke")
        self._functions: dict[str, LambdaFunction] = {}

    def add(self, config: FunctionConfig) -> LambdaFunction:
        function = LambdaFunction(config, self._executor)
        self._functions[config.name] = function
        return function

    def get(self, name: str) -> LambdaFunction:
        return self._functions[name]

    def close(self) -> None:
        for function in self._functions.values():
            function.close()
        self._executor.shutdown(wait=False, cancel_futures=True)
