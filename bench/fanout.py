"""Fan-out bench: one ``new_message`` through the real handler to a room of N members.

The handler runs in this process (``local_gateway.testing.InProcessStage``), as on a
Lambda; what it calls runs OUT of it, in processes of their own, as AWS does for a
Lambda: DynamoDB (moto's server, ``local_gateway.dynamodb.LocalDynamoDB``, through
``AWS_ENDPOINT_URL_DYNAMODB``) and ``@connections`` (a small aiohttp server answering
every post after ``--latency-ms``, default 20 ms, about a post_to_connection inside a
region, any number at once). So this process's CPU time is
what a function pays for its side of the fan-out, and moto's own work is not in it.
The room's membership items are written directly (``chat.adapters.dynamodb``'s items,
batch writes), not through ``$connect``, whose join announcements make seeding O(N²).

The same room is fanned out to one by one (``FANOUT_CONCURRENCY=1``, the baseline) and
with ``--workers`` posts in flight (default: ``chat.config.FANOUT_CONCURRENCY``'s
default), in the same run:

- ``wall_s``: median handler time over ``--repeat`` warm invocations, the room's Query
  included (that Query alone: ``query_wall_s``; moto takes far longer over it than
  DynamoDB); the first with posts in flight, which also opens their connections, is
  ``first_wall_s``; ``fanout_wall_s``: the part spent in ``ManagementApi.post_many``;
- ``cpu_ms_per_recipient``: this process's ``time.process_time()`` (all its threads)
  around a warm invocation, divided by N: the handler's DynamoDB calls (client side,
  including parsing the room's Query), Powertools, JSON, signing and the HTTP posts;
  ``fanout_cpu_ms_per_recipient``: the same during ``post_many`` only;
- ``load_avg_1m`` and ``import_boto3_ms`` (median of three fresh processes, as
  ``bench/coldstart.py`` measures it): how busy and how fast the machine was when it
  ended. CPU times grow on a busy machine; ``import boto3`` takes ~140 ms on a quiet one;
- ``capacity``: DynamoDB capacity units of one ``new_message`` (with a ``client_id``)
  to a room of ``--capacity-room`` (default 50), computed from the sizes of the items
  each call touched with DynamoDB's rounding rules. moto answers
  ``ReturnConsumedCapacity`` with fixed placeholders (1.0 per write or Query, 0.5 per
  GetItem, whatever the sizes), shown as ``moto_reported`` for comparison only.

    .venv/bin/python bench/fanout.py [--json] [--recipients 1000] [--latency-ms 20]
        [--workers N] [--repeat 3] [--capacity-room 50]

With ``--json`` the last line is one JSON object. To see where the time goes, profile
the process (``py-spy record -p PID``, or pyinstrument): the posts run on the invoking
thread.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "functions"))
# Before the handlers are imported: Powertools reads these when its Logger is created.
os.environ.update(POWERTOOLS_LOG_LEVEL="ERROR", POWERTOOLS_METRICS_DISABLED="true")

STAGE = "prod"
SERVE_FLAG = "--serve-endpoint"


# -- @connections in a subprocess -------------------------------------------------------


def serve_endpoint(latency_s: float) -> None:
    """Answer every ``POST /<stage>/@connections/{id}`` with 200 after ``latency_s``,
    any number at once; ``GET /stats`` returns and resets the posts counted per id.
    Prints the port."""
    from aiohttp import web

    # Go when the bench does, however it ends: its end closes our stdin.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    posts: Counter[str] = Counter()

    async def post(request: web.Request) -> web.Response:
        await request.read()
        posts[unquote(request.raw_path.rsplit("/@connections/", 1)[1])] += 1
        if latency_s:
            await asyncio.sleep(latency_s)
        return web.Response(status=200)

    async def stats(_request: web.Request) -> web.Response:
        body = {"posts": sum(posts.values()), "recipients": len(posts)}
        posts.clear()
        return web.json_response(body)

    async def main() -> None:
        app = web.Application()
        app.router.add_post(f"/{STAGE}/@connections/{{cid:.+}}", post)
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, backlog=2048).start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class Endpoint:
    """The subprocess above; ``stats()`` says what it received since the last call."""

    def __init__(self, latency_ms: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, SERVE_FLAG, "--latency-ms", str(latency_ms)],
            stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        port = self.process.stdout.readline().strip()
        if not port.isdigit():
            self.close()
            raise RuntimeError("the @connections endpoint did not start")
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/{STAGE}"

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(self.base + "/stats", timeout=10) as answer:
            return json.load(answer)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


# -- DynamoDB item sizes and capacity units ---------------------------------------------


def _value_size(value: dict[str, Any]) -> int:
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        digits = str(Decimal(v).normalize()).replace("-", "").replace(".", "").lstrip("0")
        return (len(digits.split("E")[0]) + 1) // 2 + 1
    if kind == "B":
        return len(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(_value_size({kind[0]: x}) for x in v)
    if kind == "L":
        return 3 + sum(1 + _value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_size(x) for k, x in v.items())
    raise ValueError(kind)


def item_size(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB bills it: names plus values (numbers ~1 byte per two
    significant digits plus one)."""
    return sum(len(name.encode()) + _value_size(value) for name, value in item.items())


