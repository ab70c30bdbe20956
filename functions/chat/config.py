"""A function's configuration: what it reads from its environment, in one place.

The settings a deployer may change are declared here once (``Setting``: the environment
variable, the default, what it means). ``chat.functions`` says which function gets
which; the CDK app takes the values from CDK context and the local gateway from its
command line, both by the same declaration. Nothing in the code asks "am I local?":
service endpoints are redirected with boto3's own ``AWS_ENDPOINT_URL_<SERVICE>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

from chat.model import DEFAULT_SHARD_SIZE, RateLimit
from chat.queues import FANOUT_QUEUE
from chat.tables import CONNECTIONS, MESSAGES

# The stage's callback URL (``https://…/<stage>``), the endpoint of the API Gateway
# Management API. The CDK app sets it from the stage; the local gateway its own URL.
CALLBACK_URL_ENV = "CALLBACK_URL"

# What a function that verifies sign-in tokens is given (``Function.verifies_tokens``):
# the user pool's issuer (``https://cognito-idp.<region>.amazonaws.com/<pool id>``), the
# app client the ID tokens must be for, and where the pool's signing keys are served (the
# issuer's ``/.well-known/jwks.json`` deployed; the local gateway's own URL locally).
TOKEN_ISSUER_ENV = "TOKEN_ISSUER"  # noqa: S105 - a variable name, not a secret
TOKEN_AUDIENCE_ENV = "TOKEN_AUDIENCE"  # noqa: S105
JWKS_URL_ENV = "JWKS_URL"
TOKEN_ENV = (TOKEN_ISSUER_ENV, TOKEN_AUDIENCE_ENV, JWKS_URL_ENV)


class Setting(NamedTuple):
    """A deploy-time setting that reaches functions as an environment variable.

    ``key`` names it in CDK context (``-c rate_limit_messages=20``) and, with dashes, on
    the local gateway's command line (``--rate-limit-messages 20``).
    """

    key: str
    env_var: str | None  # None: a setting of the function's trigger, not its code
    default: int | str
    help: str
    # A setting with choices takes one of these words; any other is a positive number.
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    def parse(self, raw: object) -> str:
        """The value as the environment carries it; ValueError, saying why, if invalid."""
        text = str(raw).strip()
        if self.choices:
            if text not in self.choices:
                raise ValueError(
                    f"{self.key} must be one of {', '.join(self.choices)}, not {raw!r}")
            return text
        try:
            number = int(text)
        except ValueError:
            number = 0
        if number < 1:
            raise ValueError(f"{self.key} must be a positive whole number, not {raw!r}")
        return str(number)


RATE_LIMIT_MESSAGES = Setting(
    "rate_limit_messages", "RATE_LIMIT_MESSAGES", RateLimit().messages,
    "new_message frames one connection may send per window",
)
RATE_LIMIT_REACTIONS = Setting(
    "rate_limit_reactions", "RATE_LIMIT_REACTIONS", RateLimit().reactions,
    "react frames one connection may send per window",
)
RATE_LIMIT_WINDOW = Setting(
    "rate_limit_window_seconds", "RATE_LIMIT_WINDOW_SECONDS", RateLimit().window_s,
    "the sliding rate-limit window, in seconds",
)
FANOUT_CONCURRENCY = Setting(
    "fanout_concurrency", "FANOUT_CONCURRENCY", 64,
    "posts to @connections in flight at once per invocation, each on its own connection",
)
FANOUT_SHARD_SIZE = Setting(
    "fanout_shard_size", "FANOUT_SHARD_SIZE", DEFAULT_SHARD_SIZE,
    "connections per shard of a room; a room beyond one shard fans out through the queue",
)
FANOUT_WORKERS = Setting(
    # Ten one-vCPU workers post ~10,000 a second: the account's default API Gateway quota.
    "fanout_worker_concurrency", None, 10,
    "fan-out workers at once: the SQS event source's maximum concurrency (2-1000)",
)
# Who may connect. ``none``: anyone, as the name in the URL says (the seed's model, and
# wscat demos). ``cognito``: people signed in to the stack's user pool; a $connect
# authorizer verifies their ID token and the name is the verified username. The set of
# functions depends on it (``chat.functions.functions_for``), and $connect reads it to
# refuse a connection that reached it without a verified identity.
AUTH_NONE = "none"
AUTH_COGNITO = "cognito"
AUTH = Setting(
    "auth", "AUTH_MODE", AUTH_NONE,
    "who may connect: none (any name in the URL) or cognito (signed-in users only)",
    choices=(AUTH_NONE, AUTH_COGNITO),
)
SETTINGS: tuple[Setting, ...] = (
    RATE_LIMIT_MESSAGES, RATE_LIMIT_REACTIONS, RATE_LIMIT_WINDOW, FANOUT_CONCURRENCY,
    FANOUT_SHARD_SIZE, FANOUT_WORKERS, AUTH,
)


class FunctionConfig(NamedTuple):
    """What one function process was configured with (read once, in ``chat.bootstrap``)."""

    connections_table: str
    messages_table: str
    # Empty means "derive it from the event" (see ``chat.bootstrap.callback_url``).
    callback_url: str
    region: str
    rate_limit: RateLimit
    fanout_concurrency: int
    fanout_shard_size: int
    fanout_queue_url: str  # empty: this function does not use the queue
    auth: str = AUTH_NONE  # AUTH: "cognito" makes $connect take the authorizer's identity

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> FunctionConfig:
        def number(setting: Setting) -> int:
            raw = environ.get(setting.env_var or "", "")
            return int(raw) if raw.strip() else int(setting.default)

        return cls(
            connections_table=environ.get(CONNECTIONS.env_var, ""),
            messages_table=environ.get(MESSAGES.env_var, ""),
            callback_url=environ.get(CALLBACK_URL_ENV, "").rstrip("/"),
            region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
            rate_limit=RateLimit(number(RATE_LIMIT_MESSAGES), number(RATE_LIMIT_WINDOW),
                                 number(RATE_LIMIT_REACTIONS)),
            fanout_concurrency=number(FANOUT_CONCURRENCY),
            fanout_shard_size=number(FANOUT_SHARD_SIZE),
            fanout_queue_url=environ.get(FANOUT_QUEUE.env_var, ""),
            auth=environ.get(AUTH.env_var or "", "") or str(AUTH.default),
        )
