"""DynamoDB for the local gateway: moto's server in-process, with the project's tables.

Why moto's *server* rather than ``mock_aws``: the handlers run in other processes (see
``runtime``) and reach DynamoDB the way they do on AWS, through boto3 and an
HTTP endpoint; boto3's standard ``AWS_ENDPOINT_URL_DYNAMODB`` points them here, so
handler code has no ``if local:`` branch. The tables are created from
``chat.tables.TABLES``, the same specs the CDK app reads, TTL attribute included.

moto keeps everything in memory; ``dump`` and ``restore`` read every table back
through the DynamoDB API (a Scan is fine here; the functions never scan) and write it
back, for ``local_gateway.state`` to keep across restarts.

Two things moto does not do that DynamoDB does are added here: items past their TTL are
deleted (``sweep_expired``, at each save), and requests are applied one at a time so
that an update to an item is atomic (see ``_MOTO_LOCK``).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

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
    def __init__(self, app: Any) -> None:
        self._app = app

    def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
        with _MOTO_LOCK:
            return list(self._app(environ, start_response))


class _MotoServer:
    """moto's ``ThreadedMotoServer``, with requests serialised (see ``_MOTO_LOCK``)."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        app = _OneRequestAtATime(DomainDispatcherApplication(create_backend_app))
        self._server = make_server("127.0.0.1", 0, app, threaded=True,
                                   request_handler=MotoRequestHandler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="moto-dynamodb")
        self._thread.start()

    def stop(self) -> None:
        # shutdown() waits out serve_forever's 0.5 s poll interval; nothing depends on it
        # finishing (the data is saved by then), so do not make every stop pay for it.
        threading.Thread(target=self._server.shutdown, daemon=True).start()


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
        self._server: _MotoServer | None = None
        self._client: Any = None

    def start(self) -> str:
        import boto3

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = _MotoServer()
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
        if self._client is not None:
            for name in self.table_names.values():
                # Best effort: frees moto's memory when tests start many gateways.
                with contextlib.suppress(Exception):
                    self._client.delete_table(TableName=name)
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