def capacity_of(calls: list[tuple[str, dict[str, Any]]], db: Any) -> dict[str, Any]:
    """Capacity units of the recorded calls, from the sizes of the items they touched.

    Writes: 1 WCU per KB of the item (the larger of before and after), twice that in a
    transaction. Reads: 1 RCU per 4 KB, strongly consistent; a Query bills the summed
    size of every item it read (projection does not reduce it), rounded up once.
    """
    per_call = []
    for op, params in calls:
        table = params.get("TableName")
        if op == "UpdateItem":
            after = db.get_item(TableName=table, Key=params["Key"])["Item"]
            units = math.ceil(item_size(after) / 1024)
            per_call.append({"op": op, "wcu": units, "bytes": item_size(after)})
        elif op == "PutItem":
            size = item_size(params["Item"])
            per_call.append({"op": op, "wcu": math.ceil(size / 1024), "bytes": size})
        elif op == "TransactWriteItems":
            sizes = [item_size(x["Put"]["Item"]) for x in params["TransactItems"]]
            units = sum(2 * math.ceil(s / 1024) for s in sizes)
            per_call.append({"op": op, "wcu": units, "bytes": sizes})
        elif op == "Query":
            full = {k: v for k, v in params.items() if k != "ProjectionExpression"}
            size = sum(item_size(i) for i in db.query(**full)["Items"])
            rcu = math.ceil(size / 4096) * (1 if params.get("ConsistentRead") else 0.5)
            per_call.append({"op": op, "rcu": rcu, "bytes": size})
        elif op == "GetItem":
            item = db.get_item(TableName=table, Key=params["Key"]).get("Item", {})
            rcu = max(1, math.ceil(item_size(item) / 4096))
            per_call.append({"op": op, "rcu": rcu, "bytes": item_size(item)})
        else:
            per_call.append({"op": op})
    return {
        "wcu": sum(c.get("wcu", 0) for c in per_call),
        "rcu": sum(c.get("rcu", 0) for c in per_call),
        "calls": per_call,
    }


# -- the bench --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Timing:
    """One invocation: the handler's wall and CPU time (s), and its post_many's."""

    wall: float
    cpu: float
    fanout_wall: float
    fanout_cpu: float


