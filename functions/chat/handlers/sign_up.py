"""The user pool's pre sign-up check (``chat.functions.SIGN_UP_CHECK``, ``auth=cognito``).

Cognito accepts almost any username; the chat shows the verified username as the
sender of every message, so it must follow PROTOCOL.md's rules: 1-32 letters, digits,
``_ . -``, NFC-normalized. Cognito runs this before it creates a user (self sign-up and
``AdminCreateUser`` alike); raising refuses the sign-up, and the client gets
``UserLambdaValidationException`` with "PreSignUp failed with error <our message>."
The pool compares usernames case-insensitively, so ``Alice`` cannot join next to
``alice``.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from chat.observability import instrumented, logger
from chat.protocol import ProtocolError, parse_username


class UsernameRefused(Exception):
    """A username the chat cannot show; its message reaches the person signing up."""


@instrumented()
def pre_sign_up(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raw = event.get("userName")
    name = raw if isinstance(raw, str) else ""
    try:
        parse_username(name)
    except ProtocolError as exc:
        logger.info("sign-up refused", extra={"reason": exc.message})
        raise UsernameRefused(exc.message) from None
    if unicodedata.normalize("NFC", name) != name:
        logger.info("sign-up refused", extra={"reason": "not NFC"})
        raise UsernameRefused("username must be NFC-normalized (compose accents)")
    return event  # no auto-confirm: the email code proves the address
