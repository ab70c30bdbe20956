"""cdk.json and the stack settings read from its context (no synth needed)."""

from __future__ import annotations

import json

from aws_cdk import App

from infra.settings import StackSettings
from tests.infra.conftest import CONTEXT, ROOT


def test_cdk_json_runs_the_venv_python_quietly() -> None:
    cdk = json.loads((ROOT / "cdk.json").read_text())
    assert cdk["app"].startswith(".venv/bin/python infra/app.py")
    assert cdk["notices"] is False
    assert cdk["cli-telemetry"] is False
    assert cdk["context"] == CONTEXT  # one set of defaults for the CLI and the tests


def test_context_overrides_parse_cli_strings() -> None:
    app = App(
        context={
            "destroy": "true",
            "throttle_rate_limit": "5",
            "throttle_burst_limit": "7",
            "reserved_concurrency": "3",
            "log_retention_days": "7",
        }
    )
    settings = StackSettings.from_context(app.node)
    assert settings.destroy is True
    assert (settings.throttle_rate_limit, settings.throttle_burst_limit) == (5, 7)
    assert settings.reserved_concurrency == 3
    assert StackSettings.from_context(App().node).reserved_concurrency is None
    assert StackSettings.from_context(App().node).destroy is False
