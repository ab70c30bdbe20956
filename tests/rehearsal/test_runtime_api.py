"""The Runtime API's contract, with awslambdaric on Python 3.13 on the other side.

Each test starts real ``python -B -m awslambdaric <handler>`` processes against the
gateway's Runtime API (``local_gateway.runtime_api``) with a task root of its own, and
checks what a Lambda function would see and what Lambda would answer: the event and
context, an init error for a handler string that does not resolve, an error response for
a raised exception, a timeout, and nothing from this project's venv on the path.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from local_gateway.authorizers import error_message
from local_gateway.runtime import FunctionConfig, InvocationResult
from local_gateway.runtime_api import (
    PREFIX,
    Recipe,
    RuntimeApiFunction,
    RuntimeApiPool,
    lambda_environment,
)

HANDLERS = textwrap.dedent('''
    import importlib.util
    import os
    import sys
    import time

    def echo(event, context):
        import boto3
        return {
            "event": event,
            "request_id": context.aws_request_id,
            "arn": context.invoked_function_arn,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "function_name": context.function_name,
            "memory": context.memory_limit_in_mb,
            "environ": dict(os.environ),
            "path": sys.path,
            "cwd": os.getcwd(),
            "boto3": boto3.__file__,
            "pytest": importlib.util.find_spec("pytest") is not None,
            "version": list(sys.version_info[:2]),
        }

    def maybe(event, context):
        if event.get("fail"):
            raise ValueError("boom: " + event["fail"])
        return "fine"

    def slow(event, context):
        time.sleep(event["seconds"])
        return "late"
''')


def run(scenario: Callable[[RuntimeApiPool], Awaitable[Any]], runtime: Any, task: Path,
        *, timeout_s: float = 10.0) -> Any:
    """Run ``scenario`` with a pool whose functions' handlers are in ``task``."""

    def recipe(config: FunctionConfig) -> Recipe:
        environment = lambda_environment(
            name=config.name, handler=config.handler, memory_mb=config.memory_mb,
            task_root=task, runtime_dir=runtime.runtime_dir, layer_dirs=[],
            python=runtime.python)
        environment.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                            "GREETING": "hola"})
        return Recipe((str(runtime.python), "-B", "-m", "awslambdaric", config.handler),
                      task, environment)

    async def main() -> Any:
        pool = RuntimeApiPool(recipe)
        try:
            return await scenario(pool)
        finally:
            pool.close()
            await pool.api.close()

    # A thread of its own: the main thread may already have a running loop (Playwright's
    # sync API keeps one while the browser tests' session fixtures live).
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, asyncio.wait_for(main(), 120)).result()


def function(pool: RuntimeApiPool, handler: str, *, timeout_s: float = 10.0,
             name: str = "Fn") -> RuntimeApiFunction:
    return pool.add(FunctionConfig(name=name, handler=handler, environment={},
                                   memory_mb=512, timeout_s=timeout_s, max_concurrency=2))


@pytest.fixture
def task(tmp_path: Path) -> Path:
    (tmp_path / "handlers.py").write_text(HANDLERS)
    return tmp_path


