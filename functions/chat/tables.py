"""The DynamoDB tables, declared once.

The CDK app (``infra/``) and the local gateway (``local_gateway/``) both build their
tables from these specs, so the cloud and the laptop cannot drift apart. The functions
learn each physical table name from the environment variable named here.

Why two tables rather than one: the per-message hot path queries a room's
connections. Keeping messages out of that partition keeps the Query small however long
a room's history grows (and keeps moto, which scans a partition to answer a Query,
fast for the local gateway). The access patterns each table serves are written down in
``chat.adapters.dynamodb``.
"""

from __future__ import annotations

from typing import NamedTuple


class TableSpec(NamedTuple):
    """A table with string ``pk``/``sk`` keys and an optional TTL attribute."""

    logical_id: str
    env_var: str
    partition_key: str = "pk"
    sort_key: str = "sk"
    ttl_attribute: str | None = "expires_at"


# Connections, room memberships and per-connection rate-limit windows.
CONNECTIONS = TableSpec(logical_id="Connections", env_var="CONNECTIONS_TABLE")

# Messages (kept forever) and idempotency keys (expire after 24 h).
MESSAGES = TableSpec(logical_id="Messages", env_var="MESSAGES_TABLE")

TABLES: tuple[TableSpec, ...] = (CONNECTIONS, MESSAGES)
