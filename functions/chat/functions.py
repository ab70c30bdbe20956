"""Every Lambda function of the chat, with its trigger, declared once.

Both hosts read this table. The CDK app (``infra/api.py``) creates one function per
entry with exactly the environment and IAM actions listed here and wires its trigger;
the local gateway (``local_gateway``) runs the same handlers with the same environment
behind its emulation of the same trigger. Add a function here and it exists in both
places; neither host lists functions of its own.

A trigger is one of:

- ``Route``: a WebSocket API route (``$connect``, ``new_message``…);
- ``ConnectAuthorizer``: the Lambda REQUEST authorizer API Gateway runs before
  ``$connect``;
- ``QueueConsumer``: an SQS event source mapping;
- ``UserPoolTrigger``: a Cognito user pool Lambda trigger (the pre sign-up check).

Which functions exist depends on the ``auth`` setting: ``functions_for(auth)`` is what
both hosts build (``FUNCTIONS`` is the open mode's set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from chat.config import (
    AUTH,
    AUTH_COGNITO,
    AUTH_NONE,
    CALLBACK_URL_ENV,
    FANOUT_CONCURRENCY,
    FANOUT_SHARD_SIZE,
    FANOUT_WORKERS,
    RATE_LIMIT_MESSAGES,
    RATE_LIMIT_REACTIONS,
    RATE_LIMIT_WINDOW,
    TOKEN_ENV,
    Setting,
)
from chat.queues import FANOUT_QUEUE, QueueSpec
from chat.tables import CONNECTIONS, MESSAGES, TableSpec

Access = Literal["read", "append", "update", "read_write"]

# The DynamoDB IAM actions each access level grants: exactly the item-level calls
# ``chat.adapters.dynamodb`` makes, nothing the grant_read_data/grant_read_write_data
# bundles add (Scan, Batch*, DescribeTable, ConditionCheckItem, streams).
# TransactWriteItems needs no action of its own: IAM authorizes each item in it by its
# operation (Put -> PutItem). A store that starts calling something new must add it
# here, or it fails with AccessDenied on AWS (the local gateway does not enforce IAM).
READ_ACTIONS: tuple[str, ...] = ("dynamodb:GetItem", "dynamodb:Query")
WRITE_ACTIONS: tuple[str, ...] = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
ACCESS_ACTIONS: Mapping[Access, tuple[str, ...]] = {
    "read": READ_ACTIONS,
    # Store items once and read them back (messages: never updated, never deleted).
    "append": ("dynamodb:GetItem", "dynamodb:PutItem"),
    # Change items in place, and read one back (a message's edit, delete, reactions; a
    # read marker): conditional UpdateItems, a GetItem when one is refused.
    "update": ("dynamodb:GetItem", "dynamodb:UpdateItem"),
    "read_write": READ_ACTIONS + WRITE_ACTIONS,
}
MANAGE_CONNECTIONS_ACTION = "execute-api:ManageConnections"
SEND_MESSAGE_ACTION = "sqs:SendMessage"  # SendMessageBatch is authorized as SendMessage

# Every function's size unless it says otherwise.
# 256 MB: Lambda gives CPU in proportion to memory, and a cold start imports boto3
# (~140 ms at full speed) plus Powertools; at 128 MB that doubles. The handlers hold a
# few small items in memory, so more buys nothing.
DEFAULT_MEMORY_MB = 256
# A broadcast is one Query plus parallel posts (~20 ms each): well under a second for a
# busy room. 10 s bounds a stuck call well before API Gateway's 29 s integration limit;
# the fan-out stops waiting 1 s before it (chat.handlers.routes).
DEFAULT_TIMEOUT_S = 10


def pascal_case(key: str) -> str:
    """A readable identifier for a route key: ``$connect`` -> ``Connect``,
    ``new_message`` -> ``NewMessage`` (function names, construct ids, log lines)."""
    return "".join(part.capitalize() for part in key.lstrip("$").split("_"))


# -- triggers ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """A WebSocket API route; API Gateway selects it by ``ROUTE_SELECTION_EXPRESSION``."""

    key: str


@dataclass(frozen=True)
class ConnectAuthorizer:
    """A Lambda REQUEST authorizer on ``$connect``.

    API Gateway answers 401 without invoking it when an identity source is missing, and
    403 when it returns a Deny policy; its context reaches ``$connect`` as
    ``requestContext.authorizer``.
    """

    identity_source: tuple[str, ...]


@dataclass(frozen=True)
class QueueConsumer:
    """An SQS event source mapping; the function reports partial batch failures."""

    queue: QueueSpec
    batch_size: int
    # The event source's "maximum concurrency" (Lambda's minimum is 2): a deploy setting.
    max_concurrency: Setting


@dataclass(frozen=True)
class UserPoolTrigger:
    """A Cognito user pool trigger; ``operation`` is Cognito's name for it."""

    operation: Literal["pre_sign_up"]


