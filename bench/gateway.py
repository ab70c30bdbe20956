"""Local gateway bench: message round trips through ``python -m local_gateway``.

Starts the gateway exactly as ``make dev`` does (a subprocess, in-memory state), joins
rooms of 1 and of ``--room`` members over real WebSockets, and sends ``--messages``
``new_message`` frames one after the other from one member. For each frame it times
send -> the sender's echo, and send -> the last member's copy. The 1-member room is the
baseline for the same run: the ratio is what fanning out to the room costs here.

    .venv/bin/python bench/gateway.py [--room 20] [--messages 50]

Prints one JSON line. Absolute numbers include moto (DynamoDB) and process hops on a
shared machine: read the ratio, not the milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import websockets  # noqa: E402

from bench.machine import machine  # noqa: E402
from local_gateway.testing import GatewayProcess  # noqa: E402


async def _until(ws: websockets.ClientConnection, text: str) -> None:
    while True:
        event = json.loads(await ws.recv())
        if event.get("type") == "message" and event.get("text") == text:
            return


async def room_round_trips(url: str, room: str, members: int, messages: int) -> dict:
    sockets = []
    for n in range(members):
        query = f"?username=u{n}&room={quote(room)}"
        sockets.append(await websockets.connect(url + query, max_size=None))
    sender = sockets[0]
    echo_ms, all_ms = [], []
    started = time.perf_counter()
    for n in range(messages):
        text = f"{room} {n}"
        t0 = time.perf_counter()
        await sender.send(json.dumps({"action": "new_message", "text": text}))
        waits = [asyncio.ensure_future(_until(ws, text)) for ws in sockets]
        await asyncio.wait_for(asyncio.shield(waits[0]), timeout=30)
        echo_ms.append((time.perf_counter() - t0) * 1000)
        await asyncio.wait_for(asyncio.gather(*waits), timeout=30)
        all_ms.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - started
    for ws in sockets:
        await ws.close()
    return {
        "members": members,
        "echo_p50_ms": round(statistics.median(echo_ms), 1),
        "all_p50_ms": round(statistics.median(all_ms), 1),
        "all_p95_ms": round(sorted(all_ms)[int(len(all_ms) * 0.95) - 1], 1),
        "deliveries_per_s": round(messages * members / elapsed, 1),
    }


async def run(room: int, messages: int) -> dict:
    # One sender sends every frame: lift the 10-per-10-s rate limit for the run.
    with GatewayProcess(args=["--rate-limit-messages", "1000000"]) as gw:
        url = gw.websocket_url
        # Warm every function's worker (a cold start is not what this measures).
        await room_round_trips(url, "warmup", 2, 3)
        alone = await room_round_trips(url, "alone", 1, messages)
        crowd = await room_round_trips(url, "crowd", room, messages)
        startup_s = round(gw.startup_s, 2)
    return {
        "bench": "gateway",
        "machine": machine(),
        "gateway_startup_s": startup_s,
        "messages": messages,
        "rooms": [alone, crowd],
        "fanout_cost_ratio": round(crowd["all_p50_ms"] / alone["all_p50_ms"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--room", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.room, args.messages))))


if __name__ == "__main__":
    main()
