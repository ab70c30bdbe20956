"""Fan-out bench: one ``new_message`` through the real handler to rooms of N members.

DynamoDB is moto in-process; ``@connections`` is ``local_gateway.testing``'s real HTTP endpoint
with a simulated API Gateway round trip (``--latency-ms``, default 20 ms, about what a
post_to_connection takes inside a region). Each room size runs with the fan-out pool at
1 (posts one by one) and at the configured concurrency, in the same run, so the ratio
shows what bounded concurrency buys; absolute times include moto's cost (its Query
scans the partition) and this machine's noise.

    .venv/bin/python bench/fanout.py [--sizes 10,50,200] [--latency-ms 20] [--repeat 5]

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# Before the handlers are imported: Powertools reads these when its Logger is created.
os.environ.update(POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true")

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402

from bench.machine import machine  # noqa: E402
from chat import bootstrap  # noqa: E402
from chat.tables import TABLES  # noqa: E402
from local_gateway.dynamodb import create_table  # noqa: E402
from local_gateway.testing import InProcessStage, ScriptedConnections  # noqa: E402


def run(sizes: list[int], latency_ms: float, repeat: int, concurrency: int) -> dict:
    recorder = ScriptedConnections(latency_s=latency_ms / 1000).start()
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "CONNECTIONS_TABLE": "bench-connections",
        "MESSAGES_TABLE": "bench-messages",
        "CALLBACK_URL": recorder.url,
        "RATE_LIMIT_MESSAGES": "1000000",
    }
    os.environ.update(env)
    results = []
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        for spec in TABLES:
            create_table(db, spec, env[spec.env_var])
        for size in sizes:
            row: dict = {"room": size}
            for pool in (1, concurrency):
                os.environ["FANOUT_CONCURRENCY"] = str(pool)
                bootstrap.use(None)  # rebuilt with this pool size
                gw = InProcessStage(recorder)
                room = f"r{size}-{pool}"
                recorder.latency_s = 0  # joining is not what we measure
                members = [gw.join(f"u{n}", room) for n in range(size)]
                recorder.latency_s = latency_ms / 1000
                timings = []
                for n in range(repeat):
                    start = time.perf_counter()
                    gw.send(members[0], {"action": "new_message", "text": f"bench {n}"})
                    timings.append((time.perf_counter() - start) * 1000)
                delivered = sum(1 for m in members if recorder.take(m))
                assert delivered == size, f"only {delivered}/{size} members received"
                row[f"ms_pool_{pool}"] = round(statistics.median(timings), 1)
            row["speedup"] = round(row["ms_pool_1"] / row[f"ms_pool_{concurrency}"], 1)
            results.append(row)
    recorder.shutdown()
    return {
        "bench": "fanout",
        "machine": machine(),
        "latency_ms": latency_ms,
        "concurrency": concurrency,
        "repeat": repeat,
        "median_handler_ms": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50,200")
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(json.dumps(run(sizes, args.latency_ms, args.repeat, args.concurrency)))


if __name__ == "__main__":
    main()