def test_an_invocation_gets_the_event_the_context_and_only_lambdas_environment(
        runtime, task) -> None:
    async def scenario(pool: RuntimeApiPool) -> tuple[list[InvocationResult], Any]:
        fn = function(pool, "handlers.echo")
        first = await fn.invoke({"hello": "world"}, "req-1")
        second = await fn.invoke({"again": True}, "req-2")
        return [first, second], fn.counts

    (first, second), counts = run(scenario, runtime, task)
    assert first.ok and second.ok, first.detail + second.detail
    answer = first.response
    assert answer["event"] == {"hello": "world"}
    assert answer["request_id"] == "req-1"
    assert answer["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:Fn"
    assert 0 < answer["remaining_ms"] <= 10_000
    assert (answer["function_name"], answer["memory"]) == ("Fn", "512")
    assert answer["version"] == [3, 13]
    environ = answer["environ"]
    assert environ["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert environ["_HANDLER"] == "handlers.echo"
    assert environ["LAMBDA_TASK_ROOT"] == str(task) == answer["cwd"]
    assert environ["GREETING"] == "hola"
    assert environ["_X_AMZN_TRACE_ID"].startswith("Root=1-")  # awslambdaric sets it per call
    # Nothing of the developer's shell or this project's venv.
    assert not {"VIRTUAL_ENV", "HOME", "PYTEST_CURRENT_TEST"} & set(environ)
    assert answer["path"][0] == str(task)
    assert answer["boto3"].startswith(str(runtime.runtime_dir))
    assert answer["pytest"] is False
    # One cold start, reused: a /next before each invocation (and one waiting after).
    assert first.init_ms is not None and second.init_ms is None
    assert (counts.cold_starts, counts.response, counts.error) == (1, 2, 0)
    assert counts.next in (2, 3)


@pytest.mark.parametrize(("handler", "error_type"), [
    ("no_such_module.handler", "Runtime.ImportModuleError"),
    ("handlers.no_such_function", "Runtime.HandlerNotFound"),
    ("nodots", "Runtime.MalformedHandlerName"),
])
def test_a_handler_string_that_does_not_resolve_is_an_init_error(
        runtime, task, handler, error_type) -> None:
    async def scenario(pool: RuntimeApiPool) -> tuple[InvocationResult, InvocationResult, Any]:
        fn = function(pool, handler)
        first = await fn.invoke({}, "req-1")
        second = await fn.invoke({}, "req-2")  # a fresh environment fails the same way
        return first, second, fn.counts

    first, second, counts = run(scenario, runtime, task)
    for result in (first, second):
        assert result.error == "error"
        assert error_type in result.detail
    assert counts.init_error == 2 and counts.next == 0 and counts.response == 0
    assert counts.error_types[error_type] == 2


def test_a_raised_exception_is_lambdas_error_response_and_the_environment_stays_warm(
        runtime, task) -> None:
    async def scenario(pool: RuntimeApiPool) -> tuple[InvocationResult, InvocationResult, Any]:
        fn = function(pool, "handlers.maybe")
        failed = await fn.invoke({"fail": "on purpose"}, "req-1")
        fine = await fn.invoke({}, "req-2")
        return failed, fine, fn.counts

    failed, fine, counts = run(scenario, runtime, task)
    assert failed.error == "error"
    assert failed.detail.rstrip().endswith("ValueError: boom: on purpose")
    assert "handlers.py" in failed.detail  # the stack trace came along
    assert error_message(failed) == "boom: on purpose"  # as the authorizer emulation reads it
    assert fine.ok and fine.response == "fine"
    assert (counts.cold_starts, counts.error, counts.response) == (1, 1, 1)
    assert counts.error_types["ValueError"] == 1


def test_an_invocation_past_its_timeout_kills_its_environment(runtime, task) -> None:
    async def scenario(pool: RuntimeApiPool) -> tuple[InvocationResult, InvocationResult, Any]:
        fn = function(pool, "handlers.slow", timeout_s=1.0)
        late = await fn.invoke({"seconds": 30}, "req-1")
        quick = await fn.invoke({"seconds": 0}, "req-2")
        return late, quick, fn.counts

    late, quick, counts = run(scenario, runtime, task)
    assert late.error == "timeout" and "Task timed out after 1.00 seconds" in late.detail
    assert quick.ok and quick.response == "late"
    assert (counts.cold_starts, counts.timeouts) == (2, 1)


def test_the_api_refuses_a_response_for_another_request(runtime, task) -> None:
    async def scenario(pool: RuntimeApiPool) -> tuple[int, dict[str, Any]]:
        fn = function(pool, "handlers.echo")
        env = await pool.api.environment(fn)
        async with aiohttp.ClientSession() as session:
            url = f"http://127.0.0.1:{env.port}{PREFIX}/invocation/not-this-one/response"
            async with session.post(url, json={"x": 1}) as answer:
                return answer.status, await answer.json(content_type=None)

    status, body = run(scenario, runtime, task)
    assert status == 400 and body["errorType"] == "InvalidRequestID"
