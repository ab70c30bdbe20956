"""Powertools Logger and Metrics, one of each per process, and the wrapper every handler
wears.

Structured JSON logs carry the connection id, route and request id on every line (the
route handlers append them per invocation); metrics go out as CloudWatch EMF lines,
flushed once per invocation. No Tracer: it costs ~250 ms of cold start (the X-Ray SDK)
for traces of two or three AWS calls that the logs already time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics

SERVICE = "chat"
NAMESPACE = "ServerlessChat"

# Metrics the stack's dashboard and alarms read (``infra/monitoring.py``), by name.
CONNECTIONS_OPENED = "Connections"
MESSAGES_STORED = "MessagesStored"
# Posts to connections, by how they ended (``chat.adapters.management_api``).
POSTS_SENT = "PostsSent"
POSTS_GONE = "PostsGone"  # 410: the connection is closed
POSTS_THROTTLED = "PostsThrottled"  # 429 after the retries
POSTS_TIMED_OUT = "PostsTimedOut"  # no answer in time, or the deadline came first
POSTS_FAILED = "PostsFailed"  # anything else; also by dimension ``reason``

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

Handler = Callable[[dict[str, Any], Any], Any]


def instrumented(correlation_id_path: str | None = None) -> Callable[[Handler], Handler]:
    """Logger context (``clear_state``), EMF flush, and no metrics left behind."""

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
                # After a flush there is nothing left, so clearing always is the same
                # as clearing when disabled, with public API only.
                metrics.clear_metrics()

        return wrapper

    return decorate


def count_by(name: str, dimension: str, counts: Mapping[str, int]) -> None:
    """Emit ``name`` once per value of ``dimension`` (``{value: count}``), now.

    ``metrics``' dimensions apply to every metric of its EMF line, so a metric by a
    dimension of its own goes out on a line of its own: an ``EphemeralMetrics`` (its
    state is not shared with ``metrics``) flushed at once, which Powertools skips, as
    any flush, when metrics are disabled. Keep the values few: each is a metric.
    """
    for value, count in counts.items():
        line = EphemeralMetrics(service=SERVICE, namespace=NAMESPACE)
        line.add_dimension(name=dimension, value=value)
        line.add_metric(name=name, unit="Count", value=count)
        line.flush_metrics()
