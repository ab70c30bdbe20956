"""The local tables on disk: a snapshot and a write-ahead journal, as a database keeps them.

``<state-dir>/state.json`` is a snapshot: every item of every table, by logical id, and
the number of the last journal segment it includes. ``<state-dir>/journal/<n>.log`` are
the segments: every DynamoDB write moto accepted since, in the order moto applied them,
each appended before moto's answer goes back to the caller (``local_gateway.dynamodb``
does it, in moto's process). On start the snapshot is loaded and the segments after it
are replayed in order; the writes the functions make are deterministic given their
order (ids, times and TTLs come from the functions), so the replay gives the same
tables. Now and then the journal is compacted into a new snapshot (a copy of moto's
process writes it, temp file, fsync and rename; the segments it includes are then
deleted).

Durability: a record is written to the file (``os.write``, one call) before the answer,
so it survives the end of either process (SIGKILL, OOM); the file is fsynced once a
second while it is written, at every compaction and when moto's process exits, so a
power cut loses at most about the last second. A record cut short by a crash in the
middle of its write (the last of the last segment) is the one damage tolerated: it was
never answered, so it is dropped with a warning. A snapshot or a segment that is cut
short or corrupt anywhere else is refused (``StateError``), never half loaded.

Record format, one per line: ``<crc32 of the rest, 8 hex> <X-Amz-Target> <JSON body>``;
the body's line breaks (whitespace outside JSON strings, which escape theirs) become
spaces. Each segment starts with a JSON header mapping the run's physical table names
(they change from run to run) to logical ids.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

log = logging.getLogger("local_gateway")

STATE_FILE = "state.json"
STATE_FORMAT = "serverless-chat-local-state/1"
JOURNAL_DIR = "journal"
JOURNAL_FORMAT = "serverless-chat-local-journal/1"
LOCK_FILE = ".lock"

# The DynamoDB operations that change a table, as their X-Amz-Target names them. PartiQL
# (ExecuteStatement...) names tables inside its statements: the functions never use it,
# and it is not journaled.
WRITE_OPERATIONS = frozenset({
    "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
})
SYNC_INTERVAL_S = 1.0


class StateError(Exception):
    """The saved state cannot be used as it is: the message says which file and what to do."""


class Snapshot(NamedTuple):
    tables: dict[str, list[dict[str, Any]]]  # logical id -> items (DynamoDB JSON, as on the wire)
    open_connections: list[dict[str, Any]]
    journal: int  # the last segment included (0: none)


class Record(NamedTuple):
    target: str  # e.g. DynamoDB_20120810.PutItem
    body: bytes


class Segment(NamedTuple):
    number: int
    path: Path
    tables: dict[str, str]  # physical name -> logical id
    records: list[Record]


def operation(target: str) -> str:
    return target.rpartition(".")[2]


# -- snapshot -------------------------------------------------------------------------


def _refuse(path: Path, problem: str) -> StateError:
    return StateError(
        f"Saved state {path} is {problem}: not starting, so that nothing in it is lost. "
        f"Move it aside (mv {path} {path}.bad) to start with empty tables, or put back a "
        f"good copy.")


def read_snapshot(state_dir: Path) -> Snapshot | None:
    """The snapshot in ``state_dir``, None if there is none; ``StateError`` if unusable."""
    path = state_dir / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise _refuse(path, f"unreadable ({exc})") from exc
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise _refuse(path, f"cut short or corrupt ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != STATE_FORMAT:
        raise _refuse(path, f"not a {STATE_FORMAT} file")
    tables = document.get("tables")
    if not isinstance(tables, dict) or not all(
        isinstance(items, list) and all(isinstance(i, dict) for i in items)
        for items in tables.values()
    ):
        raise _refuse(path, "corrupt ('tables' must map table names to lists of items)")
    journal = document.get("journal", 0)
    if not isinstance(journal, int) or journal < 0:
        raise _refuse(path, "corrupt ('journal' must be a segment number)")
    connections = document.get("open_connections")
    if not isinstance(connections, list) or not all(isinstance(c, dict) for c in connections):
        connections = []
    return Snapshot(tables, connections, journal)


def write_snapshot(state_dir: Path, snapshot: Snapshot) -> Path:
    """Write ``state.json`` atomically: temp file in the same directory, fsync, rename."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    document = {
        "format": STATE_FORMAT,
        "saved_at": time.time(),
        "journal": snapshot.journal,
        "tables": snapshot.tables,
        "open_connections": snapshot.open_connections,
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
    _fsync_dir(state_dir)
    return path


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


