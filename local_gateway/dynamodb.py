"""DynamoDB for the local gateway: moto's server in a process of its own, with the project's tables.

Why moto's *server* rather than ``mock_aws``: the handlers run in other processes (see
``runtime``) and reach DynamoDB the way they do on AWS, through boto3 and an
HTTP endpoint; boto3's standard ``AWS_ENDPOINT_URL_DYNAMODB`` points them here, so
handler code has no ``if local:`` branch. The tables are created from
``chat.tables.TABLES``, the same specs the CDK app reads, TTL attribute included.

Why a process of its own (``python -m local_gateway.dynamodb``), not a thread of the
gateway: under load moto was most of the gateway's CPU, and in the gateway's process
every millisecond of it held the GIL that the event loop writing frames needs. The child
is in a process group of its own and ignores SIGINT, SIGTERM and SIGHUP, so a signal to
the gateway's group (Ctrl-C, ``kill -- -<pgid>``, a closing terminal) never takes it away
while the gateway still needs it; it exits when the gateway does, whatever way that
ends, SIGKILL included (it watches its stdin, a pipe from the gateway). If it ends first
(killed), the gateway is told (``LocalDynamoDB.on_exit``) and stops.

moto's app (the one its own server serves, ``moto_fence.server_app``) runs behind
aiohttp's server: keep-alive connections and a C parser instead of werkzeug's thread and
TCP connection per request. Requests are applied one at a time (``_MOTO_LOCK``).

Durability (``local_gateway.journal``): with a state directory, every DynamoDB write
moto accepted is appended to the journal before its answer goes back; at start the
snapshot is loaded and the journal replayed (``/_local_gateway/open``); a compaction
(``/_local_gateway/snapshot``) forks this process, whose copy writes the snapshot while
this one goes on answering: a save never holds the functions' calls. Items past their TTL
are deleted after each snapshot, as DynamoDB's TTL would (moto never does).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from chat.tables import TABLES, TableSpec
from local_gateway import journal as journal_
from local_gateway import moto_fence
from local_gateway.journal import StateError

log = logging.getLogger("local_gateway")


# Dummy credentials and region: moto accepts anything, and real credentials from the
# developer's shell must never be used (the worker environment drops them).
REGION = "us-east-1"
DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # moto's dummy key
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
DYNAMODB_TARGET = "DynamoDB_20120810."
CONTROL = "/_local_gateway/"  # the gateway's own requests to this process


# moto's backends have no locks: two UpdateItem "ADD n :one" handled at once by a
# threaded server can both read n and lose an increment (seen here: 49 out of 50), and
# conditional writes and transactions can interleave the same way. DynamoDB applies each
# request to an item atomically, and the handlers rely on it (the rate limit counter,
# idempotency keys), so requests are applied one at a time; the journal's records are
# written in the same order, under the same lock. One lock per process: moto's backends
# are per process.
_MOTO_LOCK = threading.Lock()


class _MotoApp:
    """moto's answers, one request at a time, each write journaled before it is answered."""

    def __init__(self) -> None:
        self._app = moto_fence.server_app()
        self.journal: journal_.Journal | None = None

    def answer(self, environ: dict[str, Any], body: bytes,
               lock: bool = True) -> tuple[int, list[tuple[str, str]], bytes]:
        """moto's answer (status, headers, body) to the request ``environ`` describes."""
        with _MOTO_LOCK if lock else contextlib.nullcontext():
            status, headers, answer = self._call(environ)
            journal = self.journal
            if status == 200 and journal is not None:
                target = environ.get("HTTP_X_AMZ_TARGET", "")
                if journal.journals(target, body):
                    journal.append(target, body)
        return status, headers, answer

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        answer: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            answer[:] = [int(status[:3]), headers]
            return chunks.append

        result = self._app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = answer
        return status, headers, b"".join(chunks)

    def dynamodb(self, operation: str, request: dict[str, Any] | bytes, *,
                 lock: bool = True) -> tuple[int, dict[str, Any]]:
        """A DynamoDB request made in this process (restore, replay, snapshot, TTL)."""
        body = request if isinstance(request, bytes) else json.dumps(request).encode()
        environ = _environ("POST", "/", "", body, 0, [
            ("X-Amz-Target", DYNAMODB_TARGET + operation),
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Authorization", "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/"
                              "dynamodb/aws4_request, SignedHeaders=host, Signature=local"),
        ])
        status, _, answer = self.answer(environ, body, lock=lock)
        try:
            return status, json.loads(answer or b"{}")
        except ValueError:
            return status, {"message": answer.decode(errors="replace")}


