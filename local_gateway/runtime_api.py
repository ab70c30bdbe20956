"""Lambda's Runtime API, served by the gateway, with awslambdaric processes behind it.

Lambda's managed Python runtime is a process that asks the Runtime API for work, one
invocation at a time, and posts back each answer: ``awslambdaric``, the runtime
interface client AWS publishes (the bootstrap of its Python runtimes and container
images). Here the gateway serves that API (aiohttp, on the gateway's event loop), and
each execution environment is ``python -B -m awslambdaric <handler>``, started with the
handler string, task root, path and environment a recipe gives it (``cdk_out`` builds
them from a synthesized template):

- ``GET /2018-06-01/runtime/invocation/next``: the event, with
  ``Lambda-Runtime-Aws-Request-Id``, ``-Deadline-Ms``, ``-Invoked-Function-Arn`` and
  ``-Trace-Id``; it waits until there is an invocation for that environment;
- ``POST /2018-06-01/runtime/invocation/{id}/response`` and ``…/{id}/error``: 202;
  a response over Lambda's 6 MB is refused with 413 and the invocation fails;
- ``POST /2018-06-01/runtime/init/error``: 202; the invocation that started the
  environment fails with the error type awslambdaric reports
  (``Runtime.ImportModuleError``, ``Runtime.HandlerNotFound``…), and awslambdaric exits.

Each environment listens on a port of its own (``AWS_LAMBDA_RUNTIME_API``), as each
Lambda sandbox has its own Runtime API, so a request says by its port whose it is. A
function keeps a pool of environments: an invocation takes an idle one, or starts one
(at most one cold start at a time per function, as ``runtime`` does, for the same
reason: two shared cores) up to ``max_concurrency``. An invocation past its timeout gets
its environment killed ("Task timed out"); an environment that exits while working is a
crash. ``-B``: nothing is written next to the code, as on Lambda's read-only task root.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from aiohttp import web

from local_gateway.logs import redact
from local_gateway.runtime import INIT_TIMEOUT_S, FunctionConfig, InvocationResult

log = logging.getLogger("local_gateway")

PREFIX = "/2018-06-01/runtime"
MAX_RESPONSE_BYTES = 6 * 1024 * 1024  # Lambda's synchronous response limit
ACCOUNT = "123456789012"
REGION = "us-east-1"
_OUTPUT_LINES = 400  # per function, for reports


class Recipe(NamedTuple):
    """How to start one of a function's environments (all but its Runtime API port)."""

    command: tuple[str, ...]  # e.g. (python, "-B", "-m", "awslambdaric", handler)
    cwd: Path  # the task root
    environment: Mapping[str, str]  # everything but AWS_LAMBDA_RUNTIME_API


@dataclass
class Counts:
    """What one function's environments asked of the Runtime API, and what came of it."""

    next: int = 0
    response: int = 0
    error: int = 0
    init_error: int = 0
    cold_starts: int = 0
    timeouts: int = 0
    crashes: int = 0
    error_logs: int = 0  # lines the function logged at ERROR (Powertools JSON, awslambdaric)
    init_ms: list[float] = field(default_factory=list)
    error_types: collections.Counter[str] = field(default_factory=collections.Counter)
    output: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_OUTPUT_LINES))


class _Invocation:
    def __init__(self, event: bytes, request_id: str, timeout_s: float, arn: str) -> None:
        self.event = event
        self.request_id = request_id
        self.deadline_ms = int((time.time() + timeout_s) * 1000)
        self.arn = arn
        self.trace_id = (f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
                         f"Parent={uuid.uuid4().hex[:16]};Sampled=0")
        self.outcome: asyncio.Future[tuple[str, Any]] = (
            asyncio.get_running_loop().create_future())

    def settle(self, kind: str, payload: Any) -> None:
        if not self.outcome.done():
            self.outcome.set_result((kind, payload))


