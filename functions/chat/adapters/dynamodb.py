"""DynamoDB adapter: the only module that knows table layouts, keys and expressions.

Two tables (declared in ``chat.tables``), designed from the access patterns:

Connections table
    ``CONN#<id>  / CONN``      who a connection is: username, room, shard, connected_at,
                               and its recent new_message frames per 100 ms (``rl<n>``)
    ``ROOM#<room>/ CONN#<id>`` membership in shard 0 of the room
    ``ROOM#<room>#<k>/ CONN#<id>``  membership in shard k > 0 (rooms beyond one shard)
    ``ROOM#<room>/ LAYOUT``    how many connections each shard holds (``s<k>``)
    Every connection item carries ``expires_at`` (TTL): API Gateway closes a connection
    within 2 hours, so an item whose ``$disconnect`` never arrived still goes away (its
    shard's count then stays one too high: a shard may look full early, which only
    spreads the room a little wider; it is never read as a member).

Messages table
    ``ROOM#<room>/ MSG#<id>``  a message; ids sort by time, so a room reads newest-first
    ``IDEM#<room>#<user>#<client_id> / IDEM``  idempotency key -> message id, 24 h TTL

Access patterns:
    1. add/remove a connection: take a seat in the first shard that is not full (one
       conditional UpdateItem on the layout; a GetItem and another try only when shard
       0 is full), then one transaction of two puts; remove: three deletes/updates.
       Each ``new_message`` counts itself on the identity item and reads it back (one
       UpdateItem: identity and rate limit in one call).
    2. list a shard's connections: one strongly consistent ``Query`` on its partition;
       shard 0's partition also holds the layout, so a small room is still one Query.
    3. store a message once: one ``TransactWriteItems`` (key + message) when the sender
       gave a ``client_id``, else one conditional ``PutItem``.
    4. page a room's messages: ``Query`` newest first with ``Limit``, ``sk < MSG#<before>``.
    5. expire stale items: TTL.
No Scan anywhere: every path reads by key.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from chat.model import Connection, Member, Message, RoomLayout, StorageError

CONNECTION_TTL_S = 2 * 3600 + 600  # API Gateway's 2 h limit, plus a margin
IDEMPOTENCY_TTL_S = 24 * 3600  # PROTOCOL.md: retries are recognised for 24 hours
_RATE = "rl"  # rate-limit bucket counters on the identity item: rl<bucket number>
_STALE_BUCKETS_KEPT = 32

# Worst case 2 x (1 s + 2 s) plus a short backoff: inside the functions' 10 s timeout
# with room to answer the sender (an item call takes milliseconds).
CLIENT_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"mode": "standard", "total_max_attempts": 2},
)


# -- keys: every pk/sk this module writes is built here ----------------------------------


def _key(pk: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": _s(pk), "sk": _s(sk)}


class Keys:
    """The table layout above, one function per kind of item."""

    @staticmethod
    def connection(connection_id: str) -> dict[str, Any]:
        return _key(f"CONN#{connection_id}", "CONN")

    @staticmethod
    def member(room: str, connection_id: str, shard: int = 0) -> dict[str, Any]:
        return _key(Keys.shard(room, shard), f"CONN#{connection_id}")

    @staticmethod
    def room(room: str) -> str:
        """The partition of a room's messages (Messages) and of its shard 0 (Connections)."""
        return f"ROOM#{room}"

    @staticmethod
    def shard(room: str, shard: int) -> str:
        """The partition of one shard of a room's members (rooms cannot contain '#')."""
        return Keys.room(room) if shard == 0 else f"ROOM#{room}#{shard}"

    @staticmethod
    def layout(room: str) -> dict[str, Any]:
        return _key(Keys.room(room), "LAYOUT")

    MESSAGE_PREFIX = "MSG#"

    @staticmethod
    def message(room: str, message_id: str) -> dict[str, Any]:
        return _key(Keys.room(room), Keys.MESSAGE_PREFIX + message_id)

    @staticmethod
    def idempotency(message: Message) -> dict[str, Any]:
        # Usernames and rooms cannot contain '#', so the key cannot be forged by a client_id.
        return _key(f"IDEM#{message.room}#{message.username}#{message.client_id}", "IDEM")


