"""End-to-end load: many chat clients over real WebSockets, every delivery checked.

    .venv/bin/python bench/e2e.py --json --clients 50 --rooms 1 --rate-per-client 0.4 --seconds 25
    .venv/bin/python bench/e2e.py --json --url wss://<api>.execute-api.<region>.amazonaws.com/prod

Without ``--url`` it starts ``python -m local_gateway`` itself and loads it: with
``--state`` exactly as ``make dev`` runs it (its tables kept in a fresh ``--state-dir``),
else ``--no-state`` (in memory); with ``--url`` it loads whatever stage is
there, e.g. a deployed one (mind the bill and the stage's throttle: 50 rps by default).
Never pointed at AWS by the tests.

The load: ``--clients`` connections spread over ``--rooms`` rooms (client ``i`` in room
``i % rooms``), all connected (and their presence announcements received) before the
clock starts, and a ``--warmup`` round (same rate, unmeasured) has arrived. Then each
sends one ``new_message`` every ``1 / rate`` seconds for ``--seconds``, starting at a
random phase, with a text and ``client_id`` unique to that message. Every client reads
every event; the bench checks that each message reached each member of its room once
(``duplicates``: a second copy; ``cross_room``: a copy in another room) and times send
-> receipt on one clock (this process's). Deliveries still missing ``--grace`` seconds
after the last send are lost. Latency includes both ends' scheduling on a shared
machine: compare with ``bench/flask_baseline.py`` run in the same minute, not across machines.

Prints one JSON object (``--json``) or a readable summary. ``run_load`` is the driver;
``tests/gateway/test_load.py`` calls it with a short load and asserts the counts, never
a latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The chat's per-connection limit is 10 new_message frames per 10 s: a rate above
# 1/s per client is refused by the chat itself (rate_limited), not by the host.
CHAT_RATE_LIMIT_PER_S = 1.0
# What API Gateway (and the local stage) sends a client whose frame it throttled.
THROTTLED = "Too Many Requests"


@dataclass
class LoadResult:
    """What a load run saw. ``expected`` = every message sent x the members of its room."""

    clients: int
    rooms: int
    sent: int = 0
    delivered: int = 0
    expected: int = 0
    duplicates: int = 0
    cross_room: int = 0
    late: int = 0  # arrived after the grace period: counted as lost
    throttled: int = 0  # frames the stage answered "Too Many Requests"
    errors: dict[str, int] = field(default_factory=dict)  # chat error events by code
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.expected - self.delivered

    def percentile(self, p: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))
        return round(ordered[index], 1)

    def summary(self) -> dict[str, Any]:
        return {
            "bench": "e2e",
            "clients": self.clients,
            "rooms": self.rooms,
            "sent": self.sent,
            "delivered": self.delivered,
            "expected": self.expected,
            "lost": self.lost,
            "duplicates": self.duplicates,
            "cross_room": self.cross_room,
            "throttled": self.throttled,
            "errors": dict(self.errors),
            "p50_ms": self.percentile(50),
            "p95_ms": self.percentile(95),
            "p99_ms": self.percentile(99),
            "max_ms": self.percentile(100),
            "seconds": round(self.seconds, 1),
        }


class Client:
    """One connection, whatever the transport: send a message, report what arrives."""

    async def send_message(self, text: str, client_id: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError


# A transport opens client ``index`` as ``username`` in ``room`` and calls
# ``on_event(index, event)`` for every event it receives (from the same event loop).
OnEvent = Callable[[int, dict[str, Any]], None]
Connect = Callable[[int, str, str, OnEvent], Awaitable[Client]]


class _Tracker:
    def __init__(self, result: LoadResult, room_of: list[str], members: dict[str, int]) -> None:
        self.result = result
        self.room_of = room_of
        self.members = members
        self.sent_at: dict[str, tuple[float, str]] = {}  # text -> (send time, room)
        self.seen: set[tuple[int, str]] = set()
        self.presence: list[int] = [0] * len(room_of)
        self.all_in = asyncio.Event()
        self.closed_at: float | None = None  # after this, arrivals are late
        self.warm_prefix = "\0"  # texts of the warm-up round: delivered, not measured
        self.warm_delivered = 0

    def on_event(self, index: int, event: dict[str, Any]) -> None:
        now = time.perf_counter()
        r = self.result
        kind = event.get("type")
        if kind == "message":
            text = event.get("text", "")
            sent = self.sent_at.get(text)
            if sent is None:
                if text.startswith(self.warm_prefix):
                    self.warm_delivered += 1
                return  # not measured: the warm-up, or not ours
            key = (index, text)
            if key in self.seen:
                r.duplicates += 1
                return
            self.seen.add(key)
            if sent[1] != self.room_of[index]:
                r.cross_room += 1
                return
            if self.closed_at is not None and now > self.closed_at:
                r.late += 1
                return
            r.delivered += 1
            r.latencies_ms.append((now - sent[0]) * 1000)
            if r.delivered >= r.expected and self.closed_at is not None:
                self.all_in.set()
        elif kind == "presence" and event.get("event") == "join":
            self.presence[index] += 1
        elif kind == "error":
            code = str(event.get("code"))
            r.errors[code] = r.errors.get(code, 0) + 1
        elif event.get("message") == THROTTLED and "connectionId" in event:
            r.throttled += 1


async def run_load(
    connect: Connect,
    *,
    clients: int,
    rooms: int,
    rate_per_client: float,
    seconds: float,
    grace_s: float = 20.0,
    warmup_s: float = 0.0,
    connect_concurrency: int = 10,
    seed: int | None = None,
) -> LoadResult:
    """Drive ``clients`` connections through ``connect`` and count every delivery.

    ``warmup_s``: first send at the same rate for that long, unmeasured, and wait (up to
    ``grace_s``) until those messages have all arrived: the clock then measures messaging
    in a steady state, not the joins' announcements still being delivered or the first
    cold starts (the same for every system loaded this way).
    """
    if rate_per_client <= 0 or seconds <= 0:
        raise ValueError("rate and seconds must be positive")
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:8]
    room_names = [f"load-{run}-{n}" for n in range(rooms)]
    room_of = [room_names[i % rooms] for i in range(clients)]
    members = {room: room_of.count(room) for room in room_names}
    result = LoadResult(clients=clients, rooms=rooms)
    tracker = _Tracker(result, room_of, members)

    # Connect in small waves: each $connect tells the room, as a page's would.
    opened: list[Client | None] = [None] * clients
    gate = asyncio.Semaphore(connect_concurrency)

    async def open_one(i: int) -> None:
        async with gate:
            opened[i] = await connect(i, f"u{i}", room_of[i], tracker.on_event)

    try:
        await asyncio.gather(*(open_one(i) for i in range(clients)))
        socks: list[Client] = [c for c in opened if c is not None]
        # Wait (bounded) until the join announcements have settled, so they do not mix
        # with the measured load. Joins are best effort: a client never misses one it
        # could get, but order and timing vary, so this only waits, it never asserts.
        settle_deadline = time.perf_counter() + 5 + clients * 0.05
        while time.perf_counter() < settle_deadline:
            before = sum(tracker.presence)
            await asyncio.sleep(1.0)
            if sum(tracker.presence) == before:
                break

        period = 1 / rate_per_client

        async def sender(i: int, stop_at: float, warm: bool) -> None:
            await asyncio.sleep(rng.uniform(0, period))
            seq = 0
            next_at = time.perf_counter()
            while next_at < stop_at:
                if warm:
                    text = f"{tracker.warm_prefix}{i}:{seq}"
                    warm_expected[0] += members[room_of[i]]
                else:
                    text = f"{run}:{i}:{seq}"
                    tracker.sent_at[text] = (time.perf_counter(), room_of[i])
                    result.sent += 1
                    result.expected += members[room_of[i]]
                await socks[i].send_message(text, f"{'w' if warm else 'c'}-{i}-{seq}")
                seq += 1
                next_at += period
                await asyncio.sleep(max(0.0, next_at - time.perf_counter()))

        warm_expected = [0]
        if warmup_s > 0:
            tracker.warm_prefix = f"{run}:warm:"
            warm_end = time.perf_counter() + warmup_s
            await asyncio.gather(*(sender(i, warm_end, True) for i in range(clients)))
            drained = time.perf_counter() + grace_s
            while tracker.warm_delivered < warm_expected[0] and time.perf_counter() < drained:
                await asyncio.sleep(0.1)

        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*(sender(i, stop_at, False) for i in range(clients)))
        last_send = time.perf_counter()
        tracker.closed_at = last_send + grace_s
        if result.delivered < result.expected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(tracker.all_in.wait(), timeout=grace_s)
        result.seconds = time.perf_counter() - started
        # Anything still arriving now is late; stop counting before closing.
        tracker.closed_at = 0.0
    finally:
        await asyncio.gather(*(c.close() for c in opened if c is not None),
                             return_exceptions=True)
    return result


# -- the chat over plain WebSockets (local gateway or API Gateway) ------------------------


class WebSocketClient(Client):
    def __init__(self, ws: Any, index: int, on_event: OnEvent) -> None:
        self.ws = ws
        self.reader = asyncio.get_running_loop().create_task(self._read(index, on_event))

    async def _read(self, index: int, on_event: OnEvent) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                on_event(index, json.loads(raw))

    async def send_message(self, text: str, client_id: str) -> None:
        await self.ws.send(json.dumps(
            {"action": "new_message", "text": text, "client_id": client_id}))

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.ws.close()
        self.reader.cancel()


def websocket_transport(url: str) -> Connect:
    """Clients of the chat's WebSocket API at ``url`` (``ws://…/local``, ``wss://…/prod``)."""
    import websockets

    async def connect(index: int, username: str, room: str, on_event: OnEvent) -> Client:
        query = f"?username={quote(username)}&room={quote(room)}"
        ws = await websockets.connect(url + query, max_size=None, open_timeout=60,
                                      ping_interval=None, compression=None)
        return WebSocketClient(ws, index, on_event)

    return connect


