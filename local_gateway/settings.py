"""What the local gateway can be told; every default is API Gateway's or the CDK app's."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chat.config import AUTH
from chat.config import SETTINGS as FUNCTION_SETTINGS

REPO_ROOT = Path(__file__).resolve().parent.parent

# infra/settings.py's defaults for the stage's throttle, for when cdk.json is not there
# (an installed package). infra itself is not imported: it needs the CDK libraries.
_STACK_DEFAULTS: dict[str, Any] = {"throttle_rate_limit": 50, "throttle_burst_limit": 100}


def stack_context(key: str) -> Any:
    """A stack setting as ``cdk deploy`` would read it: ``cdk.json``'s context, else the
    default ``infra/settings.py`` has for it."""
    try:
        context = json.loads((REPO_ROOT / "cdk.json").read_text(encoding="utf-8"))["context"]
        value = context[key]
    except (OSError, ValueError, KeyError, TypeError):
        return _STACK_DEFAULTS[key]
    return _STACK_DEFAULTS[key] if value is None else value


def default_function_settings() -> dict[str, str]:
    """``chat.config.SETTINGS`` that functions read, at their defaults, by variable."""
    return {s.env_var: str(s.default) for s in FUNCTION_SETTINGS if s.env_var}


def default_trigger_settings() -> dict[str, int]:
    """``chat.config.SETTINGS`` of triggers (no variable), at their defaults, by key."""
    return {s.key: s.default for s in FUNCTION_SETTINGS if not s.env_var}


@dataclass
class GatewaySettings:
    """The local stage, its functions and its state, with the deployed values as defaults."""

    host: str = "127.0.0.1"
    port: int = 3000  # 0: any free port (read Gateway.port after start)
    state_dir: Path | None = Path(".local")  # None: nothing saved or loaded
    frontend_dir: Path = REPO_ROOT / "frontend"
    verbose: bool = False
    # API Gateway quotas (https://docs.aws.amazon.com/apigateway/latest/developerguide/
    # limits.html, WebSocket APIs).
    max_frame_bytes: int = 32 * 1024
    max_message_bytes: int = 128 * 1024
    idle_timeout_s: float = 10 * 60
    max_connection_s: float = 2 * 60 * 60
    # None: each function's own timeout from chat.functions (as the CDK app deploys it).
    handler_timeout_s: float | None = None
    max_concurrency: int = 10  # warm environments per function
    # The stage's throttle (a token bucket over every client frame), as deployed: requests
    # per second and burst from cdk.json (see ``stage``).
    throttle_rate_limit: float = field(
        default_factory=lambda: float(stack_context("throttle_rate_limit")))
    throttle_burst_limit: int = field(
        default_factory=lambda: int(stack_context("throttle_burst_limit")))
    # Local guards with no documented AWS number (see ``stage``): frames one connection
    # may have waiting or running at once, and bytes waiting in one connection's socket
    # before @connections answers 429 LimitExceededException.
    max_frames_in_flight: int = 16
    max_buffered_bytes: int = 1024 * 1024
    save_interval_s: float = 2.0
    extra_sys_path: tuple[str, ...] = ()  # prepended in the environments (test handlers)
    # The deploy settings functions read (chat.config.SETTINGS): env var -> value.
    function_settings: dict[str, str] = field(default_factory=default_function_settings)
    # The deploy settings of triggers (event source concurrency): key -> value.
    trigger_settings: dict[str, int] = field(default_factory=default_trigger_settings)
    # None: each queue's own (chat.queues); tests shorten it to see redelivery sooner.
    queue_visibility_timeout_s: int | None = None

    @property
    def auth(self) -> str:
        """The ``auth`` setting (``--auth``): which functions run, and whether Cognito does."""
        return self.function_settings.get(AUTH.env_var or "", str(AUTH.default))
