"""The user pool people sign in to (``auth=cognito``), declared once for both hosts.

The CDK app (``infra/auth.py``) and the local gateway (``local_gateway/cognito.py``)
build the pool and its app client from these values, so a password the local pool
accepts is one the deployed pool accepts, and the page learns the same rules from
``config.json``. Usernames follow PROTOCOL.md's rules (the pre sign-up check,
``chat.handlers.sign_up``) and are compared case-insensitively.
"""

from __future__ import annotations

from typing import Any, NamedTuple


class PasswordPolicy(NamedTuple):
    """What Cognito requires of a password (cdk-nag's COG1: 8+, upper, digits, symbols)."""

    min_length: int = 8
    require_lowercase: bool = True
    require_uppercase: bool = True
    require_digits: bool = True
    require_symbols: bool = True

    def rules(self) -> dict[str, Any]:
        """For clients that explain the policy before sending a password (the page)."""
        return {
            "minLength": self.min_length,
            "lowercase": self.require_lowercase,
            "uppercase": self.require_uppercase,
            "digits": self.require_digits,
            "symbols": self.require_symbols,
        }


PASSWORD_POLICY = PasswordPolicy()

# The public app client's sign-in flows (no client secret: a page cannot keep one).
# The page uses USER_PASSWORD_AUTH over TLS and refreshes with REFRESH_TOKEN_AUTH;
# USER_SRP_AUTH is there for SDK clients that prefer never to send the password.
AUTH_FLOWS: tuple[str, ...] = (
    "ALLOW_USER_PASSWORD_AUTH",
    "ALLOW_USER_SRP_AUTH",
    "ALLOW_REFRESH_TOKEN_AUTH",
)
# Sign-up sends a code to this attribute; confirming it proves the address.
VERIFIED_ATTRIBUTE = "email"
# "Alice" cannot sign up next to "alice", nor sign in as her.
CASE_SENSITIVE = False
