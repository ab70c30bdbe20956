"""Cold-start bench: how long each function's handler module takes to import.

What a Lambda cold start pays for the code before the first invocation is mostly
imports. For every handler module of every mode (``chat.functions.functions_for``:
the sign-in mode adds the authorizer and the pre sign-up check) (``fn.handler``
without the function name, each module once) and for ``import boto3`` alone, the time
of the import is measured inside a fresh ``python -c`` process (``PYTHONPATH=functions``,
as the Lambda asset is laid out; the interpreter's own start is not counted), ``--runs``
times each, interleaved so that the machine's noise falls on all alike; the first,
which may compile ``.pyc`` files, is not counted. ``max_ratio`` is the slowest module's
median over boto3's: boto3 ships with the Lambda runtime and any handler imports it, so
the ratio is what the chat's own code and Powertools add.

    .venv/bin/python bench/coldstart.py [--json] [--runs 7]

With ``--json`` the last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS_DIR = ROOT / "functions"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(FUNCTIONS_DIR))

from bench.machine import machine  # noqa: E402
from chat.config import AUTH  # noqa: E402
from chat.functions import functions_for  # noqa: E402

BOTO3 = "boto3"
_PROBE = (
    "import time; t = time.perf_counter(); import {module}; "
    "print((time.perf_counter() - t) * 1000)"
)


def handler_modules() -> list[str]:
    every = [fn for auth in AUTH.choices for fn in functions_for(auth)]
    return list(dict.fromkeys(fn.handler.rpartition(".")[0] for fn in every))


def import_ms(module: str, env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", _PROBE.format(module=module)],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    return float(out.strip().splitlines()[-1])


def run(runs: int) -> dict[str, Any]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "AWS_", "POWERTOOLS_"))
    }
    # What a deployed function has: a region, and the asset on the path.
    env.update(PYTHONPATH=str(FUNCTIONS_DIR), AWS_REGION="us-east-1",
               AWS_DEFAULT_REGION="us-east-1")
    modules = [BOTO3, *handler_modules()]
    times: dict[str, list[float]] = {m: [] for m in modules}
    for n in range(runs + 1):
        for module in modules:
            ms = import_ms(module, env)
            if n:  # the first round may write .pyc files
                times[module].append(ms)
    medians = {m: statistics.median(t) for m, t in times.items()}
    boto3_ms = medians.pop(BOTO3)
    return {
        "bench": "coldstart",
        "boto3_ms": round(boto3_ms, 1),
        "handlers": {m: round(ms, 1) for m, ms in medians.items()},
        "max_ratio": round(max(medians.values()) / boto3_ms, 2),
        "runs": runs,
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    parser.add_argument("--runs", type=int, default=7, help="fresh processes per module (>= 5)")
    args = parser.parse_args()
    result = run(max(5, args.runs))
    for module, ms in result["handlers"].items():
        print(f"{module}: {ms} ms ({ms / result['boto3_ms']:.2f}x import boto3's "
              f"{result['boto3_ms']} ms)")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
