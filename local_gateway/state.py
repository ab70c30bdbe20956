"""Saved state: the tables and the open connections, kept across restarts.

moto keeps everything in memory. On shutdown, and every few seconds while invocations
write, every table is read back (``LocalDynamoDB.dump``) and written to
``<state-dir>/state.json`` through a temp file, fsync and ``os.replace``, so a crash
leaves the previous complete file. On start the items are batch-written back. A corrupt
file is moved aside with a clear message and the gateway starts empty rather than
crash-looping.

The file also lists the connections whose ``$disconnect`` had not run when it was
saved. After a crash (SIGKILL, a power cut) their sockets are gone but the handlers'
records of them are not: API Gateway always runs ``$disconnect``, so the next start runs
it for them (``StateKeeper.recover``), one at a time, in the background, while the
gateway already serves new clients. All at once, as before, a crash under load (114
connections in one room) cost 114 x 114 posts and deletes at the same moment: each
``$disconnect`` tells the room, and each finds the other dead members gone (410) and
removes them. They ran past their 10 s timeout, and new clients' frames failed with
``internal`` meanwhile. One at a time, the first ``$disconnect`` removes the room's dead
members and the rest find nothing left to do: the work is linear, no invocation has
more than one room's worth of it, and live traffic never waits behind more than one
recovery invocation. Connections not recovered when the gateway stops again stay in the
state file for the next start.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from local_gateway.dynamodb import LocalDynamoDB
from local_gateway.events import ConnectionInfo
from local_gateway.stage import ABNORMAL, Stage

log = logging.getLogger("local_gateway")

STATE_FILE = "state.json"
STATE_FORMAT = "serverless-chat-local-state/1"


def encode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """A low-level item as JSON: binary (B/BS) values become base64 text."""
    return _map_binary(item, lambda raw: base64.b64encode(raw).decode("ascii"))


def decode_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``encode_item``."""
    return _map_binary(item, base64.b64decode)


