"""The chat rules: who may say what, what is stored, and who receives which event.

Pure Python over two ports: a ``store`` (``chat.adapters.dynamodb.Store`` in
production) and ``connections`` (``chat.adapters.management_api.ManagementApi``). It
works in ``chat.model``'s terms and never sees boto3, HTTP or Lambda events, so the
rules can be read, and tested, on their own. ``chat.bootstrap`` builds it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from chat.model import (
    Connection,
    Delivery,
    Member,
    Message,
    MessageNotStored,
    PostOutcome,
    RateLimit,
    StorageError,
    UnknownConnection,
)
from chat.observability import logger, metrics
from chat.protocol import (
    ProtocolError,
    encode,
    history_event,
    iso_time,
    message_event,
    new_message_id,
    parse_history,
    parse_new_message,
    parse_room,
    parse_username,
    presence_event,
    typing_event,
    who_event,
)

_BUCKET_MS = 100  # rate-limit resolution
# How long a new connection may still be inside its own $connect (the Lambda timeout is
# 10 s): posts to it answer 410 meanwhile, which must not be taken for "gone".
CONNECT_GRACE_MS = 15_000


class StorePort(Protocol):
    def add_connection(self, conn: Connection) -> None: ...
    def get_connection(self, connection_id: str) -> Connection | None: ...
    def remove_connection(self, connection_id: str) -> Connection | None: ...
    def remove_member(self, room: str, connection_id: str) -> None: ...
    def room_members(self, room: str) -> list[Member]: ...
    def count_frame(
        self, connection_id: str, bucket: int, since_bucket: int
    ) -> tuple[Connection, int] | None: ...
    def save_message(self, message: Message) -> tuple[Message, bool]: ...
    def page_messages(
        self, room: str, before: str | None, limit: int
    ) -> tuple[list[Message], str | None]: ...


class ConnectionsPort(Protocol):
    def post(self, connection_id: str, data: bytes) -> PostOutcome: ...
    def post_many(
        self, connection_ids: list[str], data: bytes, deadline: float | None = None
    ) -> Delivery: ...


class Chat:
    """One invocation's view of the chat: the sender is ``connection_id``."""

    def __init__(
        self,
        store: StorePort,
        connections: ConnectionsPort,
        *,
        rate_limit: RateLimit | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.connections = connections
        self.rate_limit = rate_limit or RateLimit()
        self.deadline = deadline  # time.monotonic() by which fan-out must be done
        self.clock = clock

    # -- lifecycle ---------------------------------------------------------------------

    def connect(
        self, connection_id: str, query: Mapping[str, str] | None, connected_at: int
    ) -> Connection:
        """Validate the query string, record the connection, announce the join.

        Raises ProtocolError (-> HTTP 400) before anything is stored.
        """
        query = query or {}
        conn = Connection(
            connection_id=connection_id,
            username=parse_username(query.get("username")),
            room=parse_room(query.get("room")),
            connected_at=connected_at,
        )
        self.store.add_connection(conn)
        # API Gateway refuses posts to a connection during its own $connect (it is not
        # open yet), so the joiner is left out; the page asks `who` once it is open.
        # The announcement is best effort: failing the handshake now would leave the
        # stored connection behind as a ghost member.
        try:
            others = self._others(conn.room, connection_id)
        except StorageError:
            logger.exception("announcing a join failed")
            return conn
        self._broadcast(conn.room, others, presence_event(conn.room, conn.username, "join"))
        return conn

    def disconnect(self, connection_id: str) -> Connection | None:
        """Forget the connection and announce the leave; a second call does nothing."""
        conn = self.store.remove_connection(connection_id)
        if conn is not None:
            members = self.store.room_members(conn.room)
            self._broadcast(conn.room, members, presence_event(conn.room, conn.username, "leave"))
        return conn

    # -- actions -----------------------------------------------------------------------

    def new_message(self, connection_id: str, frame: Mapping[str, Any]) -> None:
        sender = self._count_frame(connection_id)
        request = parse_new_message(frame)
        now_ms = int(self.clock() * 1000)
        message = Message(
            id=new_message_id(now_ms),
            room=sender.room,  # identity comes from $connect, never from the frame
            username=sender.username,
            text=request.text,
            created_at=iso_time(now_ms),
            client_id=request.client_id,
        )
        try:
            stored, created = self.store.save_message(message)
        except StorageError as exc:
            logger.exception("storing a message failed")
            raise MessageNotStored(str(exc)) from None
        event = message_event(stored)
        if not created:
            # A retry of a stored message: the original goes back to the sender only.
            self.reply(connection_id, event)
            return
        metrics.add_metric(name="MessagesStored", unit="Count", value=1)
        try:
            members = self.store.room_members(sender.room)
        except StorageError:
            # Stored but the room could not be listed: tell the sender it is safe; the
            # others will see it in history.
            logger.exception("listing the room failed after storing a message")
            members = [Member(connection_id, sender.username, sender.connected_at)]
        self._broadcast(sender.room, members, event)

    def history(self, connection_id: str, frame: Mapping[str, Any]) -> None:
        sender = self._identity(connection_id)
        request = parse_history(frame)
        messages, before = self.store.page_messages(sender.room, request.before, request.limit)
        self.reply(connection_id, history_event(sender.room, messages, before))

    def who(self, connection_id: str) -> None:
        sender = self._identity(connection_id)
        usernames = [m.username for m in self.store.room_members(sender.room)]
        self.reply(connection_id, who_event(sender.room, usernames))

    def typing(self, connection_id: str) -> None:
        sender = self._identity(connection_id)
        others = self._others(sender.room, connection_id)
        self._broadcast(sender.room, others, typing_event(sender.room, sender.username))

    # -- delivery ----------------------------------------------------------------------

    def reply(self, connection_id: str, event: Mapping[str, Any]) -> None:
        """Send an event to the sender only (a gone sender is left to its $disconnect)."""
        if self.connections.post(connection_id, encode(event)) in ("unsent", "failed"):
            metrics.add_metric(name="FanoutFailures", unit="Count", value=1)

    def _broadcast(self, room: str, members: list[Member], event: Mapping[str, Any]) -> None:
        if not members:
            return
        ids = [m.connection_id for m in members]
        delivery = self.connections.post_many(ids, encode(event), self.deadline)
        metrics.add_metric(name="Recipients", unit="Count", value=len(delivery.sent))
        undelivered = delivery.unsent + delivery.failed
        if undelivered:
            metrics.add_metric(name="FanoutFailures", unit="Count", value=len(undelivered))
            logger.warning("fan-out failures", extra={"room": room, "failed": undelivered})
        if delivery.gone:
            # A connection whose $connect is still running also answers 410 (it is not
            # open yet): it is not dead, and deleting it would orphan a live socket.
            opened_before = int(self.clock() * 1000) - CONNECT_GRACE_MS
            born = {m.connection_id: m.connected_at for m in members}
            dead = [cid for cid in delivery.gone if born.get(cid, 0) < opened_before]
            if dead:
                self._remove_gone(room, dead, told=delivery.sent)

    def _remove_gone(self, room: str, dead: list[str], told: list[str]) -> None:
        """Drop connections API Gateway says are gone, and tell the room they left.

        The leave goes only to the connections in ``told``, which just received a post
        (no second round of clean-up from inside a clean-up).
        """
        left: list[Connection] = []
        for cid in dead:
            try:
                conn = self.store.remove_connection(cid)
                if conn is None:
                    self.store.remove_member(room, cid)
                else:
                    left.append(conn)
            except StorageError:
                logger.exception("removing a gone connection failed", extra={"target": cid})
        metrics.add_metric(name="StaleConnectionsRemoved", unit="Count", value=len(dead))
        for conn in left:
            self.connections.post_many(
                told, encode(presence_event(room, conn.username, "leave")), self.deadline
            )

    # -- rules -------------------------------------------------------------------------

    def _others(self, room: str, connection_id: str) -> list[Member]:
        return [m for m in self.store.room_members(room) if m.connection_id != connection_id]

    def _identity(self, connection_id: str) -> Connection:
        conn = self.store.get_connection(connection_id)
        if conn is None:
            raise UnknownConnection(connection_id)
        return conn

    def _count_frame(self, connection_id: str) -> Connection:
        """Identity of the sender, once this frame is within the rate limit.

        A sliding window of ``window_s`` seconds in 100 ms buckets: a burst across a
        window edge cannot double the rate, as a fixed window would allow.
        """
        limit, window_s = self.rate_limit.messages, self.rate_limit.window_s
        bucket = int(self.clock() * 1000) // _BUCKET_MS
        counted = self.store.count_frame(
            connection_id, bucket, since_bucket=bucket - window_s * 1000 // _BUCKET_MS + 1
        )
        if counted is None:
            raise UnknownConnection(connection_id)
        sender, recent = counted
        if recent > limit:
            raise ProtocolError(
                "rate_limited", f"at most {limit} messages every {window_s} seconds; slow down"
            )
        return sender
