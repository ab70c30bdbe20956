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
    ``ROOM#<room>/ MSG#<id>``  a message; ids sort by time, so a room reads newest-first.
                               Its whole life is on this one item: ``v`` (version, absent
                               means 1), ``edited_at``, ``deleted_at`` (a tombstone has no
                               ``text``), one string set per emoji ``x:<emoji>`` (who
                               reacted), ``xs`` (the set of emoji, for the cap), ``rb``/``rp``
                               (when reactions were last sent / a delayed send is pending)
    ``IDEM#<room>#<user>#<client_id> / IDEM``  idempotency key -> message id, 24 h TTL
    ``USER#<user> / READ#<room>``  the user's read marker in a room: ``marker`` (a message
                               id, only ever raised), ``marked_at``

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
    6. edit, delete, react: one conditional ``UpdateItem`` on the message item (author,
       not deleted, the emoji cap, "not already there" in its condition; ``ALL_NEW`` gives
       the event's fields). Only when it fails, one ``GetItem`` says why. A delete that
       finds reactions removes them with a second ``UpdateItem``; removing an emoji's
       last user takes it out of ``xs`` with a second one.
    7. reactions coalescing: one conditional ``UpdateItem`` claims the right to send now
       (``rb`` a second old, nothing pending), else one marks a delayed send pending
       (``rp``); the delayed send claims with one more.
    8. read markers: one conditional ``UpdateItem`` (``marker < :id``); ``history`` reads
       it with one ``GetItem``; ``rooms`` is one ``Query`` of the user's partition and, for
       each of at most 50 rooms, one or two ``Query`` pages of at most 100 keys after the
       marker (the unread count is capped at 100).
No Scan anywhere: every path reads by key.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from chat.model import (
    Connection,
    Member,
    Message,
    MessageMissing,
    NotAuthor,
    RoomLayout,
    StorageError,
    TooManyReactions,
)

CONNECTION_TTL_S = 2 * 3600 + 600  # API Gateway's 2 h limit, plus a margin
IDEMPOTENCY_TTL_S = 24 * 3600  # PROTOCOL.md: retries are recognised for 24 hours
_RATE = "rl"  # rate-limit bucket counters on the identity item: rl<bucket number>
_RATE_PREFIXES = {"messages": _RATE, "reactions": "rr"}  # reactions count on rr<bucket>
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
    def read_marker(username: str, room: str) -> dict[str, Any]:
        return _key(Keys.user(username), Keys.READ_PREFIX + room)

    READ_PREFIX = "READ#"

    @staticmethod
    def user(username: str) -> str:
        """A user's partition in Messages (usernames cannot contain '#')."""
        return f"USER#{username}"

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


_REACTION = "x:"  # x:<emoji>: the users who reacted with it (a string set)
_EMOJI_SET = "xs"  # the emoji present (a string set): the cap's count
_VERSION = "v"
_SENT_AT = "rb"  # when a reactions event of this message was last sent (epoch ms)
_PENDING = "rp"  # when a delayed reactions send was queued (epoch ms), while it is
# A pending mark older than this is taken for lost (its queue item failed): a burst
# after it is sent again rather than never.
PENDING_STALE_MS = 60_000


def to_message(item: dict[str, Any]) -> Message:
    reactions = {
        name[len(_REACTION):]: frozenset(value["SS"])
        for name, value in item.items()
        if name.startswith(_REACTION) and "SS" in value
    }
    return Message(
        id=item["id"]["S"],
        room=item["room"]["S"],
        username=item["username"]["S"],
        text=item["text"]["S"] if "text" in item else "",
        created_at=item["created_at"]["S"],
        client_id=item["client_id"]["S"] if "client_id" in item else None,
        version=int(item[_VERSION]["N"]) if _VERSION in item else 1,
        edited_at=item["edited_at"]["S"] if "edited_at" in item else None,
        deleted_at=item["deleted_at"]["S"] if "deleted_at" in item else None,
        reactions=reactions,
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
        self, connection_id: str, bucket: int, since_bucket: int, kind: str = "messages"
    ) -> tuple[Connection, int] | None:
        """Count one frame; return the sender and its frames since a bucket.

        ``kind``: which limit the frame counts toward, ``messages`` (``new_message``,
        ``edit_message``, ``delete_message``: counters ``rl<n>``) or ``reactions``
        (``react``: ``rr<n>``).

        A sliding window made of short buckets (``rl<bucket>`` counters on the identity
        item): one atomic ``ADD`` that also returns the identity, so the per-message path
        needs no separate read, and concurrent frames cannot both slip under the limit.
        None when the connection is not (or no longer) registered.
        """
        prefix = _RATE_PREFIXES[kind]
        try:
            item = self.client.update_item(
                TableName=self.connections_table,
                Key=Keys.connection(connection_id),
                UpdateExpression="ADD #bucket :one",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#bucket": f"{prefix}{bucket}"},
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
            int(name[len(prefix) :]): int(value["N"])
            for name, value in item.items()
            if name.startswith(prefix) and name[len(prefix) :].isdigit()
        }
        stale = [b for b in counts if b < since_bucket]
        if len(stale) >= _STALE_BUCKETS_KEPT:  # rare: tidy up once in a while, not per frame
            names = {f"#s{i}": f"{prefix}{b}" for i, b in enumerate(stale)}
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

    # -- a message's life --------------------------------------------------------------

    # The condition every change of a message shares: it exists and is not a tombstone.
    _LIVE = "attribute_exists(pk) AND attribute_not_exists(deleted_at)"

    def edit_message(self, room: str, message_id: str, username: str, text: str,
                     edited_at: str) -> Message:
        """Replace the text of ``username``'s message, version + 1: one UpdateItem."""
        return self._change(
            room, message_id, username,
            "SET #text = :text, edited_at = :at, #v = if_not_exists(#v, :one) + :one",
            {":text": _s(text)}, edited_at,
        )

    def delete_message(self, room: str, message_id: str, username: str,
                       deleted_at: str) -> Message:
        """Make ``username``'s message a tombstone, version + 1: its text and reactions
        are removed from the item (one UpdateItem; a second one when it had reactions)."""
        message = self._change(
            room, message_id, username,
            "SET deleted_at = :at, #v = if_not_exists(#v, :one) + :one "
            f"REMOVE #text, {_EMOJI_SET}, {_SENT_AT}, {_PENDING}",
            {}, deleted_at,
        )
        if message.reactions:
            # No reaction can be added any more (every react requires _LIVE), so this
            # removes them all.
            names = {f"#x{i}": _REACTION + e for i, e in enumerate(message.reactions)}
            self._call(
                "update_item", TableName=self.messages_table, Key=Keys.message(room, message_id),
                UpdateExpression="REMOVE " + ", ".join(names),
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames=names,
            )
        return message._replace(text="", reactions={})

    def _change(self, room: str, message_id: str, username: str, update: str,
                values: dict[str, Any], at: str) -> Message:
        try:
            item = self.client.update_item(
                TableName=self.messages_table,
                Key=Keys.message(room, message_id),
                UpdateExpression=update,
                ConditionExpression=f"{self._LIVE} AND #u = :me",
                ExpressionAttributeNames={"#text": "text", "#v": _VERSION, "#u": "username"},
                ExpressionAttributeValues={
                    **values, ":at": _s(at), ":one": _n(1), ":me": _s(username)},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc
            current = self.get_message(room, message_id)
            if current is None or current.deleted_at is not None:
                raise MessageMissing(message_id) from None
            if current.username != username:
                raise NotAuthor(message_id) from None
            raise StorageError("a message changed while it was being changed") from None
        return to_message(item)

    def get_message(self, room: str, message_id: str) -> Message | None:
        item = self._call(
            "get_item", TableName=self.messages_table, Key=Keys.message(room, message_id),
            ConsistentRead=True,
        ).get("Item")
        return to_message(item) if item else None

    def react(self, room: str, message_id: str, username: str, emoji: str, on: bool,
              max_emoji: int) -> Message | None:
        """Add (``on``) or remove ``username``'s ``emoji`` on a message: one UpdateItem.

        Returns the message with its reactions afterwards, or None when nothing changed
        (added twice, or removing what is not there). Raises MessageMissing (no such
        message, or deleted) and TooManyReactions (a new emoji past ``max_emoji``).
        """
        names = {"#e": _REACTION + emoji}
        values = {":u": {"SS": [username]}, ":me": _s(username)}
        if on:
            update = f"ADD #e :u, {_EMOJI_SET} :es"
            condition = (f"{self._LIVE} AND NOT contains(#e, :me) AND (contains({_EMOJI_SET}, "
                         f":emoji) OR attribute_not_exists({_EMOJI_SET}) OR "
                         f"size({_EMOJI_SET}) < :cap)")
            values.update({":es": {"SS": [emoji]}, ":emoji": _s(emoji), ":cap": _n(max_emoji)})
        else:
            update = "DELETE #e :u"
            condition = f"{self._LIVE} AND contains(#e, :me)"
        try:
            item = self.client.update_item(
                TableName=self.messages_table, Key=Keys.message(room, message_id),
                UpdateExpression=update, ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc
            current = self.get_message(room, message_id)
            if current is None or current.deleted_at is not None:
                raise MessageMissing(message_id) from None
            has = username in current.reactions.get(emoji, ())
            if on and not has and emoji not in current.reactions:
                raise TooManyReactions(message_id) from None
            return None  # already there / not there: nothing to do
        message = to_message(item)
        if not on and emoji not in message.reactions:
            # The emoji's last user left: take it out of the cap's count, unless someone
            # reacted with it again meanwhile.
            try:
                self.client.update_item(
                    TableName=self.messages_table, Key=Keys.message(room, message_id),
                    UpdateExpression=f"DELETE {_EMOJI_SET} :es",
                    ConditionExpression="attribute_exists(pk) AND attribute_not_exists(#e)",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={":es": {"SS": [emoji]}},
                )
            except ClientError as exc:
                if not _condition_failed(exc):
                    raise StorageError(f"update_item: {exc}") from exc
        return message

    def claim_reactions_send(self, room: str, message_id: str, now_ms: int,
                             interval_ms: int, lease_ms: int,
                             pending: bool = False) -> Message | None:
        """Take the right to send a message's reactions now: one conditional UpdateItem.

        Granted (the message, with its latest reactions) when the last send ended at
        least ``interval_ms`` ago and, for a live change, no delayed send is pending; for
        the delayed send itself (``pending``), only while its mark is there. None
        otherwise. While the send runs, ``rb`` holds ``now_ms + lease_ms`` (nobody else
        sends); ``reactions_sent`` then records when it ended.
        """
        if pending:
            waiting = f"attribute_exists({_PENDING})"
            update = f"SET {_SENT_AT} = :lease REMOVE {_PENDING}"
        else:
            waiting = f"(attribute_not_exists({_PENDING}) OR {_PENDING} < :stale)"
            update = f"SET {_SENT_AT} = :lease"
        try:
            item = self.client.update_item(
                TableName=self.messages_table, Key=Keys.message(room, message_id),
                UpdateExpression=update,
                ConditionExpression=(f"{self._LIVE} AND {waiting} AND "
                                     f"(attribute_not_exists({_SENT_AT}) OR {_SENT_AT} <= :cut)"),
                ExpressionAttributeValues={
                    ":lease": _n(now_ms + lease_ms), ":cut": _n(now_ms - interval_ms),
                    **({} if pending else {":stale": _n(now_ms - PENDING_STALE_MS)})},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc
            return None
        return to_message(item)

    def reactions_sent(self, room: str, message_id: str, ended_ms: int) -> None:
        """Record when a reactions send ended (the next may start ``interval_ms`` later)."""
        try:
            self.client.update_item(
                TableName=self.messages_table, Key=Keys.message(room, message_id),
                UpdateExpression=f"SET {_SENT_AT} = :end",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":end": _n(ended_ms)},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc

    def mark_reactions_pending(self, room: str, message_id: str, now_ms: int) -> int | None:
        """Mark a delayed reactions send as pending: one conditional UpdateItem.

        Returns when the last send was (epoch ms, 0 if never) if this call marked it, so
        the caller queues the send; None when one is pending already (it will carry this
        change too) or the message is gone.
        """
        try:
            item = self.client.update_item(
                TableName=self.messages_table, Key=Keys.message(room, message_id),
                UpdateExpression=f"SET {_PENDING} = :now",
                ConditionExpression=(f"{self._LIVE} AND (attribute_not_exists({_PENDING}) "
                                     f"OR {_PENDING} < :stale)"),
                ExpressionAttributeValues={
                    ":now": _n(now_ms), ":stale": _n(now_ms - PENDING_STALE_MS)},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc
            return None
        return int(item[_SENT_AT]["N"]) if _SENT_AT in item else 0

    def reactions_pending(self, room: str, message_id: str) -> tuple[bool, int]:
        """Whether a delayed send is still pending on a live message, and the last send."""
        item = self._call(
            "get_item", TableName=self.messages_table, Key=Keys.message(room, message_id),
            ConsistentRead=True,
        ).get("Item")
        if not item or "deleted_at" in item or _PENDING not in item:
            return False, 0
        return True, int(item[_SENT_AT]["N"]) if _SENT_AT in item else 0

    def clear_reactions_pending(self, room: str, message_id: str) -> None:
        """Forget a pending mark whose queue item could not be sent."""
        try:
            self.client.update_item(
                TableName=self.messages_table, Key=Keys.message(room, message_id),
                UpdateExpression=f"REMOVE {_PENDING}",
                ConditionExpression="attribute_exists(pk)",
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc

    # -- read markers ------------------------------------------------------------------

    def mark_read(self, username: str, room: str, message_id: str, now_ms: int) -> bool:
        """Move the user's marker in ``room`` forward to ``message_id``; False if it was
        already there or further (one conditional UpdateItem)."""
        try:
            self.client.update_item(
                TableName=self.messages_table, Key=Keys.read_marker(username, room),
                UpdateExpression="SET #m = :id, #room = :room, marked_at = :now",
                ConditionExpression="attribute_not_exists(#m) OR #m < :id",
                ExpressionAttributeNames={"#room": "room", "#m": "marker"},
                ExpressionAttributeValues={
                    ":id": _s(message_id), ":room": _s(room), ":now": _n(now_ms)},
            )
        except ClientError as exc:
            if not _condition_failed(exc):
                raise StorageError(f"update_item: {exc}") from exc
            return False
        return True

    def read_marker(self, username: str, room: str) -> str | None:
        item = self._call(
            "get_item", TableName=self.messages_table, Key=Keys.read_marker(username, room),
            ConsistentRead=True,
        ).get("Item")
        return item["marker"]["S"] if item and "marker" in item else None

    def read_markers(self, username: str, limit: int) -> list[tuple[str, str]]:
        """The user's (room, marker) pairs, the ``limit`` marked most recently.

        One Query of the user's partition (a marker is ~100 bytes: a 1 MB page holds
        thousands of rooms; further pages are not read).
        """
        page = self._call(
            "query", TableName=self.messages_table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :read)",
            ExpressionAttributeValues={":pk": _s(Keys.user(username)),
                                       ":read": _s(Keys.READ_PREFIX)},
        )
        items = sorted(page.get("Items", []), key=lambda i: -int(i["marked_at"]["N"]))
        return [(i["room"]["S"], i["marker"]["S"]) for i in items[:limit]]

    def unread(self, room: str, marker: str, username: str, cap: int,
               pages: int = 2) -> tuple[int, str]:
        """Messages after ``marker`` not sent by ``username`` and not deleted (at most
        ``cap``), and the newest message id (``marker`` if nothing came after it).

        Newest first, ``cap`` keys a page, at most ``pages`` pages: bounded whatever the
        room's history.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.messages_table,
            "KeyConditionExpression": "pk = :pk AND sk > :marker",
            "ExpressionAttributeValues": {
                ":pk": _s(Keys.room(room)), ":marker": Keys.message(room, marker)["sk"]},
            "ProjectionExpression": "#id, #u, deleted_at",
            "ExpressionAttributeNames": {"#id": "id", "#u": "username"},
            "ScanIndexForward": False,
            "Limit": cap,
        }
        count, newest = 0, marker
        for _ in range(pages):
            page = self._call("query", **kwargs)
            found = page.get("Items", [])
            if found and newest == marker:
                newest = found[0]["id"]["S"]
            count += sum(1 for i in found
                         if i["username"]["S"] != username and "deleted_at" not in i)
            if count >= cap or "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return min(count, cap), newest

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
        except BotoCoreError as exc:  # timed out, unreachable: the store failed all the same
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
