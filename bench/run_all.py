"""Run every bench in this folder, one after the other; one JSON line each on stdout.

A bench that takes ``--json`` is run with it (its human summary goes to stderr here);
each bench's last line, a JSON object stating the machine, is printed on stdout. Names
given on the command line run only those benches (``run_all.py fanout coldstart``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SKIP = {"__init__.py", "machine.py", "run_all.py"}


def takes_json(script: Path) -> bool:
    usage = subprocess.run([sys.executable, str(script), "--help"],
                           capture_output=True, text=True, check=False).stdout
    return "--json" in usage


def main(names: list[str]) -> int:
    failed = 0
    for script in sorted(HERE.glob("*.py")):
        if script.name in SKIP or (names and script.stem not in names):
            continue
        print(f"# {script.name}", file=sys.stderr, flush=True)
        command = [sys.executable, str(script)] + (["--json"] if takes_json(script) else [])
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
        lines = done.stdout.strip().splitlines()
        for line in lines[:-1]:
            print(line, file=sys.stderr)
        if done.returncode == 0 and lines:
            print(lines[-1], flush=True)
        else:
            failed += 1
            print(f"# {script.name} failed (exit {done.returncode})", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