class Environment:
    """One awslambdaric process and its own Runtime API listener."""

    def __init__(self, function: RuntimeApiFunction, sock: socket.socket,
                 site: web.SockSite) -> None:
        self.function = function
        self.sock = sock
        self.site = site
        self.port: int = sock.getsockname()[1]
        self.process: asyncio.subprocess.Process | None = None
        self.started = time.monotonic()
        self.init_ms: float | None = None
        loop = asyncio.get_running_loop()
        # Settled by the first /next ("ready"), /init/error, or the process's exit.
        self.ready: asyncio.Future[tuple[str, Any]] = loop.create_future()
        self.dead: asyncio.Future[None] = loop.create_future()
        self.assigned: asyncio.Queue[_Invocation] = asyncio.Queue(maxsize=1)
        self.current: _Invocation | None = None
        self.killed = False
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self, recipe: Recipe) -> None:
        env = {**recipe.environment, "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}"}
        if "AWS_LAMBDA_LOG_STREAM_NAME" in env:  # one stream per environment, as on Lambda
            day, _, _ = env["AWS_LAMBDA_LOG_STREAM_NAME"].rpartition("]")
            env["AWS_LAMBDA_LOG_STREAM_NAME"] = f"{day}]{uuid.uuid4().hex}"
        self.started = time.monotonic()
        self.process = await asyncio.create_subprocess_exec(
            *recipe.command, cwd=str(recipe.cwd), env=env,
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Its own session: Ctrl-C in the gateway's terminal is the gateway's to handle
            # (it still runs $disconnect handlers while it stops).
            start_new_session=True,
        )
        self.tasks = [asyncio.create_task(self._read_output()),
                       asyncio.create_task(self._watch())]

    async def _read_output(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        counts = self.function.counts
        while True:
            line = await self.process.stdout.readline()
            if not line:
                return
            text = redact(line.decode(errors="replace").rstrip("\n"))
            counts.output.append(text)
            if '"level":"ERROR"' in text or text.startswith("[ERROR]"):
                counts.error_logs += 1
            if self.function.verbose:
                log.info("%s | %s", self.function.name, text)

    async def _watch(self) -> None:
        assert self.process is not None
        code = await self.process.wait()
        detail = f"the environment exited (exit code {code})"
        if not self.ready.done():
            self.ready.set_result(("crash", detail))
        if self.current is not None:
            self.current.settle("crash", detail)
        if not self.dead.done():
            self.dead.set_result(None)
        self.function.forget(self)
        with contextlib.suppress(RuntimeError):  # the runner may be gone already
            await self.site.stop()
        self.sock.close()

    def kill(self) -> None:
        self.killed = True
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return not self.dead.done() and not self.killed


class RuntimeApiFunction:
    """A function's pool of awslambdaric environments (``runtime.LambdaFunction``'s
    interface: ``invoke``, ``close``, ``warm_environments``)."""

    def __init__(self, config: FunctionConfig, recipe: Recipe, api: RuntimeApi,
                 verbose: bool) -> None:
        self.config = config
        self.name = config.name
        self.recipe = recipe
        self.api = api
        self.verbose = verbose
        self.arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{config.name}"
        self.counts = Counts()
        self._envs: set[Environment] = set()
        self._idle: list[Environment] = []
        self._starting = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._closed = False

    @property
    def warm_environments(self) -> int:
        return len(self._envs)

    async def invoke(self, event: dict[str, Any], request_id: str) -> InvocationResult:
        started = time.monotonic()
        env, cold = await self._acquire()
        if env is None:
            return InvocationResult(error="crash", detail="gateway is shutting down")
        result = await self._run(env, cold, event, request_id)
        result.duration_ms = (time.monotonic() - started) * 1000
        if env.alive and result.error in (None, "error") and not self._closed:
            self._release(env)
        else:
            env.kill()
            self.forget(env)
        return result

    async def _acquire(self) -> tuple[Environment | None, bool]:
        while True:
            if self._closed:
                return None, False
            while self._idle:
                env = self._idle.pop()
                if env.alive:
                    return env, False
            if not self._starting and len(self._envs) < self.config.max_concurrency:
                self._starting += 1
                try:
                    env = await self.api.environment(self)
                    self._envs.add(env)
                    await env.start(self.recipe)
                except BaseException:
                    self._starting -= 1
                    self._wake()
                    raise
                self.counts.cold_starts += 1
                return env, True
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _release(self, env: Environment) -> None:
        self._idle.append(env)
        self._wake()

    def forget(self, env: Environment) -> None:
        self._envs.discard(env)
        with contextlib.suppress(ValueError):
            self._idle.remove(env)
        self._wake()

    async def _run(self, env: Environment, cold: bool, event: dict[str, Any],
                   request_id: str) -> InvocationResult:
        init_ms = None
        if cold:
            try:
                kind, payload = await asyncio.wait_for(asyncio.shield(env.ready),
                                                       INIT_TIMEOUT_S)
            except TimeoutError:
                kind, payload = "timeout", "init phase timed out"
            finally:
                self._starting -= 1
                self._wake()
            init_ms = env.init_ms
            if kind == "init_error":
                env.kill()  # awslambdaric exits after reporting it; Lambda starts afresh
                return InvocationResult(error="error", detail=payload, init_ms=init_ms)
            if kind == "timeout":
                return InvocationResult(error="timeout", detail=payload)
            if kind == "crash":
                self.counts.crashes += 1
                return InvocationResult(error="crash", detail=self._with_output(payload))
        invocation = _Invocation(json.dumps(event).encode(), request_id,
                                 self.config.timeout_s, self.arn)
        env.current = invocation
        env.assigned.put_nowait(invocation)
        try:
            kind, payload = await asyncio.wait_for(asyncio.shield(invocation.outcome),
                                                   self.config.timeout_s)
        except TimeoutError:
            self.counts.timeouts += 1
            env.kill()
            return InvocationResult(
                error="timeout", init_ms=init_ms,
                detail=f"Task timed out after {self.config.timeout_s:.2f} seconds")
        finally:
            env.current = None
        if kind == "ok":
            return InvocationResult(response=payload, init_ms=init_ms)
        if kind == "crash":
            self.counts.crashes += 1
            return InvocationResult(error="crash", detail=self._with_output(payload),
                                    init_ms=init_ms)
        return InvocationResult(error="error", detail=payload, init_ms=init_ms)

    def _with_output(self, detail: str) -> str:
        tail = list(self.counts.output)[-15:]
        return detail + ("; its last output:\n" + "\n".join(tail) if tail else "")

    def close(self) -> None:
        self._closed = True
        for env in list(self._envs):
            env.kill()
        self._wake()
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)