async def load_local_gateway(
    *, gateway_args: list[str] | None = None, state: bool = False, **load: Any
) -> tuple[LoadResult, str]:
    """``run_load`` against a fresh ``python -m local_gateway`` (``--no-state``, or with
    ``state`` its tables kept in a temporary ``--state-dir`` as ``make dev`` keeps them in
    ``.local``); returns the result and the gateway's output."""
    import tempfile

    from local_gateway.testing import GatewayProcess

    with contextlib.ExitStack() as stack:
        state_dir = Path(stack.enter_context(tempfile.TemporaryDirectory())) if state else None
        gw = stack.enter_context(GatewayProcess(state_dir=state_dir, args=gateway_args or []))
        result = await run_load(websocket_transport(gw.websocket_url), **load)
    # After it stopped: its last lines (what the event source did, "Stopped (…)") too.
    return result, gw.output


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--rooms", type=int, default=1)
    p.add_argument("--rate-per-client", type=float, default=0.4,
                   help="new_message frames per second per client (default 0.4)")
    p.add_argument("--seconds", type=float, default=25)
    p.add_argument("--grace", type=float, default=20,
                   help="seconds after the last send before a missing delivery is lost")
    p.add_argument("--warmup", type=float, default=5,
                   help="seconds of unmeasured sending first, until it has all arrived "
                        "(default 5; 0: measure from the first message)")
    p.add_argument("--url", help="load this stage (e.g. wss://…/prod) instead of starting "
                                 "python -m local_gateway")
    p.add_argument("--state", action="store_true",
                   help="keep the gateway's tables in a temporary --state-dir, as make dev "
                        "does (default: --no-state)")
    p.add_argument("--gateway-arg", action="append", default=[], metavar="ARG",
                   help="extra argument for python -m local_gateway (repeatable)")
    p.add_argument("--gateway-log", type=Path, metavar="PATH",
                   help="write the local gateway's output there (one line per invocation)")
    p.add_argument("--seed", type=int)
    return p


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    if a.rate_per_client > CHAT_RATE_LIMIT_PER_S:
        print(f"note: more than {CHAT_RATE_LIMIT_PER_S:g} message/s per client is over the "
              "chat's own rate limit (rate_limited errors)", file=sys.stderr)
    load = {"clients": a.clients, "rooms": a.rooms, "rate_per_client": a.rate_per_client,
            "seconds": a.seconds, "grace_s": a.grace, "warmup_s": a.warmup, "seed": a.seed}
    if a.url:
        result = asyncio.run(run_load(websocket_transport(a.url), **load))
        target = a.url
    else:
        result, output = asyncio.run(load_local_gateway(
            gateway_args=a.gateway_arg, state=a.state, **load))
        if a.gateway_log:
            a.gateway_log.write_text(output, encoding="utf-8")
        target = "python -m local_gateway" + (" (state on)" if a.state else " --no-state")
    summary = {**result.summary(), "target": target}
    if a.json:
        from bench.machine import machine

        print(json.dumps({**summary, "machine": machine()}))
    else:
        for key, value in summary.items():
            print(f"{key:>12}: {value}")
    return 0 if result.lost == 0 and not result.duplicates and not result.cross_room else 1


if __name__ == "__main__":
    sys.exit(main())