# -- items <-> model -------------------------------------------------------------------


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def connection_item(conn: Connection, expires_at: int) -> dict[str, Any]:
    return {
        **Keys.connection(conn.connection_id),
        "connection_id": _s(conn.connection_id),
        "username": _s(conn.username),
        "room": _s(conn.room),
        "shard": _n(conn.shard),
        "connected_at": _n(conn.connected_at),
        "expires_at": _n(expires_at),
    }


def member_item(conn: Connection, expires_at: int) -> dict[str, Any]:
    return {
        **Keys.member(conn.room, conn.connection_id, conn.shard),
        "connection_id": _s(conn.connection_id),
        "username": _s(conn.username),
        "connected_at": _n(conn.connected_at),
        "expires_at": _n(expires_at),
    }


def message_item(message: Message) -> dict[str, Any]:
    item = {
        **Keys.message(message.room, message.id),
        "id": _s(message.id),
        "room": _s(message.room),
        "username": _s(message.username),
        "text": _s(message.text),
        "created_at": _s(message.created_at),
    }
    if message.client_id is not None:
        item["client_id"] = _s(message.client_id)
    return item


def to_connection(item: dict[str, Any]) -> Connection:
    return Connection(
        connection_id=item["connection_id"]["S"],
        username=item["username"]["S"],
        room=item["room"]["S"],
        connected_at=int(item.get("connected_at", {"N": "0"})["N"]),
        shard=int(item.get("shard", {"N": "0"})["N"]),
    )


def to_layout(item: dict[str, Any] | None) -> dict[int, int]:
    """Shard -> connections, from a layout item's ``s<k>`` counters."""
    return {
        int(name[1:]): int(value["N"])
        for name, value in (item or {}).items()
        if name.startswith("s") and name[1:].isdigit()
    }


def to_member(item: dict[str, Any]) -> Member:
    return Member(
        connection_id=item["connection_id"]["S"],
        username=item["username"]["S"],
        connected_at=int(item.get("connected_at", {"N": "0"})["N"]),
    )


def to_message(item: dict[str, Any]) -> Message:
    return Message(
        id=item["id"]["S"],
        room=item["room"]["S"],
        username=item["username"]["S"],
        text=item["text"]["S"],
        created_at=item["created_at"]["S"],
        client_id=item["client_id"]["S"] if "client_id" in item else None,
    )


# -- the store -------------------------------------------------------------------------


