"""The real CDK CLI (``npx cdk synth``, as ``make synth`` runs it) and cfn-lint on its output.

No AWS credentials in the environment: synth must not need an account, Docker or network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = "ServerlessChat"


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # No credentials anywhere, and no probing of EC2 instance metadata for them.
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_EC2_METADATA_DISABLED"] = "true"
    env["JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"] = "20"
    return env


@pytest.fixture(scope="module")
def cli_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npx") is None:
        pytest.fail("npx (Node.js) is required: the CDK CLI comes from npm")
    if not (ROOT / "node_modules" / ".bin" / "cdk").exists():
        pytest.fail("node_modules/.bin/cdk missing: run `make install` (npm install)")
    outdir = tmp_path_factory.mktemp("cli-cdk.out")
    started = time.monotonic()
    result = subprocess.run(
        ["npx", "--no-install", "cdk", "synth", "--quiet", "--output", str(outdir)],
        cwd=ROOT,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    # Recorded, not asserted: a wall-clock bound is a flaky test on a busy CI machine
    # (team rule: no timing tests). `pytest -s` or the report's captured output shows it.
    print(f"npx cdk synth: {elapsed:.1f} s")
    return outdir / f"{STACK}.template.json"


def test_cli_synth_writes_the_stack(cli_template: Path) -> None:
    text = cli_template.read_text()
    assert '"AWS::ApiGatewayV2::Api"' in text
    assert '"AWS::CDK::Metadata"' in text  # added by the CLI only: this really was the CLI


def test_cfn_lint_finds_no_errors(cli_template: Path) -> None:
    # W3005 (redundant DependsOn) is CDK's own output style, not ours.
    venv_bin = Path(sys.executable).parent / "cfn-lint"
    cfn_lint = str(venv_bin) if venv_bin.exists() else shutil.which("cfn-lint")
    assert cfn_lint, "cfn-lint missing: pip install -e '.[dev]'"
    result = subprocess.run(
        [cfn_lint, "-i", "W3005", "--", str(cli_template)],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
