"""Shared by the rehearsal's tests: the runtime awslambdaric runs in, and one rehearsal.

``runtime`` builds (or finds in ``.build/rehearsal/``) what ``cdk_out`` gives every
function: a Python 3.13 venv with nothing installed and the locked boto3/awslambdaric
folder (Lambda's ``/var/runtime``). ``rehearsal`` runs ``python -m local_gateway.rehearse``
once per session, both auth modes, into a folder of its own: synthesizing the app twice is
most of its time, and the other tests reuse its ``cdk.out`` folders.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest

from local_gateway.cdk_out import build_interpreter, build_runtime
from local_gateway.settings import REPO_ROOT


class Runtime(NamedTuple):
    python: Path
    runtime_dir: Path


@pytest.fixture(scope="session")
def runtime() -> Runtime:
    return Runtime(build_interpreter(), build_runtime() / "python")


class Rehearsal(NamedTuple):
    code: int
    output: str
    root: Path  # cdk.out-none and cdk.out-cognito are in here


def rehearse(*args: str) -> tuple[int, str]:
    result = subprocess.run(
        [sys.executable, "-m", "local_gateway.rehearse", *args], cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=600, check=False,
        env={**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"})
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="session")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
    root = tmp_path_factory.mktemp("rehearsal")
    code, output = rehearse("--cdk-out-root", str(root))
    return Rehearsal(code, output, root)
