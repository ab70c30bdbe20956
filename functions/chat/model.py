"""The chat's nouns and the outcomes of its operations.

Plain data, no AWS and no wire format: the service (``chat.service``) works in these
terms, and the adapters (``chat.adapters``) translate them to and from DynamoDB items
and HTTP calls. An adapter imports this module; this module imports nothing of theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Connection:
    """A WebSocket connection and the identity bound to it at ``$connect``."""

    connection_id: str
    username: str
    room: str
    connected_at: int = 0  # epoch ms


@dataclass(frozen=True)
class Member:
    """A connection as its room lists it (what fan-out needs, nothing more)."""

    connection_id: str
    username: str
    connected_at: int = 0  # epoch ms


@dataclass(frozen=True)
class Message:
    """A stored chat message; ``id`` sorts by time (see ``chat.protocol.new_message_id``)."""

    id: str
    room: str
    username: str
    text: str
    created_at: str  # ISO 8601 UTC with milliseconds
    client_id: str | None = None


@dataclass(frozen=True)
class RateLimit:
    """``new_message`` frames a connection may send per sliding window."""

    messages: int = 10
    window_s: int = 10


PostOutcome = Literal["sent", "gone", "unsent", "failed"]


@dataclass
class Delivery:
    """What happened to one fan-out, recipient by recipient.

    ``gone``: API Gateway answered 410 (the connection is closed or not open yet);
    ``unsent``: not delivered, and safe to send again later: API Gateway refused it
    (429 throttled, 5xx) or the connection to it never opened, after the retries the
    caller allowed;
    ``failed``: anything else that did not deliver (a read timeout: it may have been
    delivered, so it is never sent again).
    """

    sent: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def record(self, connection_id: str, outcome: PostOutcome) -> None:
        getattr(self, outcome).append(connection_id)


class StorageError(Exception):
    """The store could not do what was asked (after its own retries)."""


class MessageNotStored(StorageError):
    """Storing a new message failed: nobody received it, the sender may send it again."""


class UnknownConnection(Exception):
    """A frame came from a connection the store does not know (never or no longer)."""