Trigger = Route | ConnectAuthorizer | QueueConsumer | UserPoolTrigger


# -- functions ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Function:
    """One Lambda function: its code, trigger, size, environment and exact permissions."""

    name: str  # logical name: CDK construct ids, the local log, AWS_LAMBDA_FUNCTION_NAME
    handler: str  # "package.module.function" inside the functions/ asset
    trigger: Trigger
    description: str
    tables: Mapping[TableSpec, Access] = field(default_factory=dict)
    posts_to_connections: bool = False  # calls @connections (CALLBACK_URL, ManageConnections)
    sends_to: tuple[QueueSpec, ...] = ()  # queues it sends to (their URLs, sqs:SendMessage)
    settings: tuple[Setting, ...] = ()  # deploy settings it reads from its environment
    # Verifies the user pool's ID tokens: given the pool's issuer, client and JWKS URL.
    verifies_tokens: bool = False
    # Packages it imports beyond boto3 and Powertools (pip requirement strings, pinned).
    # The CDK app installs them, built for Lambda's arm64 Python, in a layer (one per
    # set of packages, shared by the functions that declare it); locally they come from
    # the project's environment (pyproject.toml).
    packages: tuple[str, ...] = ()
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: int = DEFAULT_TIMEOUT_S

    @property
    def route_key(self) -> str | None:
        return self.trigger.key if isinstance(self.trigger, Route) else None

    @property
    def writes(self) -> bool:
        """Whether the function may change any table."""
        return any(access != "read" for access in self.tables.values())

    def table_actions(self) -> dict[TableSpec, tuple[str, ...]]:
        """The exact DynamoDB IAM actions this function needs, per table it touches."""
        return {spec: ACCESS_ACTIONS[access] for spec, access in self.tables.items()}

    def environment_names(self) -> tuple[str, ...]:
        """The variables this function is given (besides what the Lambda runtime sets)."""
        names = [spec.env_var for spec in self.tables]
        if self.posts_to_connections:
            names.append(CALLBACK_URL_ENV)
        names += [queue.env_var for queue in self.sends_to]
        if self.verifies_tokens:
            names += TOKEN_ENV
        names += [setting.env_var for setting in self.settings if setting.env_var]
        return tuple(names)

    def environment(self, values: Mapping[str, str]) -> dict[str, str]:
        """This function's environment, picked from every value a host can provide.

        ``values`` maps variable names to values (CDK tokens in the app, plain strings
        in the local gateway); a function sees only the names it declares. A host that
        cannot provide one fails here, at start-up, not at the first invocation.
        """
        missing = [name for name in self.environment_names() if name not in values]
        if missing:
            raise KeyError(f"{self.name} needs {', '.join(missing)}, which the host did not set")
        return {name: values[name] for name in self.environment_names()}


# What posting to @connections imports beyond boto3 (chat.adapters.management_api):
# httptools (llhttp) reads the answers to the posts; its wheels for Linux arm64 are ready-built.
# Names only: the versions are uv.lock's (pyproject's `layer-posting` group, infra/layers.py).
POSTING_PACKAGES: tuple[str, ...] = ("httptools",)


# What `react` imports besides: emoji decides what one emoji is (pure Python, imported
# on the first reaction only; pyproject's `layer-reactions` group).
REACTION_PACKAGES: tuple[str, ...] = (*POSTING_PACKAGES, "emoji")


