"""Reactions bench: a burst of reactions on one message in a room of M members.

What a reaction storm costs a room, and what the coalescing (PROTOCOL.md, "Reactions")
keeps it to. The room's members are written directly into DynamoDB (as
``bench/fanout.py`` seeds them), each a connection with its identity; ``--reactions``
reactions a second for ``--seconds`` seconds, from random members toggling one of a few
emoji on one message, go through the real ``react`` handler in this process (a few
threads, as concurrent Lambda invocations would be); the delayed sends go through the
real fan-out queue (moto's SQS) to the real fan-out worker, polled here as Lambda's event
source does. DynamoDB and SQS are moto's server in a process of its own; ``@connections``
is a small aiohttp server in another, answering every post after ``--latency-ms`` and
noting when each connection's posts arrived.

Printed (one JSON line with ``--json``):

- ``posts``: every post to ``@connections`` during the run and until the last delayed
  send went out; ``posts_per_member_per_second``: posts / members / ``span_s`` (from the
  first reaction to the last post, at least ``--seconds``);
- ``events_per_connection_max_per_second``: the most ``reactions`` events any one
  connection received within any one second (a sliding window over arrival times);
- ``reaction_errors``: ``error`` events the reactors got (on an overloaded machine moto
  may answer after the functions' 2 s read timeout: ``internal``);
- ``reactions_sent``/``reactions_per_second_achieved``: what the threads managed (each
  reaction is 3-5 DynamoDB calls, and moto, on this machine's two cores, answers a few
  hundred a second: the asked rate may not be reached locally);
- ``load_avg_1m`` and ``machine``.

    .venv/bin/python bench/reactions.py [--json] [--members 1000] [--reactions 100]
        [--seconds 10] [--latency-ms 20] [--threads 4]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.request
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
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
ROOM = "reactions-bench"
EMOJI = ("👍", "🎉", "❤️", "😂", "🔥")


# -- @connections in a subprocess, noting arrival times --------------------------------


def serve_endpoint(latency_s: float) -> None:
    """Answer every ``POST /<stage>/@connections/{id}`` with 200 after ``latency_s``;
    ``GET /stats`` returns the arrival times (epoch s) of each id's ``reactions`` posts
    and the count of all posts, and resets them. Prints the port."""
    from aiohttp import web

    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    arrivals: dict[str, list[float]] = defaultdict(list)
    posts = [0]
    errors = [0]

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        now = time.time()
        posts[0] += 1
        if b'"type":"error"' in body:
            errors[0] += 1
        if b'"type":"reactions"' in body:
            arrivals[unquote(request.raw_path.rsplit("/@connections/", 1)[1])].append(now)
        if latency_s:
            await asyncio.sleep(latency_s)
        return web.Response(status=200)

    async def stats(_request: web.Request) -> web.Response:
        body = {"posts": posts[0], "errors": errors[0], "arrivals": arrivals.copy()}
        arrivals.clear()
        posts[0] = errors[0] = 0
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

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(self.base + "/stats", timeout=30) as answer:
            return json.load(answer)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


def max_in_a_second(times: list[float]) -> int:
    """The most arrivals within any window [t, t + 1 s) starting at an arrival."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times)),
               default=0)


def seed_members(db: Any, size: int, tables: dict[str, str]) -> list[str]:
    """``size`` connections in shard 0 of the room, each with its identity item."""
    from chat.adapters.dynamodb import CONNECTION_TTL_S, Keys, connection_item, member_item
    from chat.model import Connection
    from local_gateway.events import new_gateway_id

    now = int(time.time())
    expires = now + CONNECTION_TTL_S
    conns = [Connection(new_gateway_id(), f"u{n}", ROOM, (now - 60) * 1000)
             for n in range(size)]
    items = [member_item(c, expires) for c in conns]
    items += [connection_item(c, expires) for c in conns]
    items.append({**Keys.layout(ROOM), "s0": {"N": str(size)}})
    for start in range(0, len(items), 25):
        batch = [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]
        pending = {tables["CONNECTIONS_TABLE"]: batch}
        while pending:
            pending = db.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
    return [c.connection_id for c in conns]