def _map_binary(item: Mapping[str, Any], convert: Callable[[Any], Any]) -> dict[str, Any]:
    """Apply ``convert`` to every binary value of an item, inside maps and lists too."""

    def walk(value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out = {}
        for kind, inner in value.items():
            if kind == "B":
                out[kind] = convert(inner)
            elif kind == "BS":
                out[kind] = [convert(b) for b in inner]
            elif kind == "M":
                out[kind] = {k: walk(v) for k, v in inner.items()}
            elif kind == "L":
                out[kind] = [walk(v) for v in inner]
            else:
                out[kind] = inner
        return out

    return {name: walk(value) for name, value in item.items()}



@dataclass
class SavedState:
    """What a state file holds: the tables, and the connections open when it was saved."""

    tables: dict[str, list[dict[str, Any]]]
    # Connections still open at the last save: after a crash their $disconnect never ran,
    # so the next start runs it (``ConnectionInfo`` fields).
    open_connections: list[dict[str, Any]] = field(default_factory=list)


def save_state(
    state_dir: Path,
    tables: Mapping[str, list[dict[str, Any]]],
    open_connections: Iterable[Mapping[str, Any]] = (),
) -> Path:
    """Write the state file atomically: temp file in the same directory, fsync, rename."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    document = {
        "format": STATE_FORMAT,
        "saved_at": time.time(),
        "tables": dict(tables),
        "open_connections": [dict(c) for c in open_connections],
    }
    fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, ensure_ascii=False, separators=(",", ":"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_state(state_dir: Path) -> SavedState | None:
    """The saved state, or None (with a clear log line) when there is nothing usable.

    A corrupt file is renamed ``state.json.corrupt-<time>`` (kept for inspection, and
    out of the way so the next start does not trip over it again).
    """
    path = state_dir / STATE_FILE
    if not path.exists():
        log.info("No saved state in %s: starting with empty tables.", path)
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
            raise ValueError(f"not a {STATE_FORMAT} document")
        tables = document["tables"]
        if not isinstance(tables, dict) or not all(
            isinstance(items, list) and all(isinstance(i, dict) for i in items)
            for items in tables.values()
        ):
            raise ValueError("'tables' must map table names to lists of items")
    except (OSError, ValueError, KeyError) as exc:
        aside = path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
        try:
            path.replace(aside)
            where = f"moved to {aside}"
        except OSError:
            where = "left in place"
        log.warning(
            "Saved state %s is unreadable (%s); %s. Starting with empty tables.",
            path, exc, where,
        )
        return None
    connections = document.get("open_connections")
    if not isinstance(connections, list) or not all(isinstance(c, dict) for c in connections):
        connections = []
    return SavedState(tables, connections)


class StateKeeper:
    """Loads the state at start, saves it while the gateway runs and when it stops."""

    def __init__(
        self, state_dir: Path, dynamodb: LocalDynamoDB, stage: Stage, interval_s: float
    ) -> None:
        self.state_dir = state_dir
        self.dynamodb = dynamodb
        self.stage = stage
        self.interval_s = interval_s
        self.dirty = False
        self._lock = asyncio.Lock()
        self._autosave: asyncio.Task[None] | None = None

    def mark_dirty(self) -> None:
        self.dirty = True

    def load(self) -> list[ConnectionInfo]:
        """Restore the tables (blocking); return the connections left open last time."""
        saved = load_state(self.state_dir)
        if saved is None:
            return []
        try:
            count = self.dynamodb.restore(
                {name: [decode_item(i) for i in items] for name, items in saved.tables.items()}
            )
        except Exception as exc:
            # Valid JSON but items DynamoDB refuses: treat like a corrupt file.
            path = self.state_dir / STATE_FILE
            aside = path.with_name(f"{STATE_FILE}.corrupt-{int(time.time())}")
            with contextlib.suppress(OSError):
                path.replace(aside)
            log.warning("Saved state %s could not be loaded (%s); moved to %s. Starting with "
                        "empty tables.", path, exc, aside)
            self.dynamodb.recreate_tables()
            return []
        log.info("Restored %d items from %s.", count, self.state_dir)
        orphans = []
        for fields in saved.open_connections:
            with contextlib.suppress(TypeError):
                orphans.append(ConnectionInfo(**fields))
        return orphans

    def start(self) -> None:
        self._autosave = asyncio.create_task(self._autosave_loop())

    def recover(self, orphans: list[ConnectionInfo]) -> asyncio.Task[int] | None:
        """Run ``$disconnect`` for connections a crash left open, one at a time (see the
        module docstring); returns the task doing it."""
        if not orphans:
            return None
        log.warning("%d connection(s) were open when the gateway last stopped without "
                    "closing them: running their $disconnect, one at a time.", len(orphans))
        for info in orphans:
            self.stage.unfinished[info.connection_id] = info  # until its $disconnect ran
        return self.stage.spawn(self._recover(orphans))

    async def _recover(self, orphans: list[ConnectionInfo]) -> int:
        done = 0
        for info in orphans:
            if self.stage.stopping:
                break  # still in stage.unfinished: saved for the next start
            await self.stage.disconnect(info, *ABNORMAL)
            done += 1
        log.info("Ran $disconnect for %d of %d connection(s) left open by the last run.",
                 done, len(orphans))
        return done

    async def stop(self) -> None:
        if self._autosave is not None:
            self._autosave.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._autosave
        await self.save()

    async def save(self) -> Path | None:
        async with self._lock:
            self.dirty = False
            loop = asyncio.get_running_loop()
            # Connections whose $disconnect has not run, before and after the dump: one
            # that ends during the dump gets a harmless second $disconnect on restart, one
            # that starts during the dump is not missed.
            unfinished = dict(self.stage.unfinished)
            try:
                await loop.run_in_executor(None, self.dynamodb.sweep_expired)
                tables = await loop.run_in_executor(None, self.dynamodb.dump)
                unfinished.update(self.stage.unfinished)
                encoded = {name: [encode_item(i) for i in items] for name, items in tables.items()}
                open_connections = [asdict(info) for info in unfinished.values()]
                return await loop.run_in_executor(
                    None, save_state, self.state_dir, encoded, open_connections)
            except Exception:
                self.dirty = True
                log.exception("Could not save state to %s", self.state_dir)
                return None

    async def _autosave_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self.dirty:
                await self.save()
