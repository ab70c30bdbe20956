"""Deploy-time settings, read from CDK context (``-c key=value`` or ``cdk.json``).

Every knob has a default that deploys a working chat, so ``npx cdk deploy`` needs no
flags. Values given with ``-c`` arrive as strings, hence the parsing helpers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from constructs import Node

from chat.config import AUTH, AUTH_COGNITO
from chat.config import SETTINGS as FUNCTION_SETTINGS

DEFAULTS: dict[str, Any] = {
    # Throwaway stacks: tables and the site bucket are deleted with the stack.
    "destroy": False,
    "stage_name": "prod",
    # Stage-wide API Gateway throttling (messages per second, steady and burst). A small
    # chat stays far below; the limit caps the bill if a client floods the socket.
    "throttle_rate_limit": 50,
    "throttle_burst_limit": 100,
    # Reserved concurrency per function. Unset (None) = the account's shared pool, which
    # new accounts cap at 10; reserving on such an account fails the deploy.
    "reserved_concurrency": None,
    "log_retention_days": 30,
    # Lambda's Python (the function runtime and the layers' wheels). ``make test`` runs the
    # functions' tests on this version (the Makefile reads it from cdk.json): deploy
    # another one with ``-c python_runtime=3.12`` only after testing on it.
    "python_runtime": "3.13",
    # Version of the official Powertools layer, as named in its public SSM parameter: the
    # aws-lambda-powertools version in uv.lock, which the tests import
    # (tests/infra/test_versions.py compares them; README: moving both together).
    "powertools_version": "3.37.0",
    # Sign-in (auth=cognito): ID and access tokens last this long; the refresh token
    # that renews them, this long (Cognito allows 5 min-1 day, and 1-3650 days).
    "id_token_validity_minutes": 60,
    "refresh_token_validity_days": 30,
    # Stage access logs (JSON lines in a log group). Unset: on with auth=cognito.
    "access_logs": None,
    # API Gateway writes access logs with one role per account and region
    # (AWS::ApiGateway::Account). "create": this stack sets it; "existing": one is
    # already set (another stack, or the console), and this stack leaves it alone.
    "api_gateway_logs_role": "create",
    # Where the alarms (infra/monitoring.py) send email, through an SNS topic the stack
    # creates: ``-c alarm_email=ops@example.com``. Unset: no topic, the alarms only
    # change state (on the dashboard).
    "alarm_email": None,
    # What the functions read from their environment (chat.config.SETTINGS), by the same
    # keys: ``-c rate_limit_messages=20``.
    **{setting.key: setting.default for setting in FUNCTION_SETTINGS},
}


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in {"1", "true", "yes", "on"}


def _as_int(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in {"", "none"}):
        return None
    return int(value)


def _positive(key: str, value: Any) -> int:
    number = _as_int(value)
    if number is None or number < 1:
        raise ValueError(f"{key} must be a positive whole number, not {value!r}")
    return number


@dataclass(frozen=True)
class StackSettings:
    """The typed view of the context the stack is built from."""

    destroy: bool
    stage_name: str
    throttle_rate_limit: int
    throttle_burst_limit: int
    reserved_concurrency: int | None
    log_retention_days: int
    python_runtime: str  # "3.13": Lambda's python3.13
    powertools_version: str
    auth: str  # chat.config.AUTH: "none" or "cognito"
    id_token_validity_minutes: int
    refresh_token_validity_days: int
    access_logs: bool
    api_gateway_logs_role: str  # "create" | "existing"
    alarm_email: str | None
    # chat.config.SETTINGS: environment variable -> value, for the functions that read it.
    function_settings: dict[str, str]
    # chat.config.SETTINGS of triggers (no environment variable): key -> value.
    trigger_settings: dict[str, int]

    @classmethod
    def from_context(cls, node: Node) -> StackSettings:
        def get(key: str) -> Any:
            value = node.try_get_context(key)
            return DEFAULTS[key] if value is None else value

        rate = _as_int(get("throttle_rate_limit"))
        burst = _as_int(get("throttle_burst_limit"))
        retention = _as_int(get("log_retention_days"))
        if rate is None or burst is None or retention is None:
            raise ValueError("throttle limits and log_retention_days need a number")
        auth = AUTH.parse(get(AUTH.key))
        access_logs = get("access_logs")
        id_minutes = _positive("id_token_validity_minutes", get("id_token_validity_minutes"))
        refresh_days = _positive("refresh_token_validity_days", get("refresh_token_validity_days"))
        if not 5 <= id_minutes <= 24 * 60 or not 1 <= refresh_days <= 3650:
            raise ValueError("Cognito allows ID tokens of 5-1440 minutes and refresh tokens "
                             f"of 1-3650 days, not {id_minutes} and {refresh_days}")
        python_runtime = str(get("python_runtime")).strip().removeprefix("python")
        if not re.fullmatch(r"3\.\d+", python_runtime):
            raise ValueError(f"python_runtime must be a Python version such as 3.13, "
                             f"not {get('python_runtime')!r}")
        powertools_version = str(get("powertools_version")).strip()
        if not re.fullmatch(r"\d+\.\d+\.\d+", powertools_version):
            raise ValueError("powertools_version must be an exact release such as 3.37.0 (the "
                             f"one uv.lock has), not {powertools_version!r}")
        logs_role = str(get("api_gateway_logs_role"))
        if logs_role not in ("create", "existing"):
            raise ValueError(f"api_gateway_logs_role must be create or existing, not {logs_role!r}")
        return cls(
            destroy=_as_bool(get("destroy")),
            stage_name=str(get("stage_name")),
            throttle_rate_limit=rate,
            throttle_burst_limit=burst,
            reserved_concurrency=_as_int(get("reserved_concurrency")),
            log_retention_days=retention,
            python_runtime=python_runtime,
            powertools_version=powertools_version,
            auth=auth,
            id_token_validity_minutes=id_minutes,
            refresh_token_validity_days=refresh_days,
            access_logs=(auth == AUTH_COGNITO) if access_logs is None else _as_bool(access_logs),
            api_gateway_logs_role=logs_role,
            alarm_email=str(get("alarm_email")).strip() or None
            if get("alarm_email") is not None else None,
            function_settings={
                setting.env_var: setting.parse(get(setting.key))
                for setting in FUNCTION_SETTINGS
                if setting.env_var
            },
            trigger_settings={
                setting.key: _positive(setting.key, get(setting.key))
                for setting in FUNCTION_SETTINGS
                if not setting.env_var
            },
        )