# -- journal segments -----------------------------------------------------------------


def segment_path(state_dir: Path, number: int) -> Path:
    return state_dir / JOURNAL_DIR / f"{number:010d}.log"


def segment_numbers(state_dir: Path) -> list[int]:
    directory = state_dir / JOURNAL_DIR
    if not directory.is_dir():
        return []
    numbers = []
    for path in directory.glob("*.log"):
        if path.stem.isdigit():
            numbers.append(int(path.stem))
    return sorted(numbers)


def encode_record(target: str, body: bytes) -> bytes:
    rest = target.encode("ascii") + b" " + body.replace(b"\r", b" ").replace(b"\n", b" ")
    return b"%08x %s\n" % (zlib.crc32(rest), rest)


def _decode_line(line: bytes) -> Record | None:
    """The record on ``line`` (without its newline), None if it is damaged."""
    crc, _, rest = line.partition(b" ")
    try:
        if len(crc) != 8 or int(crc, 16) != zlib.crc32(rest):
            return None
    except ValueError:
        return None
    target, _, body = rest.partition(b" ")
    return Record(target.decode("ascii", "replace"), body)


def read_segment(path: Path, *, last: bool) -> tuple[Segment, int | None]:
    """The segment at ``path`` and, if its last record is torn (only allowed when it is
    the ``last`` segment), the length to truncate it to."""
    number = int(path.stem)
    data = path.read_bytes()
    lines = data.split(b"\n")
    # A file that ends with a newline splits into a last empty piece: nothing torn.
    tail = lines.pop()
    header_line = lines[0] if lines else b""
    try:
        header = json.loads(header_line)
        if header.get("format") != JOURNAL_FORMAT or not isinstance(header.get("tables"), dict):
            raise ValueError("not a journal header")
    except (ValueError, AttributeError) as exc:
        if last and len(lines) <= 1:
            # Cut short while its header was written: it holds no record.
            return Segment(number, path, {}, []), 0
        raise StateError(
            f"Journal {path} has no valid header ({exc}): not starting. Move the "
            f"journal directory aside to start from the snapshot alone (writes after it "
            f"are then lost).") from exc
    records: list[Record] = []
    offset = len(header_line) + 1
    for index, line in enumerate(lines[1:], start=1):
        record = _decode_line(line)
        if record is None:
            if last and index == len(lines) - 1 and not tail:
                return Segment(number, path, header["tables"], records), offset
            raise StateError(
                f"Journal {path} is corrupt at byte {offset} (record {index}): not "
                f"starting. Move the journal directory aside to start from the snapshot "
                f"alone (writes after it are then lost).")
        records.append(record)
        offset += len(line) + 1
    if tail:
        if not last:
            raise StateError(
                f"Journal {path} ends in the middle of a record but is not the last "
                f"segment: not starting. Move the journal directory aside to start from "
                f"the snapshot alone (writes after it are then lost).")
        return Segment(number, path, header["tables"], records), offset
    return Segment(number, path, header["tables"], records), None


def read_journal(state_dir: Path, after: int,
                 notes: list[str] | None = None) -> Iterator[Segment]:
    """The segments after ``after``, in order; a torn last record is cut off the file
    (and said so in ``notes``)."""
    numbers = [n for n in segment_numbers(state_dir) if n > after]
    for i, number in enumerate(numbers):
        path = segment_path(state_dir, number)
        segment, truncate_to = read_segment(path, last=i == len(numbers) - 1)
        if truncate_to is not None:
            note = (f"Journal {path}: its last record was cut short (a crash in the middle "
                    f"of writing it, before it was answered): dropped.")
            if notes is None:
                log.warning("%s", note)
            else:
                notes.append(note)
            if truncate_to == 0:  # not even its header: nothing in it
                path.unlink()
                continue
            with open(path, "r+b") as f:
                f.truncate(truncate_to)
                os.fsync(f.fileno())
        yield segment