def _route(key: str, handler: str, description: str, **kwargs: object) -> Function:
    kwargs.setdefault("packages", POSTING_PACKAGES)  # every route posts (below)
    return Function(
        name=pascal_case(key),
        handler=f"chat.handlers.routes.{handler}",
        trigger=Route(key),
        description=description,
        posts_to_connections=True,  # every route replies or broadcasts through @connections
        **kwargs,  # type: ignore[arg-type]
    )


ROUTE_FUNCTIONS: tuple[Function, ...] = (
    # AUTH: with auth=cognito the identity comes from the authorizer, never the URL.
    _route(
        "$connect", "connect", "Validate username/room, record the connection, announce the join",
        tables={CONNECTIONS: "read_write"},
        settings=(FANOUT_CONCURRENCY, FANOUT_SHARD_SIZE, AUTH),
        memory_mb=1024,  # the join reaches up to a shard while the joiner's handshake waits
    ),
    _route(
        "$disconnect", "disconnect", "Forget the connection, announce the leave",
        tables={CONNECTIONS: "read_write"}, settings=(FANOUT_CONCURRENCY,),
        memory_mb=512,  # nobody waits: a shard's leave well inside the timeout is enough
    ),
    _route("$default", "default", "Answer frames with bad JSON or an unknown action"),
    # read_write on Connections: the per-connection rate limit and removing gone peers;
    # append on Messages: a message is put once (and read back for a retry), never changed.
    # Beyond one shard, the room's other shards go to the fan-out queue.
    _route(
        "new_message", "new_message", "Store a message once and broadcast it to the room",
        tables={CONNECTIONS: "read_write", MESSAGES: "append"},
        sends_to=(FANOUT_QUEUE,),
        settings=(RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW, FANOUT_CONCURRENCY, FANOUT_SHARD_SIZE),
        memory_mb=1769,  # one vCPU: 1,000 posted in ~0.4 s, short cold start (docs/performance.md)
    ),
    _route(
        "history", "history", "Page through a room's messages, newest first",
        tables={CONNECTIONS: "read", MESSAGES: "read"},
    ),
    _route("who", "who", "List the users online in the room", tables={CONNECTIONS: "read"}),
    # A message's life (PROTOCOL.md): each is a conditional UpdateItem on the message
    # (update on Messages), then a broadcast like new_message's (read_write on
    # Connections: the rate limit and gone peers; the queue beyond one shard).
    _route(
        "edit_message", "edit_message", "Edit one's own message (version + 1) and tell the room",
        tables={CONNECTIONS: "read_write", MESSAGES: "update"},
        sends_to=(FANOUT_QUEUE,),
        settings=(RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW, FANOUT_CONCURRENCY),
        memory_mb=1024,
    ),
    _route(
        "delete_message", "delete_message",
        "Delete one's own message (its text removed, a tombstone kept) and tell the room",
        tables={CONNECTIONS: "read_write", MESSAGES: "update"},
        sends_to=(FANOUT_QUEUE,),
        settings=(RATE_LIMIT_MESSAGES, RATE_LIMIT_WINDOW, FANOUT_CONCURRENCY),
        memory_mb=1024,
    ),
    # The queue: a burst's coalesced summary is sent once, delayed (a ReactionsFlush).
    _route(
        "react", "react", "Add or remove a reaction; tell the room, at most once a second",
        tables={CONNECTIONS: "read_write", MESSAGES: "update"},
        sends_to=(FANOUT_QUEUE,),
        settings=(RATE_LIMIT_REACTIONS, RATE_LIMIT_WINDOW, FANOUT_CONCURRENCY),
        packages=REACTION_PACKAGES,
        memory_mb=1024,
    ),
    # update on Messages: the marker (UpdateItem) and the message it names (GetItem).
    _route(
        "mark_read", "mark_read", "Move the user's read marker forward; tell the user's other tabs",
        tables={CONNECTIONS: "read_write", MESSAGES: "update"},
        settings=(FANOUT_CONCURRENCY,),
    ),
    _route(
        "rooms", "rooms", "List the user's rooms with unread counts (at most 50)",
        tables={CONNECTIONS: "read", MESSAGES: "read"},
    ),
    # read_write on Connections: removing peers that answer 410 Gone.
    _route(
        "typing", "typing", "Tell the room's other connections that someone is typing",
        tables={CONNECTIONS: "read_write"}, settings=(FANOUT_CONCURRENCY,),
        memory_mb=1024,  # within the 2 s between a typing event and its indicator's end
    ),
)

