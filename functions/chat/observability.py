"""Powertools Logger and Metrics, one of each per process, and the wrapper every handler
wears.

Structured JSON logs carry the connection id, route and request id on every line (the
route handlers append them per invocation); metrics go out as CloudWatch EMF lines,
flushed once per invocation. No Tracer: it costs ~250 ms of cold start (the X-Ray SDK)
for traces of two or three AWS calls that the logs already time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

SERVICE = "chat"
NAMESPACE = "ServerlessChat"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

Handler = Callable[[dict[str, Any], Any], Any]


def instrumented(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Logger context (``clear_state``), EMF flush and the local-run metrics guard."""

    def decorate(fn: Handler) -> Handler:
        inner = metrics.log_metrics(
            logger.inject_lambda_context(correlation_id_path=correlation_id_path,
                                         clear_state=True)(fn)
        )

        @functools.wraps(fn)
        def wrapper(event: dict[str, Any], context: Any) -> Any:
            try:
                return inner(event, context)
            finally:
                # With POWERTOOLS_METRICS_DISABLED, Powertools skips the flush but also
                # the clear: metrics would pile up for the life of the process (a local
                # gateway runs for hours) and be printed in bulk once 100 accumulate.
                if is_metrics_disabled():
                    metrics.clear_metrics()

        return wrapper

    return decorate