def _environ(method: str, raw_path: str, query: str, body: bytes, port: int,
             headers: Iterable[tuple[str, str]], remote: str = "127.0.0.1",
             version: str = "HTTP/1.1") -> dict[str, Any]:
    """The WSGI environ werkzeug's server would build for a request."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method,
        "SCRIPT_NAME": "",
        "PATH_INFO": urllib.parse.unquote_to_bytes(raw_path).decode("latin-1"),
        "QUERY_STRING": query,
        "RAW_URI": raw_path + (f"?{query}" if query else ""),
        "REQUEST_URI": raw_path + (f"?{query}" if query else ""),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": str(port),
        "SERVER_PROTOCOL": version,
        "REMOTE_ADDR": remote,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for raw_name, value in headers:
        name = raw_name.upper()
        if "_" in name or name == "CONTENT-LENGTH":
            continue  # werkzeug drops X_Foo (it would pass for X-Foo); length is above
        key = name.replace("-", "_")
        if key != "CONTENT_TYPE":
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


class _State:
    """The tables on disk, in moto's process: restore and replay at open, then snapshots."""

    def __init__(self, app: _MotoApp) -> None:
        self.app = app
        self.dir: Path | None = None
        self.tables: dict[str, dict[str, Any]] = {}  # logical id -> name, ttl, keys
        self._lock_fd: int | None = None
        self._snapshotting = asyncio.Lock()

    # -- open: load the snapshot, replay the journal ----------------------------------

    def open(self, state_dir: Path, tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
        self.dir, self.tables = state_dir, tables
        state_dir.mkdir(parents=True, exist_ok=True)
        self._take_lock(state_dir)
        snapshot = journal_.read_snapshot(state_dir)
        items = 0
        if snapshot is not None:
            items = self._restore(state_dir / journal_.STATE_FILE, snapshot.tables)
        after = snapshot.journal if snapshot is not None else 0
        physical = {logical: spec["name"] for logical, spec in tables.items()}
        replayed = skipped = 0
        failed: list[str] = []
        last = after
        notes: list[str] = []
        for segment in journal_.read_journal(state_dir, after, notes):
            last = segment.number
            names = {old: physical[logical] for old, logical in segment.tables.items()
                     if logical in physical}
            for record in segment.records:
                body = journal_.rewrite_tables(record.target, record.body, names)
                if body is None:
                    skipped += 1
                    continue
                status, answer = self.app.dynamodb(journal_.operation(record.target), body)
                if status == 200:
                    replayed += 1
                else:
                    failed.append(f"{segment.path.name}: {answer.get('__type', status)}")
        numbers = journal_.segment_numbers(state_dir)
        self.app.journal = journal_.Journal(
            state_dir, {spec["name"]: logical for logical, spec in tables.items()},
            max([last, after, *numbers]) + 1)
        return {"items": items, "replayed": replayed, "skipped": skipped,
                "failed": failed[:3], "failed_count": len(failed), "notes": notes,
                "open_connections": snapshot.open_connections if snapshot else []}

    def _take_lock(self, state_dir: Path) -> None:
        """One gateway per state directory (and a compaction of the last run that is
        still finishing holds it too: wait for it)."""
        import fcntl

        fd = os.open(state_dir / journal_.LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + 20
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StateError(
                        f"State directory {state_dir} is in use by another local gateway: "
                        f"stop it, or give this one another --state-dir.") from None
                time.sleep(0.05)
        self._lock_fd = fd

    def _restore(self, path: Path, tables: dict[str, list[dict[str, Any]]]) -> int:
        count = 0
        for logical, items in tables.items():
            spec = self.tables.get(logical)
            if spec is None:
                log.warning("Saved state %s has a table %r this gateway does not have: "
                            "its %d items are not loaded.", path, logical, len(items))
                continue
            for start in range(0, len(items), 25):  # BatchWriteItem takes 25 at most
                request = {"RequestItems": {spec["name"]: [
                    {"PutRequest": {"Item": item}} for item in items[start:start + 25]]}}
                status, answer = self.app.dynamodb("BatchWriteItem", request, lock=True)
                if status != 200 or answer.get("UnprocessedItems"):
                    raise StateError(
                        f"Saved state {path} has items DynamoDB refuses in table {logical} "
                        f"({answer.get('message') or answer.get('__type') or status}): not "
                        f"starting, so that nothing in it is lost. Move it aside (mv {path} "
                        f"{path}.bad) to start with empty tables, or put back a good copy.")
            count += len(items)
        return count

    # -- snapshot: a forked copy writes it ---------------------------------------------

    async def snapshot(self, open_connections: list[dict[str, Any]],
                       now: float) -> dict[str, Any]:
        journal, state_dir = self.app.journal, self.dir
        if journal is None or state_dir is None:
            return {"error": "no state directory"}
        async with self._snapshotting:
            loop = asyncio.get_running_loop()
            read_end, write_end = os.pipe()
            with _MOTO_LOCK:  # between two requests: the copy and the journal agree
                through, old_fd = journal.rotate()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
                    pid = os.fork()
                if pid == 0:  # the copy: write the snapshot, report, exit
                    os.close(read_end)
                    self._write_in_copy(write_end, state_dir, through, open_connections, now)
            os.close(write_end)
            try:
                await loop.run_in_executor(None, journal.finish, old_fd)
                data = await loop.run_in_executor(None, _read_all, read_end)
            finally:
                os.close(read_end)
                await loop.run_in_executor(None, os.waitpid, pid, 0)
            try:
                result = json.loads(data)
            except ValueError:
                result = {"error": "the process writing the snapshot ended without a word"}
            if "error" in result:
                return result  # the journal still has every segment: nothing is lost
            journal_.delete_segments(state_dir, through)
            result["expired"] = await self._delete_expired(result.pop("expired_keys"), now)
            return result

    def _write_in_copy(self, out: int, state_dir: Path, through: int,
                       open_connections: list[dict[str, Any]], now: float) -> None:
        code = 1
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 1)  # not the gateway's pipe: it watches it for our end
            tables: dict[str, list[dict[str, Any]]] = {}
            expired: dict[str, list[dict[str, Any]]] = {}
            for logical, spec in self.tables.items():
                items = tables[logical] = self._scan(spec["name"])
                if spec.get("ttl"):
                    expired[logical] = journal_.expired_keys(
                        items, spec["ttl"], tuple(spec["keys"]), now)
            path = journal_.write_snapshot(
                state_dir, journal_.Snapshot(tables, open_connections, through))
            report: dict[str, Any] = {"path": str(path), "journal": through,
                                      "items": sum(map(len, tables.values())),
                                      "expired_keys": expired}
            code = 0
        except BaseException as exc:  # reported to the gateway, then exit
            report = {"error": f"{type(exc).__name__}: {exc}"}
        finally:
            with contextlib.suppress(BaseException):
                data = json.dumps(report).encode()
                while data:
                    data = data[os.write(out, data):]
            os._exit(code)

    def _scan(self, name: str) -> list[dict[str, Any]]:
        read = moto_fence.table_items(name, REGION)  # fast, from moto's own memory
        if read is not None:
            return read
        items: list[dict[str, Any]] = []
        request: dict[str, Any] = {"TableName": name}
        while True:
            # In the forked copy: the lock was held when it was made, and nothing else runs.
            status, page = self.app.dynamodb("Scan", request, lock=False)
            if status != 200:
                raise RuntimeError(f"Scan of {name} answered {status}: {page}")
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def _delete_expired(self, keys: dict[str, list[dict[str, Any]]], now: float) -> int:
        """Delete the items the snapshot found past their TTL, as DynamoDB's TTL does, one
        request at a time between the functions' own (each journaled like theirs).

        DynamoDB deletes an expired item some time after its TTL (often within minutes,
        at worst days later) and handlers must not depend on when; deleting after the
        next snapshot is one of the legal behaviours, and it keeps the state from growing
        with rate-limit windows and idempotency keys. Conditional: an item rewritten
        since (a fresh idempotency key, say) stays."""
        deleted = 0
        for logical, table_keys in keys.items():
            spec = self.tables[logical]
            for key in table_keys:
                status, _ = self.app.dynamodb("DeleteItem", {
                    "TableName": spec["name"], "Key": key,
                    "ConditionExpression": "#ttl < :now",
                    "ExpressionAttributeNames": {"#ttl": spec["ttl"]},
                    "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
                })
                deleted += status == 200
                await asyncio.sleep(0)  # let the functions' requests in between
        return deleted


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


class _MotoServer:
    """moto's app behind aiohttp's server, with keep-alive, one request at a time.

    moto's own ``ThreadedMotoServer`` is werkzeug's development server: it answers every
    request "Connection: close" and starts a thread for each, so every DynamoDB call of
    a function paid a TCP connection, a server thread and ``http.server``'s header
    parsing. aiohttp keeps the connections boto3 pools open and parses with its C
    parser; each request becomes the WSGI environ werkzeug's server would build, for
    moto's app, called on the event loop's thread (one request at a time anyway).

    Runs in the process ``serve`` is, i.e. the child ``_MotoProcess`` starts.
    """

    def __init__(self) -> None:
        self.app = _MotoApp()
        self.state = _State(self.app)
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        path, _, query = request.raw_path.partition("?")
        version = request.version
        environ = _environ(
            request.method, path, query, body, self.port,
            ((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
            request.remote or "", f"HTTP/{version.major}.{version.minor}")
        status, headers, answer = self.app.answer(environ, body)
        return web.Response(body=answer, status=status, headers=[
            (k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP])

    async def open_state(self, request: web.Request) -> web.Response:
        asked = await request.json()
        try:
            result = self.state.open(Path(asked["state_dir"]), asked["tables"])
        except StateError as exc:
            return web.json_response({"error": str(exc)}, status=409)
        return web.json_response(result)

    async def snapshot(self, request: web.Request) -> web.Response:
        asked = await request.json()
        result = await self.state.snapshot(asked.get("open_connections", []),
                                           float(asked.get("now") or time.time()))
        return web.json_response(result, status=500 if "error" in result else 200)

    async def serve(self, started: Any) -> None:
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
        app.router.add_post(CONTROL + "open", self.open_state)
        app.router.add_post(CONTROL + "snapshot", self.snapshot)
        app.router.add_route("*", "/{path:.*}", self.handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.port = runner.addresses[0][1]
        started(self.port)
        await asyncio.Event().wait()  # until the process exits


# What aiohttp writes itself, from the body it is given and the connection it keeps.
_HOP_BY_HOP = frozenset({"content-length", "connection", "transfer-encoding", "keep-alive"})
# Past DynamoDB's largest request (BatchWriteItem, 16 MB); aiohttp's default is 1 MB.
_MAX_REQUEST_BYTES = 32 * 1024 * 1024
# The signals the gateway handles (it stops on them, and needs this process to do so).
GATEWAY_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def serve() -> None:
    """The child's body: serve moto, print the port, exit when stdin closes."""
    for sig in GATEWAY_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    from local_gateway import logs  # sign-in tokens redacted from whatever moto writes

    logs.redact_process_output()
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    logs.filter_root_handlers()
    server = _MotoServer()
    moto_fence.install()

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.buffer.read()  # EOF: the gateway is gone, whatever way it ended
        with _MOTO_LOCK:  # not in the middle of a request: no record cut short
            if server.app.journal is not None:
                with contextlib.suppress(OSError):
                    server.app.journal.close()
            os._exit(0)  # no clean-up to wait for: everything else is in memory

    def started(port: int) -> None:
        print(f"port {port}", flush=True)
        threading.Thread(target=watch_stdin, daemon=True, name="stdin").start()

    asyncio.run(server.serve(started))


class _MotoProcess:
    """``python -m local_gateway.dynamodb`` as a child of the gateway."""

    def __init__(self, on_exit: Callable[[int | None], None] | None = None) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._stopping = False
        self._on_exit = on_exit
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local_gateway.dynamodb"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
            process_group=0,  # a signal to the gateway's group does not reach it
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode(errors="replace")
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"moto's DynamoDB did not start: {line!r}")
        self.port = int(line.split()[1])
        self.pid = self._process.pid
        threading.Thread(target=self._watch, daemon=True, name="moto-exit").start()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def _watch(self) -> None:
        assert self._process.stdout is not None
        with contextlib.suppress(Exception):
            self._process.stdout.read()  # EOF: it ended
        code = self._process.wait()
        if not self._stopping and self._on_exit is not None:
            self._on_exit(code)

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class LocalDynamoDB:
    """moto's DynamoDB on ``127.0.0.1:<free port>``, with the project's tables.

    ``on_exit(code)`` is called (from a thread) if moto's process ends before ``stop``.
    """

    def __init__(self, tables: Iterable[TableSpec] = TABLES) -> None:
        self.specs = tuple(tables)
        # Two gateways of one test process each have their own moto process, but the
        # names are what the functions see: a suffix keeps runs apart in any case.
        suffix = uuid.uuid4().hex[:8]
        self.table_names: dict[TableSpec, str] = {
            spec: f"{spec.logical_id}-local-{suffix}" for spec in self.specs
        }
        self.endpoint_url = ""
        self.on_exit: Callable[[int | None], None] | None = None
        self._server: _MotoProcess | None = None
        self._client: Any = None

    @property
    def alive(self) -> bool:
        return self._server is not None and self._server.alive

    @property
    def pid(self) -> int | None:
        return None if self._server is None else self._server.pid

    def start(self) -> str:
        import boto3

        self._server = _MotoProcess(lambda code: self.on_exit and self.on_exit(code))
        self.endpoint_url = f"http://127.0.0.1:{self._server.port}"
        self._client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        for spec in self.specs:
            create_table(self._client, spec, self.table_names[spec])
        return self.endpoint_url

    def stop(self) -> None:
        # moto's memory goes with its process (the journal is closed as it exits).
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- state ---------------------------------------------------------------------

    def open_state(self, state_dir: Path) -> dict[str, Any]:
        """Load ``state_dir``'s snapshot and replay its journal into the tables, then
        journal every write from now on; ``StateError`` if the files cannot be used."""
        tables = {
            spec.logical_id: {"name": self.table_names[spec], "ttl": spec.ttl_attribute,
                              "keys": [spec.partition_key, spec.sort_key]}
            for spec in self.specs
        }
        status, answer = self._control(
            "open", {"state_dir": str(Path(state_dir).resolve()), "tables": tables})
        if status == 409:
            raise StateError(answer["error"])
        if status != 200:
            raise RuntimeError(f"moto's process could not open {state_dir}: {answer}")
        return answer

    def snapshot(self, open_connections: Iterable[dict[str, Any]] = (),
                 now: float | None = None) -> dict[str, Any]:
        """Compact the journal into a new snapshot (moto goes on answering meanwhile),
        then delete the items past their TTL; the snapshot's path, its item count and
        how many items expired. ``RuntimeError`` if it could not be written."""
        status, answer = self._control("snapshot", {
            "open_connections": list(open_connections),
            "now": time.time() if now is None else now})
        if status != 200:
            raise RuntimeError(answer.get("error") or f"status {status}")
        return answer

    def _control(self, what: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(  # noqa: S310 - our own child's http:// URL
            f"{self.endpoint_url}{CONTROL}{what}", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=600) as answer:  # noqa: S310
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every item of every table (low-level format), keyed by logical id (tests)."""
        tables: dict[str, list[dict[str, Any]]] = {}
        for spec in self.specs:
            items: list[dict[str, Any]] = []
            kwargs: dict[str, Any] = {"TableName": self.table_names[spec]}
            while True:
                page = self._client.scan(**kwargs)
                items.extend(page.get("Items", []))
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
            tables[spec.logical_id] = items
        return tables


def create_table(client: Any, spec: TableSpec, name: str) -> None:
    """Create one of ``chat.tables`` through the DynamoDB API, as the CDK app declares it."""
    client.create_table(
        TableName=name,
        AttributeDefinitions=[
            {"AttributeName": spec.partition_key, "AttributeType": "S"},
            {"AttributeName": spec.sort_key, "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": spec.partition_key, "KeyType": "HASH"},
            {"AttributeName": spec.sort_key, "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    if spec.ttl_attribute:
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
        )


if __name__ == "__main__":
    serve()
