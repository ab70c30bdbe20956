"""The chat's nouns and the outcomes of its operations.

Plain data, no AWS and no wire format: the service (``chat.service``) works in these
terms, and the adapters (``chat.adapters``) translate them to and from DynamoDB items
and HTTP calls. An adapter imports this module; this module imports nothing of theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, NamedTuple

# Records are NamedTuples, not dataclasses: immutable, compared and hashed by value, and
# made at import without the code generation a dataclass runs (six compiled methods
# each, ~1.4 ms a class here: two thirds of what importing the chat package cost, paid by
# every cold start; ``bench/coldstart.py``).


class Connection(NamedTuple):
    """A WebSocket connection and the identity bound to it at ``$connect``."""

    connection_id: str
    username: str
    room: str
    connected_at: int = 0  # epoch ms
    shard: int = 0  # which of the room's member shards lists it (see RoomLayout)


class Member(NamedTuple):
    """A connection as its room lists it (what fan-out needs, nothing more)."""

    connection_id: str
    username: str
    connected_at: int = 0  # epoch ms


_NO_REACTIONS: Mapping[str, frozenset[str]] = MappingProxyType({})


class Message(NamedTuple):
    """A stored chat message; ``id`` sorts by time (see ``chat.protocol.new_message_id``).

    ``version``: 1 when sent, +1 per edit and for the delete. A deleted message (a
    tombstone) has ``deleted_at`` and no text. ``reactions``: emoji -> who reacted.
    """

    id: str
    room: str
    username: str
    text: str
    created_at: str  # ISO 8601 UTC with milliseconds
    client_id: str | None = None
    version: int = 1
    edited_at: str | None = None
    deleted_at: str | None = None
    reactions: Mapping[str, frozenset[str]] = _NO_REACTIONS


class RoomSummary(NamedTuple):
    """A room as ``rooms`` lists it for one user."""

    room: str
    unread: int  # capped (chat.protocol.UNREAD_MAX)
    last_message_at: str | None


class ReactionsFlush(NamedTuple):
    """An item of the fan-out queue: send a message's latest reactions summary to its
    room, once the coalescing interval since the last one has passed."""

    room: str
    message_id: str
    attempt: int = 0


# A shard's worth of members by default: what one invocation posts to in about a second
# (bench/fanout.py), so a room of up to this many never needs the queue.
DEFAULT_SHARD_SIZE = 1000


class RoomLayout(NamedTuple):
    """How a room's connections are spread over shards of at most ``shard_size``.

    Every room starts with shard 0, the only one a small room ever has: its members are
    read with one Query and posted to in-line, as always. A join goes to the first shard
    that is not full, so a room only spreads to more shards once it outgrows one, and
    fills shard 0 again first as it shrinks. ``counts`` are the connections each shard
    holds (kept by joins and leaves; a connection whose ``$disconnect`` never came still
    counts until its shard is next read, see ``chat.adapters.dynamodb``).
    """

    counts: Mapping[int, int] = MappingProxyType({})

    @property
    def connections(self) -> int:
        return sum(self.counts.values())

    @property
    def sharded(self) -> bool:
        """More than shard 0 holds connections: messages go through the fan-out queue."""
        return any(n > 0 for shard, n in self.counts.items() if shard > 0)

    def other_shards(self) -> list[int]:
        """Shards besides 0 that hold anyone, in order."""
        return sorted(shard for shard, n in self.counts.items() if shard > 0 and n > 0)


class ShardWork(NamedTuple):
    """One item of the fan-out queue: an event for the members of one shard of a room.

    ``connection_ids`` set: only those (what a worker could not deliver, re-queued);
    unset: every member of the shard, read when the item is handled. ``skip``: a
    connection that already has it (the sender, answered in-line). ``attempt`` counts
    the re-queues, for the backoff and the give-up.
    """

    room: str
    shard: int
    event: str  # the encoded event, exactly the bytes to post
    skip: str | None = None
    connection_ids: tuple[str, ...] | None = None
    attempt: int = 0


class RateLimit(NamedTuple):
    """Frames a connection may send per sliding window: ``messages`` counts
    ``new_message``, ``edit_message`` and ``delete_message``; ``reactions`` counts ``react``."""

    messages: int = 10
    window_s: int = 10
    reactions: int = 20


PostOutcome = Literal["sent", "gone", "unsent", "failed"]


class Delivery:
    """What happened to one fan-out, recipient by recipient.

    ``gone``: API Gateway answered 410 (the connection is closed or not open yet);
    ``unsent``: not delivered, and safe to send again later: API Gateway refused it
    (429 throttled, 5xx) or the connection to it never opened, after the retries the
    caller allowed;
    ``failed``: anything else that did not deliver (a read timeout: it may have been
    delivered, so it is never sent again).
    """

    __slots__ = ("failed", "gone", "sent", "unsent")

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gone: list[str] = []
        self.unsent: list[str] = []
        self.failed: list[str] = []

    def __repr__(self) -> str:
        return (f"Delivery(sent={self.sent!r}, gone={self.gone!r}, "
                f"unsent={self.unsent!r}, failed={self.failed!r})")

    def record(self, connection_id: str, outcome: PostOutcome) -> None:
        getattr(self, outcome).append(connection_id)


class StorageError(Exception):
    """The store could not do what was asked (after its own retries)."""


class MessageNotStored(StorageError):
    """Storing a new message failed: nobody received it, the sender may send it again."""


class MessageMissing(Exception):
    """No such message in the room, or it was deleted (``not_found``)."""


class NotAuthor(Exception):
    """The message is someone else's (``forbidden``)."""


class TooManyReactions(Exception):
    """The message already has the most distinct emoji allowed."""


class UnknownConnection(Exception):
    """A frame came from a connection the store does not know (never or no longer)."""