def error_detail(payload: Mapping[str, Any]) -> str:
    """A Lambda error response as the gateway's log and readers want it: the stack, then
    ``Type: message`` on the last line (what ``authorizers.error_message`` reads)."""
    stack = payload.get("stackTrace") or []
    lines = "".join(s if s.endswith("\n") else s + "\n" for s in stack if isinstance(s, str))
    head = "Traceback (most recent call last):\n" if lines else ""
    return f"{head}{lines}{payload.get('errorType', 'Error')}: {payload.get('errorMessage', '')}"


class RuntimeApi:
    """The Runtime API's HTTP side: one aiohttp application, a listener per environment."""

    def __init__(self) -> None:
        self.app = web.Application(client_max_size=MAX_RESPONSE_BYTES + 1024)
        self.app.router.add_get(f"{PREFIX}/invocation/next", self._next)
        self.app.router.add_post(f"{PREFIX}/invocation/{{id}}/response", self._response)
        self.app.router.add_post(f"{PREFIX}/invocation/{{id}}/error", self._error)
        self.app.router.add_post(f"{PREFIX}/init/error", self._init_error)
        self._runner: web.AppRunner | None = None
        self._lock = asyncio.Lock()
        self._by_port: dict[int, Environment] = {}
        self._closing: asyncio.Future[None] | None = None

    async def environment(self, function: RuntimeApiFunction) -> Environment:
        """A new environment's listener (not started)."""
        async with self._lock:
            if self._runner is None:
                self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False,
                                             shutdown_timeout=0.5)
                await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        sock.setblocking(False)
        site = web.SockSite(self._runner, sock)
        await site.start()
        env = Environment(function, sock, site)
        self._by_port[env.port] = env
        return env

    async def close(self) -> None:
        """Kill every environment, wait for their processes, stop the listeners."""
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        tasks = []
        for env in self._by_port.values():
            env.kill()
            tasks += env.tasks
        if tasks:  # the processes' exits, so that their pipes close on this loop
            await asyncio.wait(tasks, timeout=5)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _env(self, request: web.Request) -> Environment:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        env = self._by_port.get(sockname[1]) if sockname else None
        if env is None:
            raise web.HTTPNotFound(text="no such execution environment")
        return env

    async def _next(self, request: web.Request) -> web.StreamResponse:
        env = self._env(request)
        counts = env.function.counts
        counts.next += 1
        if not env.ready.done():
            env.init_ms = (time.monotonic() - env.started) * 1000
            counts.init_ms.append(env.init_ms)
            env.ready.set_result(("ready", None))
        getter = asyncio.ensure_future(env.assigned.get())
        await asyncio.wait({getter, env.dead}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            getter.cancel()
            raise web.HTTPGone(text="the environment is gone")
        invocation = getter.result()
        return web.Response(body=invocation.event, content_type="application/json", headers={
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.arn,
            "Lambda-Runtime-Trace-Id": invocation.trace_id,
        })

    def _current(self, request: web.Request) -> tuple[Environment, _Invocation]:
        env = self._env(request)
        invocation = env.current
        if invocation is None or invocation.request_id != request.match_info["id"]:
            raise web.HTTPBadRequest(
                text=json.dumps({"errorMessage": "Invalid request ID",
                                 "errorType": "InvalidRequestID"}),
                content_type="application/json")
        return env, invocation

    async def _response(self, request: web.Request) -> web.Response:
        env, invocation = self._current(request)
        body = await request.read()
        if len(body) > MAX_RESPONSE_BYTES:
            env.function.counts.error_types["Function.ResponseSizeTooLarge"] += 1
            invocation.settle("error", "Function.ResponseSizeTooLarge: Response payload size "
                              f"({len(body)} bytes) exceeded maximum allowed payload size "
                              f"({MAX_RESPONSE_BYTES} bytes).")
            return web.json_response({"errorMessage": "payload too large",
                                      "errorType": "RequestEntityTooLarge"}, status=413)
        env.function.counts.response += 1
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError:
            payload = body.decode(errors="replace")
        invocation.settle("ok", payload)
        return web.json_response({"status": "OK"}, status=202)

    async def _error(self, request: web.Request) -> web.Response:
        env, invocation = self._current(request)
        payload = await self._error_payload(request)
        counts = env.function.counts
        counts.error += 1
        counts.error_types[str(payload.get("errorType"))] += 1
        invocation.settle("error", error_detail(payload))
        return web.json_response({"status": "OK"}, status=202)

    async def _init_error(self, request: web.Request) -> web.Response:
        env = self._env(request)
        payload = await self._error_payload(request)
        counts = env.function.counts
        counts.init_error += 1
        counts.error_types[str(payload.get("errorType"))] += 1
        if not env.ready.done():
            env.init_ms = (time.monotonic() - env.started) * 1000
            env.ready.set_result(("init_error", error_detail(payload)))
        return web.json_response({"status": "OK"}, status=202)

    @staticmethod
    async def _error_payload(request: web.Request) -> dict[str, Any]:
        body = await request.read()
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {}
        if not isinstance(payload, dict):
            payload = {}
        header = request.headers.get("Lambda-Runtime-Function-Error-Type")
        if header and not payload.get("errorType"):
            payload["errorType"] = header
        return payload


class RuntimeApiPool:
    """``runtime.FunctionPool``'s interface, for ``LambdaService``: each function it is
    given runs under awslambdaric with the recipe ``recipes(name)`` returns."""

    def __init__(self, recipes: Callable[[FunctionConfig], Recipe], *,
                 verbose: bool = False) -> None:
        self.api = RuntimeApi()
        self._recipes = recipes
        self._verbose = verbose
        self._functions: dict[str, RuntimeApiFunction] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, config: FunctionConfig) -> RuntimeApiFunction:
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        function = RuntimeApiFunction(config, self._recipes(config), self.api, self._verbose)
        self._functions[config.name] = function
        return function

    def get(self, name: str) -> RuntimeApiFunction:
        return self._functions[name]

    @property
    def functions(self) -> dict[str, RuntimeApiFunction]:
        return dict(self._functions)

    def close(self) -> None:
        """Kill every environment and stop the listeners (from any thread)."""
        for function in self._functions.values():
            function.close()
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(self.api.close())
        else:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(self.api.close(), loop).result(timeout=10)


def lambda_environment(*, name: str, handler: str, memory_mb: int, task_root: Path,
                       runtime_dir: Path, layer_dirs: list[Path], python: Path,
                       region: str = REGION) -> dict[str, str]:
    """What Lambda's Python 3.13 runtime sets for a function besides its own variables
    (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
    with this machine's folders for /var/task, /opt/python and /var/runtime."""
    day = time.strftime("%Y/%m/%d", time.gmtime())
    path = [str(d / "python") for d in layer_dirs] + [str(runtime_dir)]
    return {
        "AWS_LAMBDA_FUNCTION_NAME": name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
        "AWS_LAMBDA_LOG_STREAM_NAME": f"{day}/[$LATEST]{uuid.uuid4().hex}",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "LAMBDA_TASK_ROOT": str(task_root),
        "LAMBDA_RUNTIME_DIR": str(runtime_dir),
        "_HANDLER": handler,
        # Lambda: /var/task first (here the working directory, which ``-m`` puts first),
        # then /opt/python (each layer's python/ folder, in the template's order), then
        # the runtime's own packages.
        "PYTHONPATH": os.pathsep.join(path),
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin",
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
    }
