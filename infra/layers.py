"""A function's own packages (``Function.packages``), built from uv.lock for Lambda's Python.

``Function.packages`` names packages without versions; ``pyproject.toml`` has a dependency
group with exactly those requirements (``layer-posting = ["httptools"]``). The versions
come from ``uv.lock`` only: ``uv export --frozen --only-group <group>`` writes the group's
whole closure pinned, each with the hash of every wheel the lock knows, and ``uv pip
install --require-hashes --no-deps --only-binary :all:`` installs the wheels for the
target (``--python-platform aarch64-manylinux_2_34 --python-version 3.13``, markers
evaluated for the target, not this machine) into a folder laid out as a layer
(``python/``), which CDK zips like any asset. No Docker, nothing compiled: a package with
no such wheel fails here, at synth, with uv's message, rather than at the first invocation.

``architecture`` is "arm64" (what the stack deploys) or "x86_64" (the same layer for this
machine: the deploy rehearsal runs the functions here on the same locked versions).

The folder is kept in ``.build/layers/<hash of the exported requirements and target>``:
synths after the first (tests synthesize the app several times) reuse it and need no
network, and a lock change that moves one of its packages builds a new one. ``make layers``
builds them ahead of time (CI, or before going offline).

uv is the one the Makefile installs (``.build/uv-<version>/bin/uv``, the version in
pyproject's ``[tool.uv] required-version``); ``UV=/path/to/uv`` overrides it, and a uv next
to this Python or on ``PATH`` is used otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
LOCK = ROOT / "uv.lock"
CACHE = ROOT / ".build" / "layers"
# Lambda's Python 3.12+ runtimes run on Amazon Linux 2023 (glibc 2.34): uv picks the best
# wheel tagged manylinux2014 (glibc 2.17) up to manylinux_2_34.
ARCHITECTURES = {
    "arm64": "aarch64",
    "x86_64": "x86_64",
}
DEFAULT_ARCHITECTURE = "arm64"
PYTHON_VERSION = "3.13"
GLIBC = "2_34"
_DONE = ".complete"


def python_platform(architecture: str = DEFAULT_ARCHITECTURE) -> str:
    """uv's ``--python-platform`` for Lambda's Amazon Linux 2023 on ``architecture``."""
    try:
        machine = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"architecture must be one of {', '.join(ARCHITECTURES)}, not {architecture!r}"
        ) from None
    return f"{machine}-manylinux_{GLIBC}"


def _normalized(requirement: str) -> str:
    # PEP 503 names, case and separators folded, no spaces: "PyJWT[crypto]" == "pyjwt[crypto]".
    return re.sub(r"[-_.]+", "-", requirement.replace(" ", "")).lower()


def layer_group(packages: tuple[str, ...]) -> str:
    """The pyproject dependency group whose requirements are exactly ``packages``."""
    groups = tomllib.loads(PYPROJECT.read_text()).get("dependency-groups", {})
    wanted = sorted(map(_normalized, packages))
    for name, requirements in groups.items():
        if sorted(_normalized(r) for r in requirements if isinstance(r, str)) == wanted:
            return name
    raise LookupError(
        f"no dependency group in pyproject.toml lists exactly {', '.join(packages)}: add one "
        f'(layer-<name> = [{", ".join(repr(p) for p in packages)}]) and run `uv lock`'
    )


def uv_version() -> str:
    """The uv version pyproject requires (``[tool.uv] required-version = "==X.Y.Z"``)."""
    required = tomllib.loads(PYPROJECT.read_text())["tool"]["uv"]["required-version"]
    return required.removeprefix("==")


def uv() -> str:
    """The path of the uv that locks and installs this project."""
    candidates = [
        os.environ.get("UV"),
        str(ROOT / ".build" / f"uv-{uv_version()}" / "bin" / "uv"),
        str(Path(sys.executable).parent / "uv"),
        shutil.which("uv"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(
        f"uv {uv_version()} not found: `make layers` (or any make target) installs it in "
        f".build/uv-{uv_version()}/, or set UV=/path/to/uv"
    )


def _run(command: list[str], what: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def locked_requirements(packages: tuple[str, ...]) -> str:
    """``packages``' closure as uv.lock pins it: ``name==version`` lines with hashes."""
    return _run(
        [uv(), "export", "--frozen", "--no-emit-project", "--no-header", "--no-annotate",
         "--only-group", layer_group(packages), "--project", str(ROOT)],
        f"exporting the layer group for {', '.join(packages)} from {LOCK}",
    )


def _key(requirements: str, architecture: str, python_version: str) -> str:
    key = json.dumps([requirements, python_platform(architecture), python_version]).encode()
    return hashlib.sha256(key).hexdigest()[:16]


def layer_dir(
    packages: tuple[str, ...],
    architecture: str = DEFAULT_ARCHITECTURE,
    python_version: str = PYTHON_VERSION,
) -> Path:
    """Where the layer for ``packages`` is (or will be) built."""
    return CACHE / _key(locked_requirements(packages), architecture, python_version)


def build_layer(
    packages: tuple[str, ...],
    architecture: str = DEFAULT_ARCHITECTURE,
    python_version: str = PYTHON_VERSION,
) -> Path:
    """The layer folder for ``packages`` on Lambda's ``python_version`` for
    ``architecture`` ("arm64" or "x86_64"), built now unless already built."""
    requirements = locked_requirements(packages)
    out = CACHE / _key(requirements, architecture, python_version)
    if (out / _DONE).is_file():
        return out
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    pinned = staging / "requirements.txt"
    pinned.write_text(requirements)
    try:
        _run(
            [uv(), "pip", "install", "--quiet", "--no-config", "--require-hashes", "--no-deps",
             "--only-binary", ":all:", "--no-compile",
             "--python-platform", python_platform(architecture),
             "--python-version", python_version,
             "--target", str(staging / "python"), "-r", str(pinned)],
            f"building the layer for {', '.join(packages)} (uv needs PyPI the first time; "
            f"later synths reuse {CACHE})",
        )
    except RuntimeError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    # Console scripts are for a shell, not a Lambda function; uv's lock file is uv's.
    shutil.rmtree(staging / "python" / "bin", ignore_errors=True)
    (staging / "python" / ".lock").unlink(missing_ok=True)
    pinned.rename(staging / _DONE)  # what is in the layer, exactly
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out


def main(argv: list[str] | None = None) -> None:
    """``make layers``: every declared function's layer, ahead of the first synth."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--architecture", choices=sorted(ARCHITECTURES),
                        default=DEFAULT_ARCHITECTURE)
    parser.add_argument("--python-version", default=PYTHON_VERSION)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "functions"))
    from chat.config import AUTH_COGNITO
    from chat.functions import functions_for

    for fn in functions_for(AUTH_COGNITO):
        if fn.packages:
            path = build_layer(fn.packages, args.architecture, args.python_version)
            print(f"{fn.name}: {path}")


if __name__ == "__main__":
    main()
