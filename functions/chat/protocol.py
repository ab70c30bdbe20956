"""docs/PROTOCOL.md in code: what a valid frame is, and the exact shape of every event.

The wire format only: frames in, events out, ids and times as the protocol writes them.
Pure Python, no AWS: the page, wscat users and the tests all depend on these bytes, so
every rule of the protocol that can be checked without storage lives here. The nouns
these events carry are ``chat.model``'s.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from chat.model import Message, RoomSummary

DEFAULT_ROOM = "general"
USERNAME_MAX = 32
ROOM_MAX = 48
ROOM_PATTERN = re.compile(rf"[a-z0-9-]{{1,{ROOM_MAX}}}")
TEXT_MAX = 4000
CLIENT_ID_MAX = 64
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 100
WHO_MAX_USERS = 100  # 100 names of at most 32 characters: well inside a 128 KB frame
# Reactions (PROTOCOL.md "Reactions"): distinct emoji per message, names per emoji in an
# event, an emoji's length, and the least time between two ``reactions`` events of a
# message (the coalescing).
REACTIONS_MAX = 20
REACTION_USERS_MAX = 20
EMOJI_MAX = 16  # code points; the longest emoji Unicode defines has 10
REACTIONS_INTERVAL_MS = 1000
# ``rooms``: how many rooms, and where unread counts stop.
ROOMS_MAX = 50
UNREAD_MAX = 100
_USERNAME_PUNCTUATION = frozenset("_.-")
# The same username rule for JavaScript (``u`` flag): Unicode letters, Nd digits, _ . -
USERNAME_PATTERN_JS = r"^[\p{L}\p{Nd}_.-]+$"

# Crockford's base32, as ULIDs use it: ids sort as strings in time order.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
ID_PATTERN = re.compile(rf"[{_CROCKFORD}]{{26}}")


class ProtocolError(Exception):
    """A frame the protocol refuses: becomes an ``error`` event for the sender only."""

    def __init__(self, code: str, message: str, client_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_id = client_id

    def event(self) -> dict[str, Any]:
        return error_event(self.code, self.message, self.client_id)


# --- identity (on $connect) -------------------------------------------------------------


def parse_username(raw: str | None) -> str:
    """NFC-normalize and check a username: 1–32 Unicode letters, digits or ``_ . -``."""
    name = unicodedata.normalize("NFC", raw or "")
    if not 1 <= len(name) <= USERNAME_MAX:
        raise ProtocolError("invalid_message", f"username must be 1-{USERNAME_MAX} characters")
    for ch in name:
        category = unicodedata.category(ch)
        if not (category.startswith("L") or category == "Nd" or ch in _USERNAME_PUNCTUATION):
            raise ProtocolError(
                "invalid_message", "username may contain only letters, digits, '_', '.' and '-'"
            )
    return name


def parse_room(raw: str | None) -> str:
    """A missing or empty room means ``general``; otherwise 1–48 of ``a-z 0-9 -``."""
    if not raw:
        return DEFAULT_ROOM
    if not ROOM_PATTERN.fullmatch(raw):
        raise ProtocolError(
            "invalid_message", f"room must be 1-{ROOM_MAX} characters of a-z, 0-9 and '-'"
        )
    return raw


# --- the handshake's subprotocols (sign-in) ---------------------------------------------

# A signed-in client offers two subprotocols: ``chat.v1``, which the server selects, and
# ``bearer.<ID token>``, which carries the token (a browser cannot set headers on a
# WebSocket, and a token in the query string ends up in access logs). A JWT is made of
# base64url and dots only, so it is a valid subprotocol token as it is.
SUBPROTOCOL = "chat.v1"
BEARER_PREFIX = "bearer."
SUBPROTOCOL_HEADER = "Sec-WebSocket-Protocol"


def header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header's value, whatever case the client (or API Gateway) gave its name."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if key.lower() == wanted:
            return value
    return None


def offered_subprotocols(value: str | None) -> list[str]:
    """The subprotocols a handshake offered: ``Sec-WebSocket-Protocol`` is comma-separated."""
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def bearer_token(offered: list[str]) -> str | None:
    """The token of the first ``bearer.<token>`` subprotocol, or None."""
    for item in offered:
        if item.startswith(BEARER_PREFIX) and len(item) > len(BEARER_PREFIX):
            return item[len(BEARER_PREFIX):]
    return None


# --- frames -----------------------------------------------------------------------------


def parse_frame(body: str | None) -> dict[str, Any]:
    """Decode a frame body: a JSON object, or ``invalid_json``."""
    try:
        frame = json.loads(body or "")
    except (ValueError, RecursionError):
        raise ProtocolError("invalid_json", "the frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise ProtocolError("invalid_json", "the frame must be a JSON object")
    return frame


def is_clean_text(value: str) -> bool:
    # Lone surrogates can arrive through JSON escapes ("\ud800") but cannot be encoded
    # as UTF-8, so DynamoDB and every client would choke on them later.
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def client_id_of(frame: Mapping[str, Any]) -> str | None:
    """The frame's ``client_id`` when it is valid, else None (errors echo only a valid one)."""
    value = frame.get("client_id")
    if isinstance(value, str) and 1 <= len(value) <= CLIENT_ID_MAX and is_clean_text(value):
        return value
    return None


