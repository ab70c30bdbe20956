"""The chat rules: who may say what, what is stored, and who receives which event.

Pure Python over three ports: a ``store`` (``chat.adapters.dynamodb.Store`` in
production), ``connections`` (``chat.adapters.management_api.ManagementApi``) and the
fan-out ``queue`` (``chat.adapters.queue.FanoutQueue``). It works in ``chat.model``'s
terms and never sees boto3, HTTP or Lambda events, so the rules can be read, and
tested, on their own. ``chat.bootstrap`` builds it.

Big rooms. A room's connections are listed in shards of at most ``shard_size``
(``chat.model.RoomLayout``). A room within shard 0 is handled in-line, as it always was:
one Query, one fan-out. Beyond it, ``new_message`` answers the sender and posts to shard
0 itself, then puts one work item per other shard on the queue; the fan-out worker
(``deliver``) posts each shard. ``typing`` and ``presence`` are not sent in such rooms
(PROTOCOL.md), and ``who`` gives a count and a capped list.

A message's life. Edits and deletes are stored (one conditional write on the message)
and then travel exactly like a new message (``_fan_out``). Reactions are coalesced: the
first change of a burst is sent at once; the rest within ``REACTIONS_INTERVAL_MS`` mark
the message "pending" and put one ``ReactionsFlush`` on the queue, delayed, which sends
the latest summary once (``flush_reactions``). Beyond one shard reactions are not sent
to the room (only the sender gets its summary), nor read markers.
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, Future
from typing import Any, Protocol

from chat.model import (
    DEFAULT_SHARD_SIZE,
    Connection,
    Delivery,
    Member,
    Message,
    MessageMissing,
    MessageNotStored,
    NotAuthor,
    PostOutcome,
    RateLimit,
    ReactionsFlush,
    RoomLayout,
    RoomSummary,
    ShardWork,
    StorageError,
    TooManyReactions,
    UnknownConnection,
)
from chat.observability import logger, metrics
from chat.protocol import (
    REACTIONS_INTERVAL_MS,
    REACTIONS_MAX,
    ROOMS_MAX,
    UNREAD_MAX,
    ProtocolError,
    client_id_of,
    encode,
    history_event,
    id_time_ms,
    iso_time,
    message_deleted_event,
    message_event,
    message_id_of,
    message_updated_event,
    new_message_id,
    parse_edit_message,
    parse_history,
    parse_new_message,
    parse_react,
    parse_room,
    parse_username,
    presence_event,
    reactions_event,
    read_marker_event,
    rooms_event,
    typing_event,
    who_event,
)

_BUCKET_MS = 100  # rate-limit resolution
# How long a new connection may still be inside its own $connect (the Lambda timeout is
# 10 s): posts to it answer 410 meanwhile, which must not be taken for "gone".
CONNECT_GRACE_MS = 15_000
# The fan-out worker: re-queues of what it could not deliver before giving up, and the
# backoff between rounds of posts API Gateway refused (429).
MAX_REQUEUES = 20  # with up to 30 s of tries each and delays up to 60 s: ~half an hour
# Worst case of one post: connect and read timeouts, plus a retry's backoff.
_POST_WORST_CASE_S = 3.5
# Posts per post_many call in the worker (between checks of the time left), and rounds
# of retrying what API Gateway refused within one invocation.
_CHUNK = 256
_MAX_ROUNDS = 12
_RETRY_BASE_S = 0.2
_RETRY_CAP_S = 4.0
# How long a reactions send may hold the message's "sending" mark: the function's timeout
# (a send that died with it frees the message this long after it started).
_REACTIONS_LEASE_MS = 10_000


class StorePort(Protocol):
    def add_connection(self, conn: Connection, shard_size: int) -> Connection: ...
    def get_connection(self, connection_id: str) -> Connection | None: ...
    def remove_connection(self, connection_id: str) -> Connection | None: ...
    def remove_member(self, room: str, connection_id: str, shard: int = 0) -> None: ...
    def room_shard(self, room: str, shard: int = 0) -> tuple[list[Member], RoomLayout]: ...
    def count_frame(
        self, connection_id: str, bucket: int, since_bucket: int, kind: str = "messages"
    ) -> tuple[Connection, int] | None: ...
    def layout(self, room: str) -> RoomLayout: ...
    def save_message(self, message: Message) -> tuple[Message, bool]: ...
    def get_message(self, room: str, message_id: str) -> Message | None: ...
    def edit_message(self, room: str, message_id: str, username: str, text: str,
                     edited_at: str) -> Message: ...
    def delete_message(self, room: str, message_id: str, username: str,
                       deleted_at: str) -> Message: ...
    def react(self, room: str, message_id: str, username: str, emoji: str, on: bool,
              max_emoji: int) -> Message | None: ...
    def claim_reactions_send(self, room: str, message_id: str, now_ms: int,
                             interval_ms: int, lease_ms: int,
                             pending: bool = False) -> Message | None: ...
    def reactions_sent(self, room: str, message_id: str, ended_ms: int) -> None: ...
    def mark_reactions_pending(self, room: str, message_id: str, now_ms: int) -> int | None: ...
    def reactions_pending(self, room: str, message_id: str) -> tuple[bool, int]: ...
    def clear_reactions_pending(self, room: str, message_id: str) -> None: ...
    def mark_read(self, username: str, room: str, message_id: str, now_ms: int) -> bool: ...
    def read_marker(self, username: str, room: str) -> str | None: ...
    def read_markers(self, username: str, limit: int) -> list[tuple[str, str]]: ...
    def unread(self, room: str, marker: str, username: str, cap: int,
               pages: int = 2) -> tuple[int, str]: ...
    def page_messages(
        self, room: str, before: str | None, limit: int
    ) -> tuple[list[Message], str | None]: ...


class ConnectionsPort(Protocol):
    def post(self, connection_id: str, data: bytes) -> PostOutcome: ...
    def post_many(
        self, connection_ids: list[str], data: bytes, deadline: float | None = None
    ) -> Delivery: ...


class QueuePort(Protocol):
    def enqueue(self, works: Sequence[ShardWork | ReactionsFlush], delay_s: int = 0) -> None: ...


class Chat:
    """One invocation's view of the chat: the sender is ``connection_id``."""

    def __init__(
        self,
        store: StorePort,
        connections: ConnectionsPort,
        *,
        queue: QueuePort | None = None,
        shard_size: int = DEFAULT_SHARD_SIZE,
        rate_limit: RateLimit | None = None,
        deadline: float | None = None,
        clock: Callable[[], float] = time.time,
        alongside: Executor | None = None,
    ) -> None:
        self.store = store
        self.connections = connections
        self.queue = queue
        self.shard_size = shard_size
        self.rate_limit = rate_limit or RateLimit()
        self.deadline = deadline  # time.monotonic() by which fan-out must be done
        self.clock = clock
        # Runs a read while this thread writes (``new_message`` lists the room while it
        # stores the message); without one, the read runs first, on this thread.
        self.alongside = alongside

    # -- lifecycle ---------------------------------------------------------------------

    def connect(
        self, connection_id: str, query: Mapping[str, str] | None, connected_at: int,
        username: str | None = None,
    ) -> Connection:
        """Validate the query string, record the connection, announce the join.

        ``username``: a verified one (signed-in users, from the authorizer); the query's
        ``username`` is then ignored. Raises ProtocolError (-> HTTP 400) before anything
        is stored.
        """
        query = query or {}
        conn = Connection(
            connection_id=connection_id,
            username=parse_username(username if username is not None
                                    else query.get("username")),
            room=parse_room(query.get("room")),
            connected_at=connected_at,
        )
        conn = self.store.add_connection(conn, self.shard_size)
        # API Gateway refuses posts to a connection during its own $connect (it is not
        # open yet), so the joiner is left out; the page asks `who` once it is open.
        # The announcement is best effort: failing the handshake now would leave the
        # stored connection behind as a ghost member.
        try:
            members, layout = self.store.room_shard(conn.room)
        except StorageError:
            logger.exception("announcing a join failed")
            return conn
        if not layout.sharded:  # a big room is not told of every join (PROTOCOL.md)
            others = [m for m in members if m.connection_id != connection_id]
            self._broadcast(conn.room, others, presence_event(conn.room, conn.username, "join"))
        return conn

    def disconnect(self, connection_id: str) -> Connection | None:
        """Forget the connection and announce the leave; a second call does nothing."""
        conn = self.store.remove_connection(connection_id)
        if conn is not None:
            members, layout = self.store.room_shard(conn.room)
            if not layout.sharded:
                leave = presence_event(conn.room, conn.username, "leave")
                self._broadcast(conn.room, members, leave)
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
        # The room is listed while the message is stored: neither needs the other, so a
        # message waits for one DynamoDB round trip less. The listing is read only once
        # the message is stored (a retry or a failed write never uses it).
        listing = self._run_alongside(self.store.room_shard, sender.room)
        try:
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
                members, layout = listing.result()
            except StorageError:
                # Stored but the room could not be listed: tell the sender it is safe;
                # the others will see it in history.
                logger.exception("listing the room failed after storing a message")
                self.reply(connection_id, event)
                return
        finally:
            # Never leave a read running into the next invocation (Lambda freezes the
            # environment when the handler returns).
            if not listing.cancel():
                with contextlib.suppress(Exception):
                    listing.result()
        self._fan_out(connection_id, sender.room, event, members, layout)

    def _fan_out(self, connection_id: str, room: str, event: Mapping[str, Any],
                 members: list[Member], layout: RoomLayout) -> None:
        """An event for the whole room, the sender included, stored before this is called:
        in-line within one shard, through the queue beyond it (at least once)."""
        if not layout.sharded:
            self._broadcast(room, members, event)
            return
        # A big room: the sender first (its echo confirms the message), then the other
        # shards through the queue, then shard 0 here while the workers start.
        data = encode(event)
        text = data.decode("utf-8")
        self.reply(connection_id, event)
        self._enqueue_shards(room, layout, text, skip=connection_id)
        delivery = self._broadcast(
            room, [m for m in members if m.connection_id != connection_id], event, data=data)
        if delivery.unsent and self.queue is not None:
            # Shard 0's posts API Gateway still refused (the big room's own fan-out keeps
            # the account's quota busy): the workers try them again, as they do theirs.
            work = ShardWork(room, 0, text, skip=connection_id)
            try:
                self._requeue(work, delivery.unsent)
            except StorageError:
                logger.exception("re-queueing shard 0's refused posts failed",
                                 extra={"room": room})

    # -- a message's life ----------------------------------------------------------------

    def edit_message(self, connection_id: str, frame: Mapping[str, Any]) -> None:
        sender = self._count_frame(connection_id)  # edits count toward the message rate
        request = parse_edit_message(frame)
        now_ms = int(self.clock() * 1000)
        with _refusals(frame):
            message = self.store.edit_message(
                sender.room, request.id, sender.username, request.text, iso_time(now_ms))
        metrics.add_metric(name="MessagesEdited", unit="Count", value=1)
        members, layout = self.store.room_shard(sender.room)
        self._fan_out(connection_id, sender.room, message_updated_event(message), members,
                      layout)

    def delete_message(self, connection_id: str, frame: Mapping[str, Any]) -> None:
        sender = self._count_frame(connection_id)  # deletes count toward the message rate
        message_id = message_id_of(frame)
        now_ms = int(self.clock() * 1000)
        with _refusals(frame):
            message = self.store.delete_message(
                sender.room, message_id, sender.username, iso_time(now_ms))
        metrics.add_metric(name="MessagesDeleted", unit="Count", value=1)
        members, layout = self.store.room_shard(sender.room)
        self._fan_out(connection_id, sender.room, message_deleted_event(message), members,
                      layout)

    def react(self, connection_id: str, frame: Mapping[str, Any]) -> None:
        sender = self._count_frame(connection_id, kind="reactions")
        request = parse_react(frame)
        with _refusals(frame):
            message = self.store.react(sender.room, request.id, sender.username,
                                       request.emoji, request.on, REACTIONS_MAX)
        if message is None:
            return  # added twice, or removed what was not there: nothing changed
        room = sender.room
        now_ms = int(self.clock() * 1000)
        claimed = self.store.claim_reactions_send(room, request.id, now_ms,
                                                  REACTIONS_INTERVAL_MS, _REACTIONS_LEASE_MS)
        if claimed is not None:
            self._send_reactions(room, claimed, only=connection_id)
            return
        if self.store.layout(room).sharded:
            # Beyond one shard the room is not told (PROTOCOL.md); the sender is.
            self.reply(connection_id, reactions_event(message))
            return
        last_sent = self.store.mark_reactions_pending(room, request.id, now_ms)
        if last_sent is not None:  # this change starts the wait: one delayed send
            self._queue_flush(ReactionsFlush(room, request.id), last_sent, now_ms)

    def flush_reactions(self, work: ReactionsFlush) -> None:
        """The delayed send of a burst of reactions: the latest summary, once."""
        now_ms = int(self.clock() * 1000)
        message = self.store.claim_reactions_send(
            work.room, work.message_id, now_ms, REACTIONS_INTERVAL_MS, _REACTIONS_LEASE_MS,
            pending=True)
        if message is None:
            pending, last_sent = self.store.reactions_pending(work.room, work.message_id)
            if pending and work.attempt < MAX_REQUEUES:
                # Early: SQS delays are whole seconds, or a send was still running.
                self._queue_flush(work._replace(attempt=work.attempt + 1), last_sent, now_ms)
            return  # sent already (a duplicate delivery), or the message was deleted
        self._send_reactions(work.room, message, only=None)

    def _send_reactions(self, room: str, message: Message, only: str | None) -> None:
        """The claimed send: the room within one shard; beyond it, only ``only`` (the
        sender). Then record when it ended: the next send starts an interval later, so
        two never reach a connection closer than that, however long a fan-out takes."""
        try:
            members, layout = self.store.room_shard(room)
            if not layout.sharded:
                self._broadcast(room, members, reactions_event(message))
            elif only is not None:
                self.reply(only, reactions_event(message))
        finally:
            self.store.reactions_sent(room, message.id, int(self.clock() * 1000))

    def _queue_flush(self, work: ReactionsFlush, last_sent: int, now_ms: int) -> None:
        # Until the interval after the last send has passed; at most 2 s at a time (a send
        # still running holds a lease, not its end: the delayed send looks again).
        wait_ms = last_sent + REACTIONS_INTERVAL_MS - now_ms
        delay_s = min(2, max(1, math.ceil(wait_ms / 1000)))
        try:
            if self.queue is None:
                raise StorageError("no fan-out queue")
            self.queue.enqueue([work], delay_s=delay_s)
        except StorageError:
            # Without the delayed send, the pending mark would hold back every later
            # burst until it goes stale: take it back.
            logger.exception("queueing a reactions send failed", extra={"room": work.room})
            with contextlib.suppress(StorageError):
                self.store.clear_reactions_pending(work.room, work.message_id)

    def mark_read(self, connection_id: str, frame: Mapping[str, Any]) -> None:
        sender = self._identity(connection_id)
        message_id = message_id_of(frame)
        if self.store.get_message(sender.room, message_id) is None:
            raise ProtocolError("not_found", "no such message in this room", client_id_of(frame))
        moved = self.store.mark_read(sender.username, sender.room, message_id,
                                     int(self.clock() * 1000))
        if not moved:
            return  # never back
        members, layout = self.store.room_shard(sender.room)
        if layout.sharded:
            return  # other tabs learn it from history (PROTOCOL.md)
        tabs = [m for m in members
                if m.username == sender.username and m.connection_id != connection_id]
        self._broadcast(sender.room, tabs, read_marker_event(sender.room, message_id))

    def rooms(self, connection_id: str) -> None:
        sender = self._identity(connection_id)
        summaries: list[tuple[int, RoomSummary]] = []
        for room, marker in self.store.read_markers(sender.username, ROOMS_MAX):
            unread, newest = self.store.unread(room, marker, sender.username, UNREAD_MAX)
            at = id_time_ms(newest)
            summaries.append((at, RoomSummary(room, unread, iso_time(at))))
        summaries.sort(key=lambda pair: (-pair[0], pair[1].room))
        self.reply(connection_id, rooms_event([summary for _, summary in summaries]))

    def history(self, connection_id: str, frame: Mapping[str, Any]) -> None:
        sender = self._identity(connection_id)
        request = parse_history(frame)
        marker = self._run_alongside(self.store.read_marker, sender.username, sender.room)
        try:
            messages, before = self.store.page_messages(
                sender.room, request.before, request.limit)
            read_marker = marker.result()
        finally:
            if not marker.cancel():
                with contextlib.suppress(Exception):
                    marker.result()
        self.reply(connection_id, history_event(sender.room, messages, before, read_marker))

    def who(self, connection_id: str) -> None:
        sender = self._identity(connection_id)
        members, layout = self.store.room_shard(sender.room)
        usernames = [m.username for m in members]
        # Beyond one shard, the names are shard 0's and the count is the room's
        # connections (reading every shard for a list nobody can show is not worth it).
        count = layout.connections if layout.sharded else None
        self.reply(connection_id, who_event(sender.room, usernames, count=count))

    def typing(self, connection_id: str) -> None:
        sender = self._identity(connection_id)
        members, layout = self.store.room_shard(sender.room)
        if layout.sharded:
            return  # one of thousands typing is noise, and a fan-out per burst (PROTOCOL.md)
        others = [m for m in members if m.connection_id != connection_id]
        self._broadcast(sender.room, others, typing_event(sender.room, sender.username))

    def _run_alongside(self, read: Callable[..., Any], *args: Any) -> Future[Any]:
        """``read(*args)`` on ``alongside`` (its outcome in the future), else now."""
        if self.alongside is not None:
            return self.alongside.submit(read, *args)
        done: Future[Any] = Future()
        try:
            done.set_result(read(*args))
        except Exception as exc:
            done.set_exception(exc)
        return done

    # -- the fan-out worker ------------------------------------------------------------

    def deliver(self, work: ShardWork) -> None:
        """Post one work item's event to its shard, until ``deadline``.

        API Gateway's 429s (its account-wide throttle) are waited out with jittered
        backoff, round after round; whatever is still undelivered when time runs out is
        put back on the queue, exactly those connections, never the whole shard. A 410
        removes the connection (not on a re-queued round: its grace time is unknown).
        When the shard cannot be read (DynamoDB timed out), the item goes back on the
        queue whole, a few seconds later. Raises when the queue fails too: the item is
        then received again after its visibility timeout.
        """
        data = work.event.encode("utf-8")
        born: dict[str, int] = {}
        if work.connection_ids is None:
            try:
                members, _ = self.store.room_shard(work.room, work.shard)
            except StorageError:
                logger.exception("reading a shard failed", extra={"room": work.room,
                                                                  "shard": work.shard})
                self._requeue(work, None)
                return
            born = {m.connection_id: m.connected_at for m in members}
            pending = [cid for cid in born if cid != work.skip]
        else:
            pending = list(work.connection_ids)
        sent = 0
        slowest_chunk_s = 0.0

        def out_of_time() -> bool:
            # Stop starting posts once what is left might not finish: the queue is
            # better than a Lambda timeout (a post may take connect + read timeouts).
            if self.deadline is None:
                return False
            left = self.deadline - time.monotonic()
            return left < slowest_chunk_s * 1.5 + _POST_WORST_CASE_S

        for rounds in range(1, _MAX_ROUNDS + 1):
            unsent: list[str] = []
            for start in range(0, len(pending), _CHUNK):
                if out_of_time():
                    unsent += pending[start:]
                    break
                started = time.monotonic()
                delivery = self.connections.post_many(
                    pending[start:start + _CHUNK], data, self.deadline
                )
                slowest_chunk_s = max(slowest_chunk_s, time.monotonic() - started)
                sent += len(delivery.sent)
                unsent += delivery.unsent
                if delivery.gone and born:
                    opened_before = int(self.clock() * 1000) - CONNECT_GRACE_MS
                    dead = [cid for cid in delivery.gone if born.get(cid, 0) < opened_before]
                    if dead:
                        self._remove_gone(work.room, dead, told=[], shard=work.shard)
                if delivery.failed:
                    metrics.add_metric(name="FanoutFailures", unit="Count",
                                       value=len(delivery.failed))
            pending = unsent
            if not pending:
                break
            metrics.add_metric(name="ThrottledPosts", unit="Count", value=len(pending))
            pause = random.uniform(0, min(_RETRY_CAP_S, _RETRY_BASE_S * 2**rounds))  # noqa: S311
            if out_of_time() or (
                self.deadline is not None and self.deadline - time.monotonic() - pause
                < slowest_chunk_s * 1.5 + _POST_WORST_CASE_S
            ):
                break
            time.sleep(pause)
        metrics.add_metric(name="Recipients", unit="Count", value=sent)
        if pending:
            self._requeue(work, pending)

    def _requeue(self, work: ShardWork, pending: list[str] | None) -> None:
        """Put back what is left of a work item: ``pending`` connections (None: the
        whole shard, with its ``skip``), after a jittered delay growing per attempt."""
        count = len(pending) if pending is not None else None
        if work.attempt >= MAX_REQUEUES:
            metrics.add_metric(name="FanoutFailures", unit="Count", value=count or 1)
            logger.error("giving up a shard's undelivered posts",
                         extra={"room": work.room, "shard": work.shard, "count": count})
            return
        assert self.queue is not None, "the fan-out worker needs the queue"
        attempt = work.attempt + 1
        delay = random.uniform(1, min(60, 2**attempt))  # noqa: S311 - jitter, not crypto
        if pending is None:
            rest = ShardWork(work.room, work.shard, work.event, work.skip, None, attempt)
        else:
            rest = ShardWork(work.room, work.shard, work.event, None, tuple(pending), attempt)
        self.queue.enqueue([rest], delay_s=round(delay))
        logger.info("re-queued undelivered posts",
                    extra={"room": work.room, "shard": work.shard, "count": count,
                           "attempt": attempt})

    def _enqueue_shards(self, room: str, layout: RoomLayout, event: str, skip: str) -> None:
        works = [ShardWork(room, shard, event, skip=skip) for shard in layout.other_shards()]
        if self.queue is None:
            logger.error("a room beyond one shard but no fan-out queue", extra={"room": room})
            return
        try:
            self.queue.enqueue(works)
        except StorageError:
            # Stored and answered: members of those shards will find it in history.
            logger.exception("queueing a big room's shards failed", extra={"room": room})
            metrics.add_metric(name="FanoutFailures", unit="Count", value=len(works))

    # -- delivery ----------------------------------------------------------------------

    def reply(self, connection_id: str, event: Mapping[str, Any]) -> None:
        """Send an event to the sender only (a gone sender is left to its $disconnect)."""
        if self.connections.post(connection_id, encode(event)) in ("unsent", "failed"):
            metrics.add_metric(name="FanoutFailures", unit="Count", value=1)

    def _broadcast(
        self, room: str, members: list[Member], event: Mapping[str, Any],
        data: bytes | None = None,
    ) -> Delivery:
        if not members:
            return Delivery()
        ids = [m.connection_id for m in members]
        delivery = self.connections.post_many(ids, data or encode(event), self.deadline)
        metrics.add_metric(name="Recipients", unit="Count", value=len(delivery.sent))
        undelivered = delivery.unsent + delivery.failed
        if undelivered:
            metrics.add_metric(name="FanoutFailures", unit="Count", value=len(undelivered))
            logger.warning("fan-out failures", extra={
                "room": room, "count": len(undelivered), "failed": undelivered[:20]})
        if delivery.gone:
            # A connection whose $connect is still running also answers 410 (it is not
            # open yet): it is not dead, and deleting it would orphan a live socket.
            opened_before = int(self.clock() * 1000) - CONNECT_GRACE_MS
            born = {m.connection_id: m.connected_at for m in members}
            dead = [cid for cid in delivery.gone if born.get(cid, 0) < opened_before]
            if dead:
                self._remove_gone(room, dead, told=delivery.sent)
        return delivery

    def _remove_gone(self, room: str, dead: list[str], told: list[str], shard: int = 0) -> None:
        """Drop connections API Gateway says are gone, and tell the room they left.

        The leave goes only to the connections in ``told``, which just received a post
        (no second round of clean-up from inside a clean-up).
        """
        left: list[Connection] = []
        for cid in dead:
            try:
                conn = self.store.remove_connection(cid)
                if conn is None:
                    self.store.remove_member(room, cid, shard)
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

    def _identity(self, connection_id: str) -> Connection:
        conn = self.store.get_connection(connection_id)
        if conn is None:
            raise UnknownConnection(connection_id)
        return conn

    def _count_frame(self, connection_id: str, kind: str = "messages") -> Connection:
        """Identity of the sender, once this frame is within the rate limit.

        A sliding window of ``window_s`` seconds in 100 ms buckets: a burst across a
        window edge cannot double the rate, as a fixed window would allow. ``kind``:
        ``messages`` (new, edited and deleted messages) or ``reactions``, each its own.
        """
        window_s = self.rate_limit.window_s
        limit = self.rate_limit.reactions if kind == "reactions" else self.rate_limit.messages
        bucket = int(self.clock() * 1000) // _BUCKET_MS
        counted = self.store.count_frame(
            connection_id, bucket, since_bucket=bucket - window_s * 1000 // _BUCKET_MS + 1,
            kind=kind,
        )
        if counted is None:
            raise UnknownConnection(connection_id)
        sender, recent = counted
        if recent > limit:
            raise ProtocolError(
                "rate_limited", f"at most {limit} {kind} every {window_s} seconds; slow down"
            )
        return sender


@contextlib.contextmanager
def _refusals(frame: Mapping[str, Any]) -> Any:
    """The store's "no" to a change of a message, as PROTOCOL.md's error codes."""
    try:
        yield
    except MessageMissing:
        raise ProtocolError("not_found", "no such message in this room",
                            client_id_of(frame)) from None
    except NotAuthor:
        raise ProtocolError("forbidden", "only the author may edit or delete a message",
                            client_id_of(frame)) from None
    except TooManyReactions:
        raise ProtocolError("invalid_message",
                            f"a message has at most {REACTIONS_MAX} different reactions",
                            client_id_of(frame)) from None
