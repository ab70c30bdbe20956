"""Big-room bench: one message to a room of N members at an account's API Gateway quota.

Runs the real functions in the local gateway's Lambda-like processes
(``local_gateway.lambda_service``) with the local gateway's queue emulation
(``local_gateway.event_sources``: moto's SQS, polled like Lambda's event source, the
worker's concurrency as deployed) and moto's DynamoDB. Only ``@connections`` is
simulated, in another process: it answers after ``--latency-ms`` and enforces the
account-wide quota ``--quota-rps`` with a token bucket (burst = half the quota),
answering 429 ``LimitExceededException`` beyond it, as API Gateway does.

Members are written straight into the table (seeding 20,000 through ``$connect`` is not
what this measures). One ``new_message`` is sent through the ``new_message`` function;
the clock stops when the endpoint has accepted a post for every member.

    .venv/bin/python bench/bigroom.py --json [--recipients 20000] [--quota-rps 1000]

Last line: ``{"bench": "bigroom", "recipients", "quota_rps", "wall_s", "delivered",
"lost", "duplicates", "throttled_posts", "quota_utilisation"}`` where utilisation is
recipients / (wall_s x quota_rps): 1.0 means the quota was the only limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "functions")]

from bench.machine import machine  # noqa: E402
from chat.adapters.dynamodb import Keys, connection_item, member_item  # noqa: E402
from chat.config import FANOUT_SHARD_SIZE, FANOUT_WORKERS  # noqa: E402
from chat.functions import FUNCTIONS, QueueConsumer, routes  # noqa: E402
from chat.model import Connection  # noqa: E402
from chat.queues import QUEUES  # noqa: E402
from chat.tables import CONNECTIONS, TABLES  # noqa: E402
from local_gateway.dynamodb import LocalDynamoDB  # noqa: E402
from local_gateway.event_sources import LocalQueues, SqsPoller  # noqa: E402
from local_gateway.events import ConnectionInfo, new_gateway_id, route_event  # noqa: E402
from local_gateway.lambda_service import LambdaService  # noqa: E402
from local_gateway.settings import GatewaySettings  # noqa: E402

STAGE = "bench"


# -- the simulated @connections endpoint (its own process) ------------------------------


def _endpoint(port_out: Any, latency_s: float, quota_rps: float) -> None:
    from aiohttp import web

    capacity = quota_rps / 2  # API Gateway's default burst is half the rate
    state = {"tokens": capacity, "at": time.monotonic(), "posts": 0, "throttled": 0}
    delivered: dict[str, int] = {}
    first_last = [0.0, 0.0]

    async def post(request: web.Request) -> web.Response:
        await request.read()
        now = time.monotonic()
        state["tokens"] = min(capacity, state["tokens"] + (now - state["at"]) * quota_rps)
        state["at"] = now
        await asyncio.sleep(latency_s)
        if state["tokens"] < 1:
            state["throttled"] += 1
            return web.Response(status=429, headers={"x-amzn-ErrorType": "LimitExceededException"},
                                content_type="application/json",
                                text='{"message": "Too Many Requests"}')
        state["tokens"] -= 1
        cid = request.match_info["cid"]
        delivered[cid] = delivered.get(cid, 0) + 1
        state["posts"] += 1
        if not first_last[0]:
            first_last[0] = time.time()
        first_last[1] = time.time()
        return web.Response(status=200)

    async def stats(request: web.Request) -> web.Response:
        answer = web.json_response({
            "delivered": delivered, "posts": state["posts"], "throttled": state["throttled"],
            "first": first_last[0], "last": first_last[1],
        })
        if request.query.get("reset"):
            delivered.clear()
            state.update(posts=0, throttled=0)
            first_last[:] = [0.0, 0.0]
        return answer

    async def main() -> None:
        app = web.Application()
        app.router.add_post(f"/{STAGE}/@connections/{{cid}}", post)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port_out.send(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(main())


# -- the bench -------------------------------------------------------------------------


def seed(ddb: LocalDynamoDB, room: str, recipients: int, shard_size: int) -> list[str]:
    """Members written as ``$connect`` would write them, shard after shard, with the layout."""
    table = ddb.table_names[CONNECTIONS]
    client = ddb._client
    expires = int(time.time()) + 3600
    old = int(time.time() * 1000) - 60_000  # past the 410 grace
    ids = [new_gateway_id() for _ in range(recipients)]
    items = []
    for n, cid in enumerate(ids):
        conn = Connection(cid, f"u{n}", room, old, shard=n // shard_size)
        items.append(connection_item(conn, expires))
        items.append(member_item(conn, expires))
    layout: dict[str, Any] = {**Keys.layout(room)}
    for shard in range((recipients + shard_size - 1) // shard_size):
        layout[f"s{shard}"] = {"N": str(min(shard_size, recipients - shard * shard_size))}
    items.append(layout)
    for start in range(0, len(items), 25):
        pending: Any = {table: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]}
        while pending:
            pending = client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or None
    return ids


async def run(args: argparse.Namespace) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    endpoint = ctx.Process(target=_endpoint, args=(child, args.latency_ms / 1000,
                                                  args.quota_rps), daemon=True)
    endpoint.start()
    port = parent.recv()
    callback_url = f"http://127.0.0.1:{port}/{STAGE}"

    loop = asyncio.get_running_loop()
    ddb = LocalDynamoDB(TABLES)
    await loop.run_in_executor(None, ddb.start)
    queues = LocalQueues(QUEUES)
    await loop.run_in_executor(None, queues.start, ddb.endpoint_url)
    settings = GatewaySettings(port=0, state_dir=None, max_concurrency=args.workers + 2)
    settings.function_settings[FANOUT_SHARD_SIZE.env_var] = str(args.shard_size)
    settings.function_settings["RATE_LIMIT_MESSAGES"] = "1000"
    values = {
        **{spec.env_var: name for spec, name in ddb.table_names.items()},
        "CALLBACK_URL": callback_url,
        **queues.env(),
        **settings.function_settings,
    }
    runtime_env = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_DYNAMODB": ddb.endpoint_url, "AWS_ENDPOINT_URL": ddb.endpoint_url,
        "AWS_EC2_METADATA_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    lambdas = LambdaService(FUNCTIONS, settings, environment_values=values,
                            runtime_environment=runtime_env)
    (worker,) = [fn for fn in FUNCTIONS if isinstance(fn.trigger, QueueConsumer)]
    poller = SqsPoller(lambdas, worker, queues, max_concurrency=args.workers)

    room = "big"
    ids = await loop.run_in_executor(None, seed, ddb, room, args.recipients, args.shard_size)
    sender = ConnectionInfo(ids[0], "127.0.0.1", "bench")
    new_message = routes()["new_message"]
    poller.start()
    print(f"# seeded {args.recipients} members in "
          f"{len(range(0, args.recipients, args.shard_size))} shards", file=sys.stderr)

    def stats(reset: bool = False) -> dict[str, Any]:
        query = "?reset=1" if reset else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats{query}", timeout=30) as r:
            return json.load(r)

    async def one_message(text: str) -> tuple[float, dict[str, Any]]:
        """Send, wait until every member has it (or nothing is left to do); the wall time."""
        started = time.time()
        event = route_event(sender, route_key="new_message",
                            body=json.dumps({"action": "new_message", "text": text}),
                            request_id=new_gateway_id())
        result = await lambdas.invoke(new_message.name, event, label="new_message",
                                      subject=ids[0])
        assert result.ok, result.detail
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            s = await loop.run_in_executor(None, stats)
            if len(s["delivered"]) >= args.recipients:
                break
            if queues.depth(worker.trigger.queue) == 0 and not poller._running:
                await asyncio.sleep(1)  # the last answers, then count what there is
                s = await loop.run_in_executor(None, stats)
                break
            await asyncio.sleep(0.05)
        await loop.run_in_executor(None, stats, True)
        return s["last"] - started, s

    # The first message starts the functions' environments (cold starts, one at a time
    # here); the second is the one measured, as on a stage that is already running.
    cold_s, _ = await one_message("warm-up")
    print(f"# first message (cold environments): {cold_s:.1f} s", file=sys.stderr)
    wall_s, s = await one_message("to everyone")
    await poller.stop()
    await loop.run_in_executor(None, lambdas.close)
    await loop.run_in_executor(None, ddb.stop)
    endpoint.kill()

    delivered = sum(1 for cid in ids if s["delivered"].get(cid))
    duplicates = sum(n - 1 for n in s["delivered"].values() if n > 1)
    return {
        "bench": "bigroom",
        "machine": machine(),
        "recipients": args.recipients,
        "quota_rps": args.quota_rps,
        "latency_ms": args.latency_ms,
        "shard_size": args.shard_size,
        "workers": args.workers,
        "wall_s": round(wall_s, 2),
        "delivered": delivered,
        "lost": args.recipients - delivered,
        "duplicates": duplicates,
        "throttled_posts": s["throttled"],
        "quota_utilisation": round(args.recipients / (wall_s * args.quota_rps), 3),
        "cold_wall_s": round(cold_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--quota-rps", type=float, default=1000)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--shard-size", type=int, default=FANOUT_SHARD_SIZE.default)
    parser.add_argument("--workers", type=int, default=FANOUT_WORKERS.default,
                        help="the worker's event source concurrency")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    result = asyncio.run(run(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