class NewMessage(NamedTuple):
    text: str
    client_id: str | None


def parse_new_message(frame: Mapping[str, Any]) -> NewMessage:
    client_id = client_id_of(frame)
    raw_client_id = frame.get("client_id")
    if raw_client_id is not None and client_id is None:
        raise ProtocolError(
            "invalid_message", f"client_id must be a string of 1-{CLIENT_ID_MAX} characters"
        )
    text = frame.get("text")
    if not isinstance(text, str):
        raise ProtocolError("invalid_message", "text must be a string", client_id)
    text = text.strip()
    if not 1 <= len(text) <= TEXT_MAX or not is_clean_text(text):
        raise ProtocolError(
            "invalid_message", f"text must be 1-{TEXT_MAX} characters after trimming", client_id
        )
    return NewMessage(text=text, client_id=client_id)


def message_id_of(frame: Mapping[str, Any]) -> str:
    """The frame's ``id``: a message id as events carry it, or ``invalid_message``."""
    value = frame.get("id")
    if not (isinstance(value, str) and ID_PATTERN.fullmatch(value)):
        raise ProtocolError("invalid_message", "id must be a message id", client_id_of(frame))
    return value


class EditMessage(NamedTuple):
    id: str
    text: str


def parse_edit_message(frame: Mapping[str, Any]) -> EditMessage:
    message_id = message_id_of(frame)
    # The text rules are new_message's (a client_id, if any, is only echoed in errors).
    return EditMessage(id=message_id, text=parse_new_message(frame).text)


def is_emoji(value: str) -> bool:
    """One emoji: a single grapheme cluster that Unicode's emoji data lists (the ``emoji``
    package's ``is_emoji``, which knows every sequence: ZWJ, flags, keycaps, skin tones).

    Imported here, on first use: its data costs ~40 ms to import, which only the function
    that reacts pays, once per process.
    """
    import emoji  # lazy on purpose (see above)

    return emoji.is_emoji(value)


class React(NamedTuple):
    id: str
    emoji: str
    on: bool


def parse_react(frame: Mapping[str, Any]) -> React:
    message_id = message_id_of(frame)
    client_id = client_id_of(frame)
    value = frame.get("emoji")
    if not (isinstance(value, str) and 1 <= len(value) <= EMOJI_MAX and is_clean_text(value)
            and is_emoji(value)):
        raise ProtocolError("invalid_message", "emoji must be exactly one emoji", client_id)
    on = frame.get("on")
    if not isinstance(on, bool):
        raise ProtocolError("invalid_message", "on must be true or false", client_id)
    return React(id=message_id, emoji=value, on=on)


class HistoryRequest(NamedTuple):
    before: str | None
    limit: int