def rewrite_tables(target: str, body: bytes, names: Mapping[str, str]) -> bytes | None:
    """``body`` with its table names mapped through ``names``; None if one is unknown."""
    document = json.loads(body)

    def new(name: Any) -> str:
        if name not in names:
            raise KeyError(name)
        return names[name]

    try:
        op = operation(target)
        if op == "BatchWriteItem":
            document["RequestItems"] = {
                new(name): requests for name, requests in document["RequestItems"].items()}
        elif op == "TransactWriteItems":
            for entry in document["TransactItems"]:
                for inner in entry.values():
                    inner["TableName"] = new(inner["TableName"])
        else:
            document["TableName"] = new(document["TableName"])
    except (KeyError, TypeError, AttributeError):
        return None
    return json.dumps(document).encode()


class Journal:
    """The segment being written, in moto's process: ``append`` before every answer."""

    def __init__(self, state_dir: Path, tables: Mapping[str, str], number: int) -> None:
        self.state_dir = state_dir
        self.tables = dict(tables)  # physical name -> logical id
        self.number = number
        self._sync_lock = threading.Lock()
        self._written = False
        self._closed = False
        (state_dir / JOURNAL_DIR).mkdir(parents=True, exist_ok=True)
        self._fd = self._open(number)
        threading.Thread(target=self._sync_every_second, daemon=True,
                         name="journal-sync").start()

    def _open(self, number: int, *, sync: bool = True) -> int:
        path = segment_path(self.state_dir, number)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o600)
        header = {"format": JOURNAL_FORMAT, "tables": self.tables}
        os.write(fd, json.dumps(header).encode() + b"\n")
        if sync:
            os.fsync(fd)
            _fsync_dir(path.parent)
        return fd

    def journals(self, target: str, body: bytes) -> bool:
        """Whether a request moto accepted must be journaled (a write to our tables)."""
        if operation(target) not in WRITE_OPERATIONS or not target.startswith("DynamoDB_"):
            return False
        return any(name.encode() in body for name in self.tables)

    def append(self, target: str, body: bytes) -> None:
        record = encode_record(target, body)
        written = os.write(self._fd, record)
        while written < len(record):  # a regular file takes it whole; be sure anyway
            written += os.write(self._fd, record[written:])
        self._written = True

    def rotate(self) -> tuple[int, int]:
        """Start the next segment (no disk wait: moto's requests wait while this runs);
        returns the number of the one closed and its descriptor, for ``finish``."""
        new_fd = self._open(self.number + 1, sync=False)
        with self._sync_lock:
            old_fd, closed = self._fd, self.number
            self.number += 1
            self._fd = new_fd
            self._written = True
        return closed, old_fd

    def finish(self, old_fd: int) -> None:
        """After ``rotate``, off the requests' path: the old segment synced and closed,
        the new one's header and name synced."""
        try:
            os.fsync(old_fd)
        finally:
            os.close(old_fd)
        self.sync()
        _fsync_dir(self.state_dir / JOURNAL_DIR)

    def sync(self) -> None:
        """fsync what was appended (from any thread; appends go on meanwhile)."""
        with self._sync_lock:
            if self._closed:
                return
            self._written = False
            fd = os.dup(self._fd)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def close(self) -> None:
        with self._sync_lock:
            if not self._closed:
                self._closed = True
                os.fsync(self._fd)
                os.close(self._fd)

    def _sync_every_second(self) -> None:
        while not self._closed:
            time.sleep(SYNC_INTERVAL_S)
            if self._written:
                with contextlib.suppress(OSError):
                    self.sync()


def delete_segments(state_dir: Path, through: int) -> None:
    for number in segment_numbers(state_dir):
        if number <= through:
            segment_path(state_dir, number).unlink(missing_ok=True)


def expired_keys(items: Iterable[Mapping[str, Any]], ttl_attribute: str, keys: tuple[str, str],
                 now: float) -> list[dict[str, Any]]:
    """The keys of the items whose TTL attribute (a number of seconds) is before ``now``."""
    out = []
    for item in items:
        value = item.get(ttl_attribute)
        if isinstance(value, dict) and "N" in value:
            try:
                expired = float(value["N"]) < now
            except ValueError:
                continue
            if expired:
                out.append({k: item[k] for k in keys if k in item})
    return out