def run(args: argparse.Namespace) -> dict[str, Any]:
    import boto3

    from bench.fanout import _info
    from bench.machine import machine
    from chat import bootstrap
    from chat.config import FANOUT_SHARD_SIZE
    from chat.functions import FUNCTIONS
    from chat.queues import FANOUT_QUEUE
    from local_gateway.dynamodb import LocalDynamoDB
    from local_gateway.testing import InProcessStage

    endpoint = Endpoint(args.latency_ms)
    moto = LocalDynamoDB()  # moto's server: DynamoDB and SQS
    tables = {spec.env_var: name for spec, name in moto.table_names.items()}
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(key, None)
    url = moto.start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1", AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL_DYNAMODB=url, AWS_ENDPOINT_URL_SQS=url, CALLBACK_URL=endpoint.url,
        RATE_LIMIT_REACTIONS="1000000", RATE_LIMIT_MESSAGES="1000000", **tables,
        FANOUT_SHARD_SIZE=str(max(args.members, FANOUT_SHARD_SIZE.default)),
    )
    stop = threading.Event()
    try:
        db = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="bench-fanout")["QueueUrl"]
        os.environ[FANOUT_QUEUE.env_var] = queue_url
        members = seed_members(db, args.members, tables)
        bootstrap.use(bootstrap.build())
        gw = InProcessStage(endpoint, functions=FUNCTIONS)  # type: ignore[arg-type]
        for cid in members:
            gw.open[cid] = _info(cid)
        gw.send(members[0], {"action": "new_message", "text": "react to this"})
        message_id = bootstrap.services().store.page_messages(ROOM, None, 1)[0][0].id
        endpoint.stats()  # the message itself is not counted

        def event_source() -> None:  # Lambda's SQS event source, for the delayed sends
            while not stop.is_set():
                if not gw.run_queue_once(sqs, queue_url):
                    time.sleep(0.05)

        poller = threading.Thread(target=event_source, daemon=True)
        poller.start()
        mine: dict[tuple[str, str], bool] = {}
        lock = threading.Lock()
        rng = random.Random(7)

        def react() -> None:
            with lock:
                cid, emoji = rng.choice(members), rng.choice(EMOJI)
                on = not mine.get((cid, emoji), False)
                mine[(cid, emoji)] = on
            gw.send(cid, {"action": "react", "id": message_id, "emoji": emoji, "on": on})

        total = args.reactions * args.seconds
        start, start_wall = time.monotonic(), time.time()
        with ThreadPoolExecutor(max_workers=args.threads) as pool:
            futures = []
            for n in range(total):
                due = start + n / args.reactions
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                futures.append(pool.submit(react))
            for future in futures:
                future.result()
        took = time.monotonic() - start
        # The last burst's delayed send, then nothing pending.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
            waiting = sum(int(attrs["Attributes"].get(name, 0)) for name in (
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"))
            if waiting == 0:
                break
            time.sleep(0.2)
        time.sleep(0.5)  # the worker's posts of the last send
        stats = endpoint.stats()
        final = bootstrap.services().store.get_message(ROOM, message_id)
    finally:
        stop.set()
        bootstrap.use(None)
        endpoint.close()
        moto.stop()

    arrivals: dict[str, list[float]] = stats["arrivals"]
    # From the first reaction to the last post: the posts' whole span, which is longer
    # than --seconds when the reactions could not be sent as fast as asked.
    last = max((max(t) for t in arrivals.values() if t), default=start_wall + took)
    span = max(args.seconds, last - start_wall)
    expected = {e: len(users) for e, users in (final.reactions if final else {}).items()}
    got_final = all(len(times) > 0 for times in arrivals.values()) and len(arrivals) == len(
        members)
    return {
        "bench": "reactions",
        "members": args.members,
        "reactions": args.reactions,
        "seconds": args.seconds,
        "posts": stats["posts"],
        "posts_per_member_per_second": round(stats["posts"] / args.members / span, 3),
        "span_s": round(span, 1),
        "events_per_connection_max_per_second": max(
            (max_in_a_second(t) for t in arrivals.values()), default=0),
        "reactions_events_per_connection_max": max(
            (len(t) for t in arrivals.values()), default=0),
        "every_member_got_reactions": got_final,
        "final_summary_counts": expected,
        "reactions_sent": total,
        # error events answered to reactors (``internal`` when moto, overloaded, timed out)
        "reaction_errors": stats["errors"],
        "reactions_per_second_achieved": round(total / took, 1),
        "latency_ms": args.latency_ms,
        "threads": args.threads,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "machine": machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(SERVE_FLAG, action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="end with one JSON line")
    for flag, kind, default, text in (
        ("--members", int, 1000, "connections in the room (one shard)"),
        ("--reactions", int, 100, "reactions a second on the one message"),
        ("--seconds", int, 10, "how long the reactions go on"),
        ("--latency-ms", float, 20.0, "how long @connections takes to answer a post"),
        ("--threads", int, 4, "react invocations at once (concurrent Lambdas)"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=text)
    args = parser.parse_args()
    if args.serve_endpoint:
        serve_endpoint(args.latency_ms / 1000)
        return
    result = run(args)
    print(f"{result['members']} members, {result['reactions_per_second_achieved']} "
          f"reactions/s for {result['seconds']} s: {result['posts']} posts "
          f"({result['posts_per_member_per_second']} per member per second), at most "
          f"{result['events_per_connection_max_per_second']} reactions event(s) per "
          f"connection in any second", flush=True)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
