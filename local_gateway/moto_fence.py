"""Every use of moto beyond its public entry points, in one place.

The rest of the local gateway uses moto only through ``moto.mock_aws`` and moto's server
(the WSGI app ``moto.server`` serves, built here by ``server_app``). What this module
touches, and what each use relies on:

``server_app()``
    ``moto.server.DomainDispatcherApplication`` and ``moto.server.create_backend_app``:
    the app moto's own server (``moto_server``, ``ThreadedMotoServer``) serves. Relies
    on: both names exported by ``moto.server``; the app is a WSGI callable. Public
    enough that moto's server is built on it; no patch.

Patch ``partition_query`` (a scaling cliff): ``moto.dynamodb.models.table.Table.query``
    moto answers a Query on a table (no index) by sorting every item of the table and
    keeping the partition's: a Query of one 500-member shard took ~3 s in a table of
    40,000 items, past the functions' read timeout, where DynamoDB reads the partition
    only. The patch makes ``all_items`` the partition's items for the length of the
    call (moto filters, sorts, pages and deep-copies the page as before: the items it
    returns stay detached from the table). Relies on: ``Table.query`` with parameters
    ``hash_key`` and ``index_name`` (taken by name, ``inspect.signature``); ``Table``
    keeping ``self.items`` as ``{hash key: {range key: item}}``, ``self.range_key_attr``,
    and ``Table.query`` reading the table through ``self.all_items()`` (its source).

Patch ``transaction_snapshot`` (a scaling cliff):
``moto.dynamodb.models.DynamoDBBackend.transact_write_items``
    moto deep-copies every table a transaction names before applying it (to roll back
    on failure): each ``new_message`` (one transaction) cost time in proportion to every
    message ever stored (a table of 5,000 items: ~120 ms a transaction; see the report in
    ``tests/gateway/test_moto_queries.py``). The rollback only needs what the transaction
    can change: the patch gives moto, for the length of the call, a ``copy`` module whose
    ``deepcopy`` of a named ``Table`` returns a copy sharing every partition the
    transaction does not name, with the touched items deep-copied. Relies on:
    ``transact_write_items(self, transact_items)``; the module ``moto.dynamodb.models``
    calling ``copy.deepcopy(self.tables[...])`` through its global ``copy`` (its source);
    ``Table.items``, ``hash_key_attr``, ``range_key_attr``, ``stream_shard``,
    ``DynamoDBBackend.tables`` and ``get_item(table_name, keys)``; ``Item.hash_key`` and
    ``range_key``. Safe only one request at a time, which the local server guarantees.

Read ``table_items`` (not a patch; a scaling cost): in the forked copy of moto's process
    that writes a snapshot (``local_gateway.dynamodb``), every item of a table read from
    moto's backend (``dynamodb_backends[account][region].tables[name].all_items()``,
    each ``Item.to_json()["Attributes"]``): ~7 us an item, where a Scan through moto's
    response serializer takes ~0.3 ms, so a compaction of a few thousand items cost a
    core for seconds every few seconds. Read only, in a copy nothing else uses. Relies
    on: those names, ``Item.to_json`` giving DynamoDB JSON, binary values as bytes or
    base64 text (checked: anything else fails ``json.dumps``). Otherwise, or with the
    patches off, the copy Scans through moto's API.

``dynamodb_backend()`` (tests only): ``moto.dynamodb.models.dynamodb_backends``, to check
    at moto's own level that returned items are detached from the table.

Each patch checks what it relies on when installed and, if something is not there, is
left off with one warning line: the chat works on plain moto, only slower for big rooms
and long histories. ``LOCAL_GATEWAY_MOTO_PATCHES=off`` leaves every patch off.

Dropped (they only saved CPU; measured in the session's report): a fast path sending
JSON-protocol requests straight to ``DynamoHandler.dispatch``/``SQSResponse.dispatch``,
a replacement of ``DynamoResult.execute_result`` (moto's serializer), of the module
globals ``dynamo_to_dict`` and ``method_names_from_class``, and an identity ``deepcopy``
during ``Query`` (it returned the table's own items).
"""

from __future__ import annotations

import base64
import contextlib
import copy as real_copy
import inspect
import json
import logging
import os
from collections import defaultdict
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, NamedTuple

log = logging.getLogger("local_gateway")

PATCHES_ENV = "LOCAL_GATEWAY_MOTO_PATCHES"


def server_app() -> Any:
    """The WSGI app moto's own server serves (every service, routed by host and path)."""
    from moto.server import DomainDispatcherApplication, create_backend_app

    return DomainDispatcherApplication(create_backend_app)


def patches_enabled(environ: Any = None) -> bool:
    """False when ``LOCAL_GATEWAY_MOTO_PATCHES`` is ``off`` (or ``0``, ``false``, ``no``)."""
    value = (os.environ if environ is None else environ).get(PATCHES_ENV, "on")
    return value.strip().lower() not in {"off", "0", "false", "no"}


class Patch(NamedTuple):
    name: str
    check: Callable[[], str | None]  # None when what the patch relies on is there, else why
    apply: Callable[[], None]


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def _parameters(func: Any) -> list[str]:
    try:
        return list(inspect.signature(func).parameters)
    except (TypeError, ValueError):
        return []


