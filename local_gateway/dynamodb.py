"""DynamoDB for the local gateway: moto's server in a process of its own, with the project's tables.

Why moto's *server* rather than ``mock_aws``: the handlers run in other processes (see
``runtime``) and reach DynamoDB the way they do on AWS, through boto3 and an
HTTP endpoint; boto3's standard ``AWS_ENDPOINT_URL_DYNAMODB`` points them here, so
handler code has no ``if local:`` branch. The tables are created from
``chat.tables.TABLES``, the same specs the CDK app reads, TTL attribute included.

Why a process of its own (``python -m local_gateway.dynamodb``), not a thread of the
gateway: under load moto was most of the gateway's CPU (its HTTP server, its response
serializer, deep copies of items), and in the gateway's process every millisecond of it
held the GIL that the event loop writing frames and answering ``@connections`` needs. A
thread also added GIL hand-over waits (5 ms each) to every frame. As a child process it
uses the other core; it exits when the gateway does, even after a SIGKILL (it watches
its stdin, a pipe from the gateway), and ignores Ctrl-C so the gateway can still save
the tables while stopping.

moto keeps everything in memory; ``dump`` and ``restore`` read every table back
through the DynamoDB API (a Scan is fine here; the functions never scan) and write it
back, for ``local_gateway.state`` to keep across restarts.

Two things moto does not do that DynamoDB does are added here: items past their TTL are
deleted (``sweep_expired``, at each save), and requests are applied one at a time so
that an update to an item is atomic (see ``_MOTO_LOCK``).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Iterable, Iterator, Mapping
from types import SimpleNamespace
from typing import Any

from aiohttp import web

from chat.tables import TABLES, TableSpec

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


# moto's backends have no locks: two UpdateItem "ADD n :one" handled at once by its
# threaded server can both read n and lose an increment (seen here: 49 out of 50), and
# conditional writes and transactions can interleave the same way. DynamoDB applies each
# request to an item atomically, and the handlers rely on it (the rate limit counter,
# idempotency keys), so requests are applied one at a time. moto answers in ~1-3 ms, so
# a local chat never notices. One lock per process: moto's backends are per process.
_MOTO_LOCK = threading.Lock()


class _OneRequestAtATime:
    """moto's answers, one request at a time, with JSON-protocol requests of DynamoDB
    and SQS sent straight to their moto handlers (the rest to moto's WSGI app).

    moto's server finds the service of every request by matching its host against every
    service's URL patterns, then routes it through a Flask app (CORS, request recording):
    about half of the server's time per DynamoDB request here. Requests of the JSON
    protocol name their service in ``X-Amz-Target`` (``DynamoDB_20120810.Query``,
    ``AmazonSQS.ReceiveMessage``); those go to the handler Flask would have called, with
    the same request object and URL. Anything else (a browser poking the port) takes
    moto's whole path.
    """

    def __init__(self, app: Any) -> None:
        from moto.dynamodb.responses import DynamoHandler
        from moto.moto_server.werkzeug_app import BackendRequest
        from moto.sqs.responses import SQSResponse
        from werkzeug.wrappers import Response

        self._app = app
        self._handlers = (("DynamoDB_", DynamoHandler.dispatch),
                          ("AmazonSQS.", SQSResponse.dispatch))
        self._request = BackendRequest
        self._response = Response

    def answer(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """moto's answer (status, headers, body) to the request ``environ`` describes."""
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target and environ.get("REQUEST_METHOD") == "POST":
            for prefix, handler in self._handlers:
                if target.startswith(prefix):
                    request = self._request(environ)
                    with _MOTO_LOCK:
                        status, headers, body = handler(
                            request, request.raw_url, dict(request.headers))
                    # As Flask would have made it: header values as text, the body as bytes.
                    response = self._response(body, status, headers)
                    return (response.status_code, response.headers.to_wsgi_list(),
                            response.get_data())
        answer: list[Any] = []
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]],
                           exc_info: Any = None) -> Any:
            answer[:] = [int(status[:3]), headers]
            return chunks.append

        with _MOTO_LOCK:
            result = self._app(environ, start_response)
            try:
                chunks.extend(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        status, headers = answer
        return status, headers, b"".join(chunks)


# The item operations the handlers (and ``state``) call, all answered through moto's
# generic response serializer, which walks every attribute of every item through
# attribute-name aliasing: ~80 ms for a Query of 50 small items, the single biggest
# cost of a chat message here (one such Query per message). Their results already
# have the wire shape (items are DynamoDB JSON), so ``_to_wire`` keeps what the output
# shape declares, copies attribute values as they are, and base64-encodes binary
# values, exactly as the serializer does (``tests/gateway/test_load.py`` compares the
# two on every attribute type). Anything else, errors included, goes through moto.
FAST_OPERATIONS = frozenset({
    "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
    "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems",
})


class _NotFast(Exception):
    """A value the fast path does not handle: let moto's serializer do it."""


def _to_wire(value: Any, shape: Any) -> Any:
    """``value`` (a moto result) as the JSON protocol sends it for ``shape``."""
    if shape.name == "AttributeValue":
        return value  # already DynamoDB JSON; bytes are encoded by json.dumps' default
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise _NotFast(shape.name)
        out = {}
        for name, member in shape.members.items():
            inner = value.get(name)
            if inner is not None:
                out[member.serialization.get("name", name)] = _to_wire(inner, member)
        return out
    if kind == "list":
        return [_to_wire(v, shape.member) for v in value]
    if kind == "map":
        return {k: _to_wire(v, shape.value) for k, v in value.items()}
    if kind in ("blob", "timestamp"):
        raise _NotFast(kind)
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def fast_body(operation_model: Any, result: Any) -> str | None:
    """The response body for ``result``, or None when moto's serializer must make it."""
    if operation_model.name not in FAST_OPERATIONS or not isinstance(result, dict):
        return None
    shape = operation_model.output_shape
    if shape is None:
        return None
    try:
        return json.dumps(_to_wire(result, shape), default=_json_default)
    except (_NotFast, TypeError, AttributeError):
        return None


def install_fast_responses() -> bool:
    """Answer ``FAST_OPERATIONS`` through ``fast_body`` (in moto's process only)."""
    try:
        from moto.dynamodb.responses import DynamoResult
    except ImportError:  # moto moved it: its own serializer still works, only slower
        log.warning("moto's DynamoResult is gone: DynamoDB responses use moto's serializer")
        return False
    original = DynamoResult.execute_result

    def execute_result(self: Any, context: Any) -> Any:
        if "JSON" in context.serializer_class.__name__:
            body = fast_body(context.operation_model, self.result)
            if body is not None:
                return 200, {"Content-Type": "application/x-amz-json-1.0"}, body
        return original(self, context)

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    return True


def install_fast_results() -> bool:
    """Convert moto's results to plain values without its generic walk where it is plain.

    Before answering, moto turns every result into plain values (``dynamo_to_dict``),
    asking of every value, attribute by attribute, whether it is a datetime, a
    ``DynamoType``, has ``to_json``, is a dict or a list: a seventh of moto's time under
    load, most of it on the string attributes of a Query's items. ``plain`` answers
    strings, numbers, dicts, lists and the scalar attribute values (``S``, ``N``,
    ``BOOL``, ``NULL``) itself, with the same result; anything else (binary values, sets,
    datetimes, models) goes to moto's own function.
    """
    try:
        from moto.dynamodb import responses
        from moto.dynamodb.models.dynamo_type import DynamoType, LimitedSizeDict
    except ImportError:
        return False
    original = responses.dynamo_to_dict
    mappings = (dict, LimitedSizeDict)  # an item's attributes are a LimitedSizeDict
    scalars = {"S", "N", "BOOL", "NULL"}

    def plain(obj: Any) -> Any:
        kind = type(obj)
        if kind is DynamoType:
            value = obj.value
            if obj.type in scalars and type(value) in (str, bool):
                return {obj.type: value}
            return original(obj)
        if kind in mappings:
            return {k: plain(v) for k, v in obj.items()}
        if kind is list:
            return [plain(v) for v in obj]
        if kind is str or kind is int or kind is bool or kind is float or obj is None:
            return obj
        return original(obj)

    responses.dynamo_to_dict = plain
    return True


def install_cached_method_names() -> bool:
    """moto lists its handler class's methods (``inspect.getmembers``) on every request
    to find the action; classes do not change here, so the list is computed once."""
    try:
        from moto.core import responses
    except ImportError:
        return False
    responses.method_names_from_class = functools.lru_cache(maxsize=None)(
        responses.method_names_from_class)
    return True


@contextlib.contextmanager
def _deepcopy_as(module: Any, deepcopy: Any) -> Iterator[None]:
    """For the length of a call, ``module``'s ``copy.deepcopy`` is ``deepcopy`` (moto's
    models call ``copy.deepcopy`` through their module; one request at a time here)."""
    real = module.copy
    module.copy = SimpleNamespace(deepcopy=deepcopy, copy=real.copy)
    try:
        yield
    finally:
        module.copy = real


def install_partition_queries() -> bool:
    """Make moto's Query read the one partition it asks for, not the whole table.

    moto answers a Query on the table (no index) by sorting every item of the table and
    keeping those of the partition: a Query of a 500-member shard took ~3 s in a table
    of 40,000 items, past the functions' read timeout, where DynamoDB reads only the
    partition. Here ``all_items`` is, for the length of the call, the partition's items;
    moto filters, sorts and pages them as before, without its copy of the page (below).
    moto applies one request at a time here (``_MOTO_LOCK``), so the swaps are safe.
    """
    try:
        from moto.dynamodb.models import table as table_module
        from moto.dynamodb.models.table import Table
    except ImportError:
        log.warning("moto's Table moved: Query reads whole tables (slower for big ones)")
        return False
    original = Table.query

    def query(self: Any, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        # index_name is the 8th parameter, passed by position by moto's backend.
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not self.range_key_attr:
            return original(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition
        # moto deep-copies the page of items it found before answering, a third of a
        # Query's time; on a table (no index to project through) nothing changes them
        # afterwards: filters only read them, a projection builds new items, and the
        # answer is serialised from them before the next request is applied.
        try:
            with _deepcopy_as(table_module, lambda value, memo=None: value):
                return original(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    Table.query = query  # type: ignore[method-assign]
    return True


def install_cheap_transactions() -> bool:
    """Make moto's TransactWriteItems keep a copy of the items it touches, not of tables.

    moto deep-copies every table a transaction names before applying it (to roll back on
    failure), so each ``new_message`` (one transaction: message + idempotency key) cost
    time in proportion to every message ever stored: the gateway got slower the longer it
    ran. The rollback only needs what the transaction can change as it was: the table's
    copy shares every partition the transaction does not name (a map of thousands, one
    per idempotency key, copied per message was a tenth of moto's time under load),
    copies the partitions it names and deep-copies the items it touches. moto applies
    one request at a time here (``_MOTO_LOCK``), so swapping its ``copy`` module for the
    length of the call is safe. Tables with a stream, or anything unexpected, still get
    moto's full copy.
    """
    try:
        import copy as real_copy
        from collections import defaultdict

        from moto.dynamodb import models
        from moto.dynamodb.models.dynamo_type import DynamoType
        from moto.dynamodb.models.table import Table
    except ImportError:
        return False
    original = models.DynamoDBBackend.transact_write_items

    def touched_items(backend: Any, transact_items: list[dict[str, Any]]) -> dict[str, dict]:
        """Per table, the partitions the transaction names, each with its touched items."""
        touched: dict[str, dict] = {}
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = backend.tables.get(op.get("TableName"))
            if table is None:
                continue
            if "Key" in op:
                key = op["Key"]
            else:
                attrs = op["Item"]
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            partitions = touched.setdefault(table.name, {})
            items = partitions.setdefault(DynamoType(key[table.hash_key_attr]), [])
            item = backend.get_item(op["TableName"], key)
            if item is not None:
                items.append(item)
        return touched

    def snapshot(table: Any, partitions: dict[Any, list]) -> Any:
        # The table as it is, sharing every partition the transaction does not name
        # (it cannot change them); those it names are copied, and their touched items
        # deep-copied, so that a rollback puts back exactly what was there.
        copy_ = real_copy.copy(table)
        copy_.items = defaultdict(dict, table.items)
        for hash_key, items in partitions.items():
            if table.range_key_attr is not None:
                if hash_key in table.items:
                    part = copy_.items[hash_key] = dict(table.items[hash_key])
                    for item in items:
                        part[item.range_key] = real_copy.deepcopy(item)
            else:
                for item in items:
                    copy_.items[item.hash_key] = real_copy.deepcopy(item)
        return copy_

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        try:
            touched = touched_items(self, transact_items)
        except Exception:  # malformed: let moto answer it its own way
            return original(self, transact_items)

        def deepcopy(value: Any, memo: Any = None) -> Any:
            if (isinstance(value, Table) and value.name in touched
                    and value.stream_shard is None):
                return snapshot(value, touched[value.name])
            return real_copy.deepcopy(value, memo)

        with _deepcopy_as(models, deepcopy):
            return original(self, transact_items)

    models.DynamoDBBackend.transact_write_items = transact_write_items
    return True


class _MotoServer:
    """moto's WSGI app behind aiohttp's server, with keep-alive, one request at a time.

    moto's own ``ThreadedMotoServer`` is werkzeug's development server: it answers every
    request "Connection: close" and starts a thread for each, so every DynamoDB call of
    a function paid a TCP connection, a server thread and ``http.server``'s header
    parsing (``email.parser``): more than half of moto's CPU per call, and ~2 ms of each
    call's wait here. aiohttp keeps the connections boto3 pools open and parses with its
    C parser; each request becomes the WSGI environ werkzeug's server would build, for
    the same app (``_OneRequestAtATime``), called on the event loop's thread: moto
    applies one request at a time anyway (``_MOTO_LOCK``), and requests wait in their
    sockets as they waited for the lock.

    Runs in the process ``serve`` is, i.e. the child ``_MotoProcess`` starts.
    """

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            create_backend_app,
        )

        self._app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self.port = 0

    def environ(self, request: web.Request, body: bytes) -> dict[str, Any]:
        """The WSGI environ werkzeug's server would build for ``request``."""
        raw = request.raw_path
        path, _, query = raw.partition("?")
        version = request.version
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": urllib.parse.unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query,
            "RAW_URI": raw,
            "REQUEST_URI": raw,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": str(self.port),
            "SERVER_PROTOCOL": f"HTTP/{version.major}.{version.minor}",
            "REMOTE_ADDR": request.remote or "",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
        }
        for raw_name, raw_value in request.raw_headers:
            name = raw_name.decode("latin-1").upper()
            if "_" in name or name == "CONTENT-LENGTH":
                continue  # werkzeug drops X_Foo (it would pass for X-Foo); length is above
            key = name.replace("-", "_")
            if key != "CONTENT_TYPE":
                key = "HTTP_" + key
            value = raw_value.decode("latin-1")
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    async def handle(self, request: web.Request) -> web.Response:
        status, headers, body = self._app.answer(self.environ(request, await request.read()))
        return web.Response(body=body, status=status, headers=[
            (k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP])

    async def serve(self, started: Any) -> None:
        app = web.Application(client_max_size=_MAX_REQUEST_BYTES)
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


def serve() -> None:
    """The child's body: serve moto, print the port, exit when stdin closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the gateway saves through us on Ctrl-C
    install_fast_responses()
    install_fast_results()
    install_cheap_transactions()
    install_cached_method_names()
    install_partition_queries()

    def watch_stdin() -> None:
        with contextlib.suppress(Exception):
            sys.stdin.buffer.read()  # EOF: the gateway is gone, whatever way it ended
        os._exit(0)  # no clean-up to wait for: everything is in memory

    def started(port: int) -> None:
        print(f"port {port}", flush=True)
        threading.Thread(target=watch_stdin, daemon=True, name="stdin").start()

    asyncio.run(_MotoServer().serve(started))


class _MotoProcess:
    """``python -m local_gateway.dynamodb`` as a child of the gateway."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local_gateway.dynamodb"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline().decode(errors="replace")
        if not line.startswith("port "):
            self.stop()
            raise RuntimeError(f"moto's DynamoDB did not start: {line!r}")
        self.port = int(line.split()[1])

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            if self._process.stdin is not None:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


class LocalDynamoDB:
    """moto's DynamoDB on ``127.0.0.1:<free port>``, with the project's tables."""

    def __init__(self, tables: Iterable[TableSpec] = TABLES) -> None:
        self.specs = tuple(tables)
        # moto keeps its backends per process, so two gateways in one process (tests)
        # would share tables: a per-instance suffix keeps them apart.
        suffix = uuid.uuid4().hex[:8]
        self.table_names: dict[TableSpec, str] = {
            spec: f"{spec.logical_id}-local-{suffix}" for spec in self.specs
        }
        self.endpoint_url = ""
        self._server: _MotoProcess | None = None
        self._client: Any = None

    def start(self) -> str:
        import boto3

        self._server = _MotoProcess()
        self.endpoint_url = f"http://127.0.0.1:{self._server.port}"
        self._client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        for spec in self.specs:
            self._create_table(spec)
        return self.endpoint_url

    def _create_table(self, spec: TableSpec) -> None:
        create_table(self._client, spec, self.table_names[spec])

    def recreate_tables(self) -> None:
        """Empty tables again (after a restore that DynamoDB refused half-way)."""
        for spec in self.specs:
            with contextlib.suppress(Exception):
                self._client.delete_table(TableName=self.table_names[spec])
            self._create_table(spec)

    def stop(self) -> None:
        # moto's memory goes with its process: nothing to delete first.
        if self._server is not None:
            self._server.stop()
            self._server = None

    # -- state ---------------------------------------------------------------------

    def dump(self) -> dict[str, list[dict[str, Any]]]:
        """Every item of every table (low-level format), keyed by logical id (physical
        names change from run to run)."""
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

    def sweep_expired(self, now: float | None = None) -> int:
        """Delete items whose TTL has passed, as DynamoDB's TTL does (moto never does).

        DynamoDB deletes an expired item at some point after its TTL (often within
        minutes, at worst days later) and handlers must not depend on when; deleting at
        the next save is one of the legal behaviours, and it keeps the state file from
        growing with rate-limit windows and idempotency keys.
        """
        now = time.time() if now is None else now
        deleted = 0
        for spec in self.specs:
            if not spec.ttl_attribute:
                continue
            name = self.table_names[spec]
            kwargs: dict[str, Any] = {
                "TableName": name,
                "FilterExpression": "#ttl < :now",
                "ExpressionAttributeNames": {"#ttl": spec.ttl_attribute},
                "ExpressionAttributeValues": {":now": {"N": str(int(now))}},
                "ProjectionExpression": "#pk, #sk",
            }
            kwargs["ExpressionAttributeNames"].update(
                {"#pk": spec.partition_key, "#sk": spec.sort_key})
            while True:
                page = self._client.scan(**kwargs)
                for key in page.get("Items", []):
                    try:
                        # Conditional: an item rewritten since the scan (a fresh
                        # idempotency key, say) must survive.
                        self._client.delete_item(
                            TableName=name,
                            Key=key,
                            ConditionExpression="#ttl < :now",
                            ExpressionAttributeNames={"#ttl": spec.ttl_attribute},
                            ExpressionAttributeValues={":now": {"N": str(int(now))}},
                        )
                        deleted += 1
                    except self._client.exceptions.ConditionalCheckFailedException:
                        pass
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return deleted

    def restore(self, tables: Mapping[str, list[dict[str, Any]]]) -> int:
        count = 0
        for spec in self.specs:
            items = list(tables.get(spec.logical_id, []))
            name = self.table_names[spec]
            for start in range(0, len(items), 25):  # BatchWriteItem takes 25 at most
                pending: Any = {
                    name: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
                }
                while pending:
                    answer = self._client.batch_write_item(RequestItems=pending)
                    pending = answer.get("UnprocessedItems") or None
            count += len(items)
        return count


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