def parse_history(frame: Mapping[str, Any]) -> HistoryRequest:
    before = frame.get("before")
    if before is not None and not (isinstance(before, str) and ID_PATTERN.fullmatch(before)):
        raise ProtocolError("invalid_message", "before must be a cursor from a history event")
    limit = frame.get("limit", HISTORY_DEFAULT_LIMIT)
    if limit is None:
        limit = HISTORY_DEFAULT_LIMIT
    # bool is an int in Python; JSON true is not a page size.
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= HISTORY_MAX_LIMIT:
        raise ProtocolError(
            "invalid_message", f"limit must be an integer from 1 to {HISTORY_MAX_LIMIT}"
        )
    return HistoryRequest(before=before, limit=limit)


# --- what clients learn from config.json ------------------------------------------------


def client_rules() -> dict[str, Any]:
    """The rules above, for clients that check input before sending it (the page).

    Served in ``config.json`` by both hosts, so the page never keeps its own copy of a
    limit: change one here and the page follows.
    """
    return {
        "usernameMaxLength": USERNAME_MAX,
        "usernamePattern": USERNAME_PATTERN_JS,
        "roomMaxLength": ROOM_MAX,
        "roomPattern": "^[a-z0-9-]+$",
        "defaultRoom": DEFAULT_ROOM,
        "textMaxLength": TEXT_MAX,
        "clientIdMaxLength": CLIENT_ID_MAX,
        "historyDefaultLimit": HISTORY_DEFAULT_LIMIT,
        "historyMaxLimit": HISTORY_MAX_LIMIT,
        "reactionsMaxPerMessage": REACTIONS_MAX,
        "reactionUsersMax": REACTION_USERS_MAX,
        "emojiMaxLength": EMOJI_MAX,
        "reactionsIntervalMs": REACTIONS_INTERVAL_MS,
        "roomsMax": ROOMS_MAX,
        "unreadMax": UNREAD_MAX,
    }


NO_AUTH: dict[str, Any] = {"type": "none"}


def cognito_auth(region: str, user_pool_id: str, client_id: str, endpoint: str) -> dict[str, Any]:
    """``config.json``'s ``auth`` when people sign in with Cognito.

    ``endpoint`` is the Cognito API URL clients call (``https://cognito-idp.<region>.
    amazonaws.com/`` deployed, the local gateway's own ``/cognito/`` locally), so boto3 or
    ``fetch`` can sign up and sign in against either unchanged.
    """
    return {
        "type": "cognito",
        "region": region,
        "userPoolId": user_pool_id,
        "clientId": client_id,
        "endpoint": endpoint,
    }


def page_config(websocket_url: str, auth: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The page's ``config.json``: where the WebSocket API is, how to sign in (``auth``:
    ``NO_AUTH`` or ``cognito_auth(...)``) and the protocol's rules."""
    return {
        "websocketUrl": websocket_url,
        "auth": dict(auth or NO_AUTH),
        "protocol": client_rules(),
    }


# --- ids and time -----------------------------------------------------------------------

_id_lock = threading.Lock()
_last_id: tuple[int, int] = (0, 0)


def new_message_id(now_ms: int | None = None) -> str:
    """A ULID: 48 bits of milliseconds then 80 random bits, in Crockford base32.

    Within one process, ids made in the same millisecond increase (the random part is
    incremented), so a burst from one sender keeps its order.
    """
    global _last_id
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    with _id_lock:
        last_ms, last_rand = _last_id
        rand = last_rand + 1 if ms == last_ms and last_rand + 1 < 1 << 80 else secrets.randbits(80)
        _last_id = (ms, rand)
    value = (ms << 80) | rand
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


def id_time_ms(message_id: str) -> int:
    """The milliseconds a message id was made at (its first 48 bits)."""
    value = 0
    for ch in message_id[:10]:
        value = value * 32 + _CROCKFORD.index(ch)
    return value  # 10 characters: bits 129..80, the time's 48 under two zero bits


def iso_time(ms: int) -> str:
    """``2026-11-27T05:00:00.123Z``: UTC with milliseconds, as PROTOCOL.md shows."""
    return datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{ms % 1000:03d}Z"
    )


