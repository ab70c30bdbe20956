"""Configuration, read from the environment in one place.

The CDK app and the local gateway set the same variables (see ``chat.routes.
function_environment``); nothing in the code asks "am I local?". Service endpoints are
redirected with boto3's own ``AWS_ENDPOINT_URL_<SERVICE>`` variables, not settings here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

from chat.routes import CALLBACK_URL_ENV
from chat.tables import CONNECTIONS, MESSAGES


@dataclass(frozen=True)
class Settings:
    connections_table: str
    messages_table: str
    # The stage's callback URL (``https://{api}.execute-api.{region}.amazonaws.com/{stage}``);
    # empty means "derive it from the event" (see chat.handlers).
    callback_url: str
    region: str
    rate_limit_messages: int  # new_message frames allowed per window and connection
    rate_limit_window_s: int
    fanout_concurrency: int  # parallel posts to @connections (and the HTTP pool size)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings; tests that change the environment call ``cache_clear()``."""
    return Settings(
        connections_table=os.environ.get(CONNECTIONS.env_var, ""),
        messages_table=os.environ.get(MESSAGES.env_var, ""),
        callback_url=os.environ.get(CALLBACK_URL_ENV, "").rstrip("/"),
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        rate_limit_messages=_int("RATE_LIMIT_MESSAGES", 10),
        rate_limit_window_s=_int("RATE_LIMIT_WINDOW_SECONDS", 10),
        fanout_concurrency=_int("FANOUT_CONCURRENCY", 16),
    )
