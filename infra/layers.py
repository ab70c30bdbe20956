"""A function's own packages (``Function.packages``), built for Lambda's arm64 Python 3.13.

No Docker: pip downloads the packages' ready-built wheels for the target
(``--platform manylinux2014_aarch64 --python-version 3.13 --only-binary=:all:``) into a
folder laid out as a layer (``python/``), which CDK zips like any asset. A package with
no such wheel fails here, at synth, with pip's message, rather than at the first
invocation. PyJWT is pure Python; cryptography publishes abi3 wheels for Linux arm64
that run on any CPython from 3.11, so nothing is compiled.

The folder is kept in ``.build/layers/<hash of the request>``: synths after the first
(tests synthesize the app several times) reuse it and need no network. ``make layers``
builds it ahead of time (CI, or before going offline).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".build" / "layers"
# Lambda's python3.13 runs on Amazon Linux 2023 (glibc 2.34): wheels tagged
# manylinux2014 (glibc 2.17) up to manylinux_2_34 run there. "arm64" is what the stack
# deploys; "x86_64" builds the same layer for this machine (the deploy rehearsal).
ARCHITECTURES = {
    "arm64": "aarch64",
    "x86_64": "x86_64",
}
DEFAULT_ARCHITECTURE = "arm64"
PYTHON_VERSION = "3.13"
_DONE = ".complete"


def platforms(architecture: str = DEFAULT_ARCHITECTURE) -> tuple[str, ...]:
    """pip's platform tags for Lambda's Amazon Linux 2023 on ``architecture``."""
    try:
        machine = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}"
        ) from None
    return tuple(f"{tag}_{machine}" for tag in ("manylinux2014", "manylinux_2_28",
                                                "manylinux_2_34"))


def layer_dir(
    packages: tuple[str, ...],
    architecture: str = DEFAULT_ARCHITECTURE,
    python_version: str = PYTHON_VERSION,
) -> Path:
    key = json.dumps([sorted(packages), platforms(architecture), python_version]).encode()
    return CACHE / hashlib.sha256(key).hexdigest()[:16]


def build_layer(
    packages: tuple[str, ...],
    architecture: str = DEFAULT_ARCHITECTURE,
    python_version: str = PYTHON_VERSION,
) -> Path:
    """The layer folder for ``packages`` on Lambda's ``python_version`` for
    ``architecture`` ("arm64" or "x86_64"), built now unless already built."""
    out = layer_dir(packages, architecture, python_version)
    if (out / _DONE).is_file():
        return out
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    command = [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-compile", "--target", str(staging / "python"),
        *(arg for platform in platforms(architecture) for arg in ("--platform", platform)),
        "--implementation", "cp", "--python-version", python_version,
        "--only-binary=:all:", *packages,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(
            f"building the layer for {', '.join(packages)} failed (pip needs PyPI the first "
            f"time; later synths reuse {CACHE}):\n{result.stderr[-2000:]}"
        )
    # Console scripts are for a shell, not a Lambda function.
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
    (staging / _DONE).write_text(json.dumps(list(packages)))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


if __name__ == "__main__":
    # ``make layers``: every declared function's layer, ahead of the first synth.
    sys.path.insert(0, str(ROOT / "functions"))
    from chat.config import AUTH_COGNITO
    from chat.functions import functions_for

    for fn in functions_for(AUTH_COGNITO):
        if fn.packages:
            print(f"{fn.name}: {build_layer(fn.packages)}")