FANOUT_WORKER = Function(
    name="FanoutWorker",
    handler="chat.handlers.fanout_worker.handler",
    # One shard per invocation: a shard gets the whole timeout, and parallelism comes
    # from the event source's concurrency.
    trigger=QueueConsumer(FANOUT_QUEUE, batch_size=1, max_concurrency=FANOUT_WORKERS),
    description="Post a big room's message to one shard; re-queue what API Gateway refused",
    # read_write on Connections: read the shard, remove connections that answer 410;
    # update on Messages: claim a delayed reactions send (ReactionsFlush).
    tables={CONNECTIONS: "read_write", MESSAGES: "update"},
    posts_to_connections=True,
    packages=POSTING_PACKAGES,
    sends_to=(FANOUT_QUEUE,),  # re-queues exactly what it could not deliver
    settings=(FANOUT_CONCURRENCY,),
    # Long enough to wait out API Gateway's throttle for a while; what is left then goes
    # back on the queue (FANOUT_QUEUE's visibility timeout is six times this).
    timeout_s=30,
    # Posting a whole shard: one vCPU posts ~3,000 a second (64 in flight; ~0.2 ms of
    # CPU a post), a seventh of one (256 MB) ~700, which would need more workers to keep
    # up with the account's quota (docs/scaling.md).
    memory_mb=1769,
)
# Every function of the chat in the open mode (auth=none).
FUNCTIONS: tuple[Function, ...] = (*ROUTE_FUNCTIONS, FANOUT_WORKER)

# PyJWT verifies the tokens; its RS256 needs cryptography ([crypto]), whose wheels for Linux
# arm64 are abi3 (any CPython >= 3.11), so they come ready-built: no compiler, no Docker.
# Names only: the versions are uv.lock's (pyproject's `layer-auth` group, infra/layers.py).
AUTH_PACKAGES: tuple[str, ...] = ("PyJWT[crypto]",)

AUTHORIZER = Function(
    name="Authorizer",
    handler="chat.handlers.authorizer.handler",
    trigger=ConnectAuthorizer(identity_source=("route.request.header.Sec-WebSocket-Protocol",)),
    description="Verify the Cognito ID token offered as a subprotocol before $connect",
    verifies_tokens=True,
    packages=AUTH_PACKAGES,
    # Runs inside the handshake: a JWKS fetch (3 s at most) and a signature check.
    timeout_s=5,
)
SIGN_UP_CHECK = Function(
    name="SignUpCheck",
    handler="chat.handlers.sign_up.pre_sign_up",
    trigger=UserPoolTrigger("pre_sign_up"),
    description="Refuse sign-ups whose username breaks PROTOCOL.md's rules",
    # Cognito waits at most 5 s for a trigger.
    timeout_s=5,
)
# What auth=cognito adds: the authorizer and the user pool's check.
AUTH_FUNCTIONS: tuple[Function, ...] = (AUTHORIZER, SIGN_UP_CHECK)


def functions_for(auth: str) -> tuple[Function, ...]:
    """Every function of the chat in an ``auth`` mode (``chat.config.AUTH``): what both
    hosts build."""
    if auth == AUTH_NONE:
        return FUNCTIONS
    if auth == AUTH_COGNITO:
        return (*FUNCTIONS, *AUTH_FUNCTIONS)
    raise ValueError(f"auth must be one of {', '.join(AUTH.choices)}, not {auth!r}")

# Routes API Gateway answers itself (a MOCK integration): route key -> the JSON reply.
MOCK_ROUTES: Mapping[str, str] = {"ping": '{"type": "pong"}'}

ROUTE_SELECTION_EXPRESSION = "$request.body.action"


def routes(functions: tuple[Function, ...] = FUNCTIONS) -> dict[str, Function]:
    """The functions behind WebSocket routes, by route key."""
    return {fn.route_key: fn for fn in functions if fn.route_key is not None}


def function_for_route(key: str) -> Function:
    return routes()[key]
