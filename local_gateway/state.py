"""Saved state: the tables and the open connections, kept across restarts.

The tables are kept as a database keeps them (``local_gateway.journal``): every write
moto accepted is in ``<state-dir>/journal/`` before its answer goes back, and now and
then (every ``--save-interval`` seconds while something was written, and when the
gateway stops) the journal is compacted into ``<state-dir>/state.json`` by a copy of
moto's process, while moto goes on answering the functions. On start the snapshot is
loaded and the journal replayed. So a message the sender saw confirmed survives any
stop: Ctrl-C, SIGTERM or SIGHUP to the gateway or its process group, SIGKILL of the
gateway or of moto's process, an OOM kill. A state file that is cut short or corrupt is
refused with a message naming it and what to do (``StateError``); the gateway never
starts with half the tables.

The snapshot also lists the connections whose ``$disconnect`` had not run when it was
written. After a crash (SIGKILL, a power cut) their sockets are gone but the handlers'
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
import contextlib
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from local_gateway.dynamodb import LocalDynamoDB
from local_gateway.events import ConnectionInfo
from local_gateway.journal import STATE_FILE, STATE_FORMAT, StateError
from local_gateway.stage import ABNORMAL, Stage

__all__ = ["STATE_FILE", "STATE_FORMAT", "StateError", "StateKeeper"]

log = logging.getLogger("local_gateway")


class StateKeeper:
    """Loads the state at start, compacts it while the gateway runs and when it stops."""

    def __init__(
        self, state_dir: Path, dynamodb: LocalDynamoDB, stage: Stage, interval_s: float
    ) -> None:
        self.state_dir = state_dir
        self.dynamodb = dynamodb
        self.stage = stage
        self.interval_s = interval_s
        self.dirty = False
        self._lock = asyncio.Lock()
        self._opened = False  # never write over a state that could not be loaded
        self._autosave: asyncio.Task[None] | None = None

    def mark_dirty(self) -> None:
        self.dirty = True

    def load(self) -> list[ConnectionInfo]:
        """Restore the tables (blocking); return the connections left open last time.

        Raises ``StateError`` (its message says which file and what to do) when the
        saved state cannot be used as it is."""
        result = self.dynamodb.open_state(self.state_dir)
        self._opened = True
        for note in result["notes"]:
            log.warning("%s", note)
        if result["items"] or result["replayed"]:
            log.info("Restored %d items and replayed %d journaled writes from %s.",
                     result["items"], result["replayed"], self.state_dir)
        else:
            log.info("No saved tables in %s: starting with empty tables.", self.state_dir)
        if result["failed_count"]:
            log.warning("%d journaled writes in %s did not apply again (first: %s).",
                        result["failed_count"], self.state_dir, "; ".join(result["failed"]))
        orphans = []
        for fields in result["open_connections"]:
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
        """Compact the journal into a new snapshot; its path, or None if not written
        (nothing confirmed is lost then: the journal still has every write)."""
        async with self._lock:
            if not self._opened:
                return None
            if not self.dynamodb.alive:
                log.warning("Not compacting %s: moto's process is gone. Every write it "
                            "confirmed is in %s/journal and is replayed at the next start.",
                            self.state_dir, self.state_dir)
                return None
            self.dirty = False
            # Connections whose $disconnect has not run: one that ends during the
            # snapshot gets a harmless second $disconnect on restart.
            open_connections = [asdict(info) for info in self.stage.unfinished.values()]
            loop = asyncio.get_running_loop()
            try:
                result: dict[str, Any] = await loop.run_in_executor(
                    None, self.dynamodb.snapshot, open_connections)
            except Exception as exc:
                self.dirty = True
                log.warning("Could not compact the state in %s (%s); the journal keeps "
                            "every write.", self.state_dir, exc)
                return None
            return Path(result["path"])

    async def _autosave_loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            if self.dirty:
                await self.save()
