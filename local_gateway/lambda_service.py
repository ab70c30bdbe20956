"""The Lambda service, locally: the declared functions, their environments, invocations.

Each entry of ``chat.functions`` becomes a ``runtime.LambdaFunction`` whose environment
is the one the CDK app gives it (``Function.environment``) plus what the Lambda runtime
sets and the local endpoints. Every invocation is logged as one line (route or trigger,
connection, status, duration, cold start), the gateway's console view of CloudWatch.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chat.functions import Function
from local_gateway.logs import redact
from local_gateway.runtime import FunctionConfig, FunctionPool, InvocationResult, LambdaFunction
from local_gateway.settings import GatewaySettings

log = logging.getLogger("local_gateway")


@dataclass
class Stats:
    invocations: int = 0  # finished
    errors: int = 0
    by_function: Counter[str] = field(default_factory=Counter)  # started, per function name


class LambdaService:
    """Runs the declared functions; ``invoke`` is what a trigger calls."""

    def __init__(
        self,
        declared: Iterable[Function],
        settings: GatewaySettings,
        *,
        environment_values: Mapping[str, str],
        runtime_environment: Mapping[str, str],
        pool: Any = None,
    ) -> None:
        self.settings = settings
        self.declared: dict[str, Function] = {fn.name: fn for fn in declared}
        self.stats = Stats()
        # ``pool``: another way to run the functions with FunctionPool's interface
        # (``runtime_api.RuntimeApiPool``: awslambdaric, for --from-cdk-out).
        self._pool = pool if pool is not None else FunctionPool()
        self._functions: dict[str, LambdaFunction] = {}
        for fn in self.declared.values():
            environment = {
                **runtime_environment,
                # What the Lambda runtime sets.
                "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{fn.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": "local",
                # Last, so the function's own settings (exactly the CDK app's) win.
                **fn.environment(environment_values),
            }
            self._functions[fn.name] = self._pool.add(FunctionConfig(
                name=fn.name,
                handler=fn.handler,
                environment=environment,
                memory_mb=fn.memory_mb,
                timeout_s=settings.handler_timeout_s or fn.timeout_s,
                max_concurrency=settings.max_concurrency,
                extra_sys_path=settings.extra_sys_path,
                quiet=not settings.verbose,
            ))

    def function(self, name: str) -> LambdaFunction:
        return self._functions[name]

    async def invoke(
        self, name: str, event: dict[str, Any], *, label: str, subject: str,
        expected_error: str | None = None,
    ) -> InvocationResult:
        """Invoke a function and log one line: ``label`` (the route key, say) and
        ``subject`` (the connection id, say) say what it was for. A raised error whose
        message is ``expected_error`` (an authorizer's ``Unauthorized``) is an answer,
        not a failure: no traceback is logged for it."""
        function = self._functions[name]
        self.stats.by_function[name] += 1
        if self.settings.verbose:
            log.info("event %s %s", label, redact(json.dumps(event, ensure_ascii=False)))
        result = await function.invoke(event, str(uuid.uuid4()))
        self.stats.invocations += 1
        if result.ok:
            response = result.response
            status = str(response.get("statusCode", "-")) if isinstance(response, dict) else "-"
        else:
            self.stats.errors += 1
            status = result.error.upper() if result.error else "ERROR"
        extra = f"cold start {result.init_ms:.0f} ms" if result.init_ms is not None else ""
        log_line(label, subject, status, result.duration_ms, extra)
        if not result.ok and not (expected_error and result.error == "error"
                                  and result.detail.rstrip().endswith(": " + expected_error)):
            log.error("%s (%s) failed:\n%s", name, label, result.detail.rstrip())
        elif self.settings.verbose:
            log.info("response %s %s", label, json.dumps(result.response, default=str))
        return result

    def close(self) -> None:
        self._pool.close()


def log_line(label: str, subject: str, status: str, ms: float, extra: str = "") -> None:
    log.info("%-12s %s  %-8s %7.1f ms%s", label, subject, status, ms,
             f"  ({extra})" if extra else "")


def timed_ms(started: float) -> float:
    return (time.monotonic() - started) * 1000