# --- events -----------------------------------------------------------------------------


def reactions_summary(message: Message) -> dict[str, Any]:
    """``{"👍": {"count": 3, "users": [...]}}``: at most ``REACTION_USERS_MAX`` names each,
    ``clipped`` when cut; nothing for a deleted message."""
    if message.deleted_at is not None:
        return {}
    summary: dict[str, Any] = {}
    for emoji in sorted(message.reactions):
        users = sorted(message.reactions[emoji])
        entry: dict[str, Any] = {"count": len(users), "users": users[:REACTION_USERS_MAX]}
        if len(users) > REACTION_USERS_MAX:
            entry["clipped"] = True
        summary[emoji] = entry
    return summary


def message_event(message: Message) -> dict[str, Any]:
    """A message in its current version: a ``message`` event and a history entry."""
    deleted = message.deleted_at is not None
    data: dict[str, Any] = {
        "type": "message",
        "id": message.id,
        "room": message.room,
        "username": message.username,
        "text": "" if deleted else message.text,
        "created_at": message.created_at,
    }
    if message.client_id is not None:
        data["client_id"] = message.client_id
    data["version"] = message.version
    if message.edited_at is not None:
        data["edited_at"] = message.edited_at
    if deleted:
        data["deleted"] = True
        data["deleted_at"] = message.deleted_at
    data["reactions"] = reactions_summary(message)
    return data


def message_updated_event(message: Message) -> dict[str, Any]:
    return {
        "type": "message_updated",
        "id": message.id,
        "room": message.room,
        "username": message.username,
        "text": message.text,
        "created_at": message.created_at,
        "version": message.version,
        "edited_at": message.edited_at,
        "reactions": reactions_summary(message),
    }


def message_deleted_event(message: Message) -> dict[str, Any]:
    return {
        "type": "message_deleted",
        "id": message.id,
        "room": message.room,
        "version": message.version,
        "deleted_at": message.deleted_at,
    }


def reactions_event(message: Message) -> dict[str, Any]:
    return {
        "type": "reactions",
        "id": message.id,
        "room": message.room,
        "reactions": reactions_summary(message),
    }


def read_marker_event(room: str, message_id: str) -> dict[str, Any]:
    return {"type": "read_marker", "room": room, "id": message_id}


def rooms_event(rooms: list[RoomSummary]) -> dict[str, Any]:
    return {
        "type": "rooms",
        "rooms": [
            {"room": r.room, "unread": r.unread, "last_message_at": r.last_message_at}
            for r in rooms
        ],
    }


def history_event(
    room: str, messages: list[Message], before: str | None, read_marker: str | None = None
) -> dict[str, Any]:
    return {
        "type": "history",
        "room": room,
        "messages": [message_event(m) for m in messages],
        "before": before,
        "read_marker": read_marker,
    }


def who_event(room: str, usernames: list[str], count: int | None = None) -> dict[str, Any]:
    """``users``: sorted, unique, at most ``WHO_MAX_USERS`` (a big room's list would not
    fit in one frame); ``count``: how many there are (default: the unique names)."""
    users = sorted(set(usernames))
    return {
        "type": "who",
        "room": room,
        "users": users[:WHO_MAX_USERS],
        "count": len(users) if count is None else count,
    }


def presence_event(room: str, username: str, event: str) -> dict[str, Any]:
    return {"type": "presence", "room": room, "username": username, "event": event}


def typing_event(room: str, username: str) -> dict[str, Any]:
    return {"type": "typing", "room": room, "username": username}


def error_event(code: str, message: str, client_id: str | None = None) -> dict[str, Any]:
    event = {"type": "error", "code": code, "message": message}
    if client_id is not None:
        event["client_id"] = client_id
    return event


def encode(event: Mapping[str, Any]) -> bytes:
    """One event as the bytes of one WebSocket text frame.

    Every string that reaches here was checked by ``is_clean_text``; "replace" is only a
    safety net so that a slip can never turn an error reply into a crash.
    """
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "replace")