class Store:
    """Connections, memberships and messages in DynamoDB.

    ``client`` is a boto3 DynamoDB client (``chat.bootstrap`` makes one per process,
    with ``CLIENT_CONFIG``); the store never creates one itself.
    """

    def __init__(self, client: Any, *, connections_table: str, messages_table: str) -> None:
        self.client = client
        self.connections_table = connections_table
        self.messages_table = messages_table

    # -- connections -----------------------------------------------------------------

    def add_connection(self, conn: Connection, shard_size: int) -> Connection:
        """Record a connection in the first shard of its room with a free seat.

        Returns the connection with its shard. Shard 0 is tried first without a read
        (nearly every room fits in it); only when it is full is the layout read.
        """
        shard = self._take_seat(conn.room, shard_size)
        conn = Connection(conn.connection_id, conn.username, conn.room, conn.connected_at, shard)
        expires = int(time.time()) + CONNECTION_TTL_S
        try:
            self._call(
                "transact_write_items",
                TransactItems=[
                    {"Put": {"TableName": self.connections_table,
                             "Item": connection_item(conn, expires)}},
                    {"Put": {"TableName": self.connections_table,
                             "Item": member_item(conn, expires)}},
                ],
            )
        except StorageError:
            self._release_seat(conn.room, shard)
            raise
        return conn

    def _take_seat(self, room: str, shard_size: int) -> int:
        shard = 0
        for _ in range(20):  # each round means another shard filled up meanwhile
            if self._count_seat(room, shard, +1, "attribute_not_exists(#seat) OR #seat < :bound",
                                bound=shard_size):
                return shard
            counts = self.layout(room).counts
            free = [k for k in sorted(counts) if counts[k] < shard_size]
            shard = free[0] if free else max(counts, default=-1) + 1
        raise StorageError(f"no free seat in room {room!r} after 20 tries")

    def _release_seat(self, room: str, shard: int) -> None:
        """One connection fewer in a shard; never below zero (a retried leave must not)."""
        self._count_seat(room, shard, -1, "#seat > :bound", bound=0)

    def _count_seat(self, room: str, shard: int, delta: int, condition: str, bound: int) -> bool:
        """Add ``delta`` to a shard's count if ``condition`` holds; False if it did not."""
        try:
            self.client.update_item(
                TableName=self.connections_table,
                Key=Keys.layout(room),
                UpdateExpression="ADD #seat :delta",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#seat": f"s{shard}"},
                ExpressionAttributeValues={":delta": _n(delta), ":bound": _n(bound)},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc
            return False
        return True

    def layout(self, room: str) -> RoomLayout:
        item = self._call(
            "get_item", TableName=self.connections_table, Key=Keys.layout(room),
            ConsistentRead=True,
        ).get("Item")
        return RoomLayout(to_layout(item))

    def get_connection(self, connection_id: str) -> Connection | None:
        item = self._call(
            "get_item",
            TableName=self.connections_table,
            Key=Keys.connection(connection_id),
            ConsistentRead=True,
        ).get("Item")
        return to_connection(item) if item and not _expired(item) else None

    def remove_connection(self, connection_id: str) -> Connection | None:
        """Forget a connection; return what it was, or None if it was already gone.

        Idempotent: API Gateway may deliver ``$disconnect`` late, twice, or after a 410
        cleanup already removed the connection.
        """
        old = self._call(
            "delete_item",
            TableName=self.connections_table,
            Key=Keys.connection(connection_id),
            ReturnValues="ALL_OLD",
        ).get("Attributes")
        if not old:
            return None
        conn = to_connection(old)
        self.remove_member(conn.room, connection_id, conn.shard)
        return conn

    def remove_member(self, room: str, connection_id: str, shard: int = 0) -> None:
        """Take a connection off its shard's list (and the shard's count, if it was there)."""
        old = self._call(
            "delete_item",
            TableName=self.connections_table,
            Key=Keys.member(room, connection_id, shard),
            ReturnValues="ALL_OLD",
        ).get("Attributes")
        if old:
            self._release_seat(room, shard)

    def room_shard(self, room: str, shard: int = 0) -> tuple[list[Member], RoomLayout]:
        """Every live connection of one shard: one Query (more only past 1 MB).

        For shard 0 the layout comes with it (its item is in the same partition), so a
        small room costs one Query however it is used; for other shards the layout is
        empty.
        """
        now = int(time.time())
        members: list[Member] = []
        layout: dict[int, int] = {}
        kwargs: dict[str, Any] = {
            "TableName": self.connections_table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _s(Keys.shard(room, shard))},
            # A connection that joined a moment ago must get the next message.
            "ConsistentRead": True,
        }
        while True:
            page = self._call("query", **kwargs)
            for item in page.get("Items", []):
                if item["sk"]["S"] == "LAYOUT":
                    layout = to_layout(item)
                elif not _expired(item, now):  # TTL deletes lazily
                    members.append(to_member(item))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        if shard == 0 and not layout:
            layout = {0: len(members)}  # a room from before shards: all in shard 0
        return members, RoomLayout(layout)

    def count_frame(
        self, connection_id: str, bucket: int, since_bucket: int
    ) -> tuple[Connection, int] | None:
        """Count one ``new_message`` frame; return the sender and its frames since a bucket.

        A sliding window made of short buckets (``rl<bucket>`` counters on the identity
        item): one atomic ``ADD`` that also returns the identity, so the per-message path
        needs no separate read, and concurrent frames cannot both slip under the limit.
        None when the connection is not (or no longer) registered.
        """
        try:
            item = self.client.update_item(
                TableName=self.connections_table,
                Key=Keys.connection(connection_id),
                UpdateExpression="ADD #bucket :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#bucket": f"{_RATE}{bucket}"},
                ExpressionAttributeValues={":one": _n(1)},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if _condition_failed(exc):
                return None
            raise StorageError(f"update_item: {exc}") from exc
        if _expired(item):
            return None
        counts = {
            int(name[len(_RATE) :]): int(value["N"])
            for name, value in item.items()
            if name.startswith(_RATE) and name[len(_RATE) :].isdigit()
        }
        stale = [b for b in counts if b < since_bucket]
        if len(stale) >= _STALE_BUCKETS_KEPT:  # rare: tidy up once in a while, not per frame
            names = {f"#s{i}": f"{_RATE}{b}" for i, b in enumerate(stale)}
            try:
                self.client.update_item(
                    TableName=self.connections_table,
                    Key=Keys.connection(connection_id),
                    UpdateExpression="REMOVE " + ", ".join(names),
                    # Never recreate the item if $disconnect deleted it meanwhile.
                    ConditionExpression="attribute_exists(pk)",
                    ExpressionAttributeNames=names,
                )
            except ClientError as exc:
                if not _condition_failed(exc):
                    raise StorageError(f"update_item: {exc}") from exc
        recent = sum(n for b, n in counts.items() if b >= since_bucket)
        return to_connection(item), recent

    # -- messages --------------------------------------------------------------------

    def save_message(self, message: Message) -> tuple[Message, bool]:
        """Store a message once. Returns (the stored message, whether it is new).

        With a ``client_id``, the idempotency key and the message are written in one
        transaction, so a retry (also from a new connection) finds the original instead
        of storing a duplicate. An expired key (TTL deletes lazily) counts as absent.
        """
        item = message_item(message)
        if message.client_id is None:
            # No condition: a fresh ULID cannot collide, and a condition would turn
            # botocore's retry of a put that did commit into a false failure.
            self._call("put_item", TableName=self.messages_table, Item=item)
            return message, True
        now = int(time.time())
        key = Keys.idempotency(message)
        try:
            self.client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self.messages_table,
                            "Item": {
                                **key,
                                "message_id": _s(message.id),
                                "expires_at": _n(now + IDEMPOTENCY_TTL_S),
                            },
                            "ConditionExpression": "attribute_not_exists(pk) OR expires_at < :now",
                            "ExpressionAttributeValues": {":now": _n(now)},
                        }
                    },
                    {
                        "Put": {
                            "TableName": self.messages_table,
                            "Item": item,
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
            return message, True
        except ClientError as exc:
            # A conflict means a concurrent retry of the same message is committing:
            # look for the original as for a failed condition.
            if not (_condition_failed(exc) or _conflicted(exc)):
                raise StorageError(str(exc)) from exc
        original = self._original(key, message.room)
        if original is None:  # the key's message vanished: should not happen, but never lose it
            raise StorageError("idempotency key without its message")
        return original, False

    def _original(self, key: dict[str, Any], room: str) -> Message | None:
        idem = self._call(
            "get_item", TableName=self.messages_table, Key=key, ConsistentRead=True
        ).get("Item")
        if not idem:
            return None
        item = self._call(
            "get_item",
            TableName=self.messages_table,
            Key=Keys.message(room, idem["message_id"]["S"]),
            ConsistentRead=True,
        ).get("Item")
        return to_message(item) if item else None

    def page_messages(
        self, room: str, before: str | None, limit: int
    ) -> tuple[list[Message], str | None]:
        """One page of a room's messages, oldest first, and the cursor to the next older page.

        The cursor is None when DynamoDB says the partition has nothing older.
        """
        values = {":pk": _s(Keys.room(room))}
        if before is None:
            condition = "pk = :pk AND begins_with(sk, :msg)"
            values[":msg"] = _s(Keys.MESSAGE_PREFIX)
        else:
            # A room's partition holds only MSG# items, so "below the cursor" is enough.
            condition = "pk = :pk AND sk < :before"
            values[":before"] = Keys.message(room, before)["sk"]
        page = self._call(
            "query",
            TableName=self.messages_table,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
            ScanIndexForward=False,
            Limit=limit,
        )
        messages = [to_message(item) for item in reversed(page.get("Items", []))]
        more = "LastEvaluatedKey" in page
        return messages, (messages[0].id if more and messages else None)

    # -- plumbing --------------------------------------------------------------------

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            raise StorageError(f"{operation}: {exc}") from exc


def _condition_failed(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    if error.get("Code") == "ConditionalCheckFailedException":
        return True
    reasons = exc.response.get("CancellationReasons") or []
    if any(r.get("Code") == "ConditionalCheckFailed" for r in reasons):
        return True
    # moto (and older botocore) put the reasons only in the message text.
    return error.get("Code") == "TransactionCanceledException" and (
        "ConditionalCheckFailed" in error.get("Message", "")
    )


def _conflicted(exc: ClientError) -> bool:
    reasons = exc.response.get("CancellationReasons") or []
    return any(r.get("Code") == "TransactionConflict" for r in reasons) or (
        "TransactionConflict" in exc.response.get("Error", {}).get("Message", "")
    )


def _expired(item: dict[str, Any], now: int | None = None) -> bool:
    expires = item.get("expires_at")
    return expires is not None and int(expires["N"]) < (now or int(time.time()))