# -- partition_query ------------------------------------------------------------------


def _check_partition_query() -> str | None:
    try:
        from moto.dynamodb.models.table import Table
    except ImportError as exc:
        return f"moto.dynamodb.models.table.Table is gone ({exc})"
    params = _parameters(Table.query)
    for name in ("self", "hash_key", "index_name"):
        if name not in params:
            return f"Table.query has no parameter {name!r}"
    if "self.all_items()" not in _source(Table.query):
        return "Table.query no longer reads self.all_items()"
    init = _source(Table.__init__)
    if "self.items = defaultdict(dict)" not in init or "self.range_key_attr" not in init:
        return "Table no longer keeps items as {hash key: {range key: item}}"
    if not callable(getattr(Table, "all_items", None)):
        return "Table.all_items is gone"
    return None


def _apply_partition_query() -> None:
    from moto.dynamodb.models.table import Table

    original = Table.query
    signature = inspect.signature(original)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind_partial(self, *args, **kwargs)
        hash_key = bound.arguments.get("hash_key")
        if (bound.arguments.get("index_name") or hash_key is None
                or not self.range_key_attr):
            return original(self, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        self.all_items = lambda: partition  # the instance's, for this call only
        try:
            return original(self, *args, **kwargs)
        finally:
            del self.all_items

    query.__wrapped__ = original  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]


# -- transaction_snapshot -------------------------------------------------------------


def _check_transaction_snapshot() -> str | None:
    try:
        from moto.dynamodb import models
        from moto.dynamodb.models.table import Table
    except ImportError as exc:
        return f"moto.dynamodb.models is gone ({exc})"
    backend = getattr(models, "DynamoDBBackend", None)
    if backend is None:
        return "moto.dynamodb.models.DynamoDBBackend is gone"
    if _parameters(backend.transact_write_items) != ["self", "transact_items"]:
        return "DynamoDBBackend.transact_write_items(self, transact_items) changed"
    if getattr(models, "copy", None) is not real_copy:
        return "moto.dynamodb.models no longer imports the copy module"
    if "copy.deepcopy(" not in _source(backend.transact_write_items):
        return "transact_write_items no longer deep-copies the tables it names"
    params = _parameters(backend.get_item)
    if params[:3] != ["self", "table_name", "keys"]:
        return "DynamoDBBackend.get_item(self, table_name, keys) changed"
    init = _source(Table.__init__)
    for attr in ("self.items", "self.hash_key_attr", "self.range_key_attr",
                 "self.stream_shard"):
        if attr not in init:
            return f"Table no longer sets {attr}"
    return None


def _apply_transaction_snapshot() -> None:
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

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
        # The table as it is, sharing every partition the transaction does not name (it
        # cannot change them); those it names are copied, and their touched items
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

        with _module_copy(models, deepcopy):
            return original(self, transact_items)

    transact_write_items.__wrapped__ = original  # type: ignore[attr-defined]
    models.DynamoDBBackend.transact_write_items = transact_write_items


@contextlib.contextmanager
def _module_copy(module: Any, deepcopy: Any) -> Iterator[None]:
    """For the length of a call, ``module``'s ``copy.deepcopy`` is ``deepcopy``."""
    real = module.copy
    module.copy = SimpleNamespace(deepcopy=deepcopy, copy=real.copy)
    try:
        yield
    finally:
        module.copy = real


PATCHES = (
    Patch("partition_query", _check_partition_query, _apply_partition_query),
    Patch("transaction_snapshot", _check_transaction_snapshot, _apply_transaction_snapshot),
)

_installed: set[str] = set()


def install(environ: Any = None) -> list[str]:
    """Install every patch whose check passes (once per process); the names installed.

    Nothing when ``LOCAL_GATEWAY_MOTO_PATCHES=off``. A patch whose check fails is left
    off with one warning line.
    """
    if not patches_enabled(environ):
        return []
    for patch in PATCHES:
        if patch.name in _installed:
            continue
        reason = patch.check()
        if reason is not None:
            log.warning("moto patch %s left off: %s (plain moto still works, slower for "
                        "big tables)", patch.name, reason)
            continue
        patch.apply()
        _installed.add(patch.name)
    return sorted(_installed)


def installed() -> list[str]:
    return sorted(_installed)


DEFAULT_ACCOUNT = "123456789012"  # moto's, for any access key that is not an account id


def table_items(name: str, region: str) -> list[dict[str, Any]] | None:
    """Every item of moto's table ``name`` as DynamoDB JSON, read from its backend; None
    when that is not possible (then Scan it). Only in a process nothing else uses."""
    if not patches_enabled():
        return None
    try:
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[DEFAULT_ACCOUNT][region].tables[name]
        items = [item.to_json()["Attributes"] for item in table.all_items()]
        return json.loads(json.dumps(items, default=_base64))  # binary: as on the wire
    except Exception:  # anything moto changed: the caller scans through the API
        return None


def _base64(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not DynamoDB JSON")


def dynamodb_backend(account_id: str = "123456789012", region: str = "us-east-1") -> Any:
    """moto's DynamoDB backend of this process (tests only: to look under the API)."""
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends[account_id][region]