def seed_room(db: Any, room: str, size: int, tables: dict[str, str]) -> list[str]:
    """A room of ``size`` connections in shard 0, as ``Store.add_connection`` leaves
    them; the first also gets its identity item (the sender)."""
    from chat.adapters.dynamodb import CONNECTION_TTL_S, Keys, connection_item, member_item
    from chat.model import Connection
    from local_gateway.events import new_gateway_id

    now = int(time.time())
    expires = now + CONNECTION_TTL_S
    conns = [
        Connection(new_gateway_id(), f"u{n}", room, (now - 60) * 1000) for n in range(size)
    ]
    items = [member_item(c, expires) for c in conns] + [connection_item(conns[0], expires)]
    items.append({**Keys.layout(room), "s0": {"N": str(size)}})  # all in shard 0
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]
        pending = {tables["CONNECTIONS_TABLE"]: batch}
        while pending:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return [c.connection_id for c in conns]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    from bench.coldstart import import_ms
    from bench.machine import machine
    from chat import bootstrap
    from chat.adapters.management_api import ManagementApi
    from chat.config import FANOUT_CONCURRENCY, FANOUT_SHARD_SIZE
    from chat.functions import FUNCTIONS
    from local_gateway.dynamodb import LocalDynamoDB
    from local_gateway.testing import InProcessStage

    workers = args.workers or FANOUT_CONCURRENCY.default
    endpoint = Endpoint(args.latency_ms)
    dynamodb = LocalDynamoDB()  # moto's server, in a process of its own
    tables = {spec.env_var: name for spec, name in dynamodb.table_names.items()}
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(key, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL_DYNAMODB=dynamodb.start(), CALLBACK_URL=endpoint.url,
        RATE_LIMIT_MESSAGES="1000000", **tables,
        # The whole room in one shard: posted in-line by new_message, what is measured.
        FANOUT_SHARD_SIZE=str(max(args.recipients, args.capacity_room, FANOUT_SHARD_SIZE.default)),
    )
    counter = iter(range(1_000_000))

    fanouts: list[tuple[float, float]] = []  # (wall s, CPU s) of each post_many
    post_many = ManagementApi.post_many

    def timed(api: ManagementApi, *args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return post_many(api, *args, **kwargs)
        finally:
            fanouts.append((time.perf_counter() - wall, time.process_time() - cpu))

    def invoke(gw: InProcessStage, sender: str, expect: int, **frame: Any) -> Timing:
        """One new_message, timed, after checking every member got it."""
        body = {"action": "new_message", "text": f"bench {next(counter)}", **frame}
        fanouts.clear()
        cpu, wall = time.process_time(), time.perf_counter()
        gw.send(sender, body)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        got = endpoint.stats()
        if got["recipients"] != expect:
            raise RuntimeError(f"{got['recipients']}/{expect} members received the message")
        return Timing(wall, cpu, sum(f[0] for f in fanouts), sum(f[1] for f in fanouts))

    def services(in_flight: int) -> Any:
        # The functions' own services, but a DynamoDB client that waits out moto's slow
        # Query of a big partition on a busy machine (the functions' gives up after 2 s).
        os.environ["FANOUT_CONCURRENCY"] = str(in_flight)
        built = bootstrap.build(dynamodb_client=boto3.client("dynamodb", config=Config(
            read_timeout=60, retries={"mode": "standard", "total_max_attempts": 1})))
        bootstrap.use(built)
        return built

    try:
        db = boto3.client("dynamodb")
        n = args.recipients
        sender = seed_room(db, "bench", n, tables)[0]
        # A timeout long enough for the one-by-one baseline (the deployed 10 s would stop
        # it at the deadline, some 400 posts in).
        functions = [dataclasses.replace(fn, timeout_s=600) for fn in FUNCTIONS]
        gw = InProcessStage(endpoint, functions=functions)  # type: ignore[arg-type]
        gw.open[sender] = _info(sender)

        ManagementApi.post_many = timed  # type: ignore[method-assign]
        # The baseline: one by one, the same room, after a warm-up invocation.
        services(1)
        invoke(gw, sender, n)
        baseline = invoke(gw, sender, n)

        s = services(workers)
        first = invoke(gw, sender, n)  # also opens the connections
        runs = [invoke(gw, sender, n) for _ in range(args.repeat)]
        start = time.perf_counter()
        s.store.room_shard("bench")
        query_wall = time.perf_counter() - start
        capacity = measure_capacity(db, s, gw, tables, args.capacity_room, invoke)
    finally:
        ManagementApi.post_many = post_many  # type: ignore[method-assign]
        bootstrap.use(None)
        endpoint.close()
        dynamodb.stop()

    def median(field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs)

    wall = median("wall")
    result = {
        "bench": "fanout",
        "recipients": n,
        "latency_ms": args.latency_ms,
        "workers": workers,
        "wall_s": round(wall, 3),
        "baseline_wall_s": round(baseline.wall, 3),
        "speedup": round(baseline.wall / wall, 1),
        "cpu_ms_per_recipient": round(median("cpu") * 1000 / n, 3),
        "first_wall_s": round(first.wall, 3),
        "query_wall_s": round(query_wall, 3),
        "fanout_wall_s": round(median("fanout_wall"), 3),
        "baseline_fanout_wall_s": round(baseline.fanout_wall, 3),
        "fanout_cpu_ms_per_recipient": round(median("fanout_cpu") * 1000 / n, 3),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "import_boto3_ms": round(statistics.median(
            import_ms("boto3", dict(os.environ)) for _ in range(3)), 1),
        "cpu_includes": "the handler process only: its DynamoDB calls (client side), "
                        "Powertools, JSON, signing and the HTTP posts; DynamoDB (moto) and "
                        "@connections run in a subprocess",
        "repeat": args.repeat,
        "capacity": capacity,
        "machine": machine(),
    }
    return result


def _info(cid: str) -> Any:
    from local_gateway.events import ConnectionInfo

    return ConnectionInfo(
        connection_id=cid, source_ip="203.0.113.7",
        domain_name="abc123.execute-api.us-east-1.amazonaws.com",
        connected_at=int(time.time() * 1000) - 60_000, api_id="abc123", stage=STAGE,
    )


def measure_capacity(
    db: Any, services: Any, gw: Any, tables: dict[str, str], size: int, invoke: Any
) -> dict[str, Any]:
    """Capacity units of one new_message (with a client_id) to a room of ``size``."""
    ids = seed_room(db, "capacity", size, tables)
    gw.open[ids[0]] = _info(ids[0])
    client = services.store.client
    calls: list[tuple[str, dict[str, Any]]] = []
    moto_reported: list[float] = []

    def ask(params: dict[str, Any], model: Any, **_kw: Any) -> None:
        calls.append((model.name, dict(params)))
        params["ReturnConsumedCapacity"] = "TOTAL"

    def reported(parsed: dict[str, Any], **_kw: Any) -> None:
        consumed = parsed.get("ConsumedCapacity")
        for c in consumed if isinstance(consumed, list) else [consumed] if consumed else []:
            moto_reported.append(c.get("CapacityUnits", 0))

    hooks = [("provide-client-params.dynamodb.*", ask),
             ("after-call.dynamodb.*", reported)]
    for event, hook in hooks:
        client.meta.events.register(event, hook)
    try:
        invoke(gw, ids[0], size, client_id="capacity-1")
    finally:
        for event, hook in hooks:
            client.meta.events.unregister(event, hook)
    result = capacity_of(calls, db)
    return {"room": size, "with_client_id": True, **result,
            "moto_reported": sum(moto_reported)}


def human(result: dict[str, Any]) -> str:
    c = result["capacity"]
    return (
        f"{result['recipients']} recipients at {result['latency_ms']} ms: "
        f"{result['wall_s']} s with {result['workers']} workers (first {result['first_wall_s']} s)"
        f" vs {result['baseline_wall_s']} s one by one ({result['speedup']}x); "
        f"{result['cpu_ms_per_recipient']} ms CPU per recipient "
        f"({result['fanout_cpu_ms_per_recipient']} in post_many); "
        f"room of {c['room']}: {c['wcu']} WCU + {c['rcu']} RCU per new_message"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(SERVE_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    for flag, kind, default, text in (
        ("--recipients", int, 1000, "members of the room, sender included"),
        ("--latency-ms", float, 20.0, "how long @connections takes to answer a post"),
        ("--workers", int, 0, "posts in flight (default: FANOUT_CONCURRENCY's default)"),
        ("--repeat", int, 3, "warm invocations with posts in flight; the median is reported"),
        ("--capacity-room", int, 50, "the room whose capacity units are computed"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=text)
    args = parser.parse_args()
    if args.serve_endpoint:
        serve_endpoint(args.latency_ms / 1000)
        return
    result = run(args)
    print(human(result), flush=True)
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
