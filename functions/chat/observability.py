"""Powertools Logger and Metrics, one of each per process.

Structured JSON logs carry the connection id, route and request id on every line (the
handlers append them per invocation); metrics go out as CloudWatch EMF lines, flushed
once per invocation. No Tracer: it costs ~250 ms of cold start (the X-Ray SDK) for
traces of two or three AWS calls that the logs already time.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

SERVICE = "chat"
NAMESPACE = "ServerlessChat"

logger = Logger(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)
