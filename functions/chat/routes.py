"""The WebSocket routes, declared once.

Both hosts read this table: the CDK app creates one Lambda function per route with
exactly the grants listed here, and the local gateway dispatches frames to the same
handlers with the same environment. Add a route here and it exists in both places.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from chat.tables import CONNECTIONS, MESSAGES, TableSpec

Access = Literal["none", "read", "append", "read_write"]

# Environment variable holding the stage's callback URL (``https://…/<stage>``), the
# endpoint of the API Gateway Management API. The CDK app sets it from the stage; the
# local gateway sets its own ``http://127.0.0.1:<port>/local``.
CALLBACK_URL_ENV = "CALLBACK_URL"

# The DynamoDB IAM actions each access level grants: exactly the item-level calls
# ``chat.store`` makes, nothing the grant_read_data/grant_read_write_data bundles add
# (Scan, Batch*, DescribeTable, ConditionCheckItem, streams). TransactWriteItems needs no
# action of its own: IAM authorizes each item in it by its operation (Put -> PutItem).
# A store that starts calling something new must add it here, or it fails with
# AccessDenied on AWS (the local gateway does not enforce IAM).
READ_ACTIONS: tuple[str, ...] = ("dynamodb:GetItem", "dynamodb:Query")
WRITE_ACTIONS: tuple[str, ...] = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
ACCESS_ACTIONS: Mapping[Access, tuple[str, ...]] = {
    "none": (),
    "read": READ_ACTIONS,
    # Store items once and read them back (messages: never updated, never deleted).
    "append": ("dynamodb:GetItem", "dynamodb:PutItem"),
    "read_write": READ_ACTIONS + WRITE_ACTIONS,
}


@dataclass(frozen=True)
class Route:
    """One API Gateway route key and the Lambda handler behind it."""

    key: str
    handler: str  # "module.function" inside the functions/ asset
    connections: Access  # what the handler does with the Connections table
    messages: Access  # ... and with the Messages table
    posts: bool  # calls @connections (needs execute-api:ManageConnections)
    description: str = ""

    @property
    def function_name(self) -> str:
        """A readable identifier: ``$connect`` -> ``Connect``, ``new_message`` -> ``NewMessage``."""
        return "".join(part.capitalize() for part in self.key.lstrip("$").split("_"))

    def tables(self) -> dict[TableSpec, Access]:
        return {
            spec: access
            for spec, access in ((CONNECTIONS, self.connections), (MESSAGES, self.messages))
            if access != "none"
        }

    @property
    def writes(self) -> bool:
        """Whether the function may change any table."""
        return any(access in ("append", "read_write") for access in self.tables().values())

    def table_actions(self) -> dict[TableSpec, tuple[str, ...]]:
        """The exact DynamoDB IAM actions this route's function needs, per table it touches."""
        return {spec: ACCESS_ACTIONS[access] for spec, access in self.tables().items()}


ROUTES: tuple[Route, ...] = (
    Route(
        "$connect",
        "chat.handlers.connect",
        "read_write",
        "none",
        True,
        "Validate username/room, record the connection, announce the join",
    ),
    Route(
        "$disconnect",
        "chat.handlers.disconnect",
        "read_write",
        "none",
        True,
        "Forget the connection, announce the leave",
    ),
    Route(
        "$default",
        "chat.handlers.default",
        "none",
        "none",
        True,
        "Answer frames with bad JSON or an unknown action",
    ),
    # read_write on Connections: the per-connection rate limit and removing gone peers;
    # append on Messages: a message is put once (and read back for a retry), never changed.
    Route(
        "new_message",
        "chat.handlers.new_message",
        "read_write",
        "append",
        True,
        "Store a message once and broadcast it to the room",
    ),
    Route(
        "history",
        "chat.handlers.history",
        "read",
        "read",
        True,
        "Page through a room's messages, newest first",
    ),
    Route("who", "chat.handlers.who", "read", "none", True, "List the users online in the room"),
    # read_write on Connections: removing peers that answer 410 Gone.
    Route(
        "typing",
        "chat.handlers.typing",
        "read_write",
        "none",
        True,
        "Tell the room's other connections that someone is typing",
    ),
)

# Routes API Gateway answers itself (a MOCK integration): route key -> the JSON reply.
MOCK_ROUTES: Mapping[str, str] = {"ping": '{"type": "pong"}'}

ROUTE_SELECTION_EXPRESSION = "$request.body.action"

# Every function's size, for the CDK app and the local gateway alike.
# 256 MB: Lambda gives CPU in proportion to memory, and a cold start imports boto3
# (~140 ms at full speed) plus Powertools; at 128 MB that doubles. The handlers hold a
# few small items in memory, so more buys nothing.
FUNCTION_MEMORY_MB = 256
# A broadcast is one Query plus parallel posts (~20 ms each): well under a second for a
# busy room. 10 s bounds a stuck call well before API Gateway's 29 s integration limit;
# the fan-out stops waiting 1 s before it (chat.handlers).
FUNCTION_TIMEOUT_S = 10


def route_for(key: str) -> Route:
    for route in ROUTES:
        if route.key == key:
            return route
    raise KeyError(key)


def function_environment(
    route: Route, *, table_names: Mapping[TableSpec, str], callback_url: str
) -> dict[str, str]:
    """The environment a route's function runs with: only the tables it touches.

    ``table_names`` maps each spec to its physical name (a CDK token in the app, a
    plain string in the local gateway).
    """
    env = {spec.env_var: table_names[spec] for spec in route.tables()}
    if route.posts:
        env[CALLBACK_URL_ENV] = callback_url
    # No POWERTOOLS_SERVICE_NAME/METRICS_NAMESPACE: chat.observability names both.
    return env
