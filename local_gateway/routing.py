"""Route selection and route integrations: which function (or mock) answers a frame.

API Gateway evaluates ``$request.body.action`` on every frame, sends it to that route's
integration or to ``$default``, and answers by itself for MOCK routes (``ping``) and
when something breaks behind a route.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from chat.functions import Function
from local_gateway.events import ConnectionInfo, new_gateway_id, route_event
from local_gateway.lambda_service import LambdaService, log_line, timed_ms

log = logging.getLogger("local_gateway")


def select_route(
    body: str, routes: Mapping[str, object], mock_routes: Mapping[str, str]
) -> str:
    """Evaluate ``$request.body.action`` the way API Gateway does.

    The frame must be a JSON object whose ``action`` names a route; anything else
    (invalid JSON, an array, no ``action``, an unknown action) goes to ``$default``.
    """
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):  # e.g. 5,000 nested arrays: still $default
        return "$default"
    action = parsed.get("action") if isinstance(parsed, dict) else None
    if isinstance(action, str) and not action.startswith("$") and (
        action in routes or action in mock_routes
    ):
        return action
    return "$default"


def gateway_error(message: str, connection_id: str, request_id: str) -> str:
    """The frame API Gateway itself sends when an integration fails."""
    return json.dumps({"message": message, "connectionId": connection_id,
                       "requestId": request_id})


Send = Callable[[str], Awaitable[bool]]


class Router:
    """The stage's routes: function integrations by route key, plus mock routes."""

    def __init__(
        self, lambdas: LambdaService, functions: Iterable[Function], mock_routes: Mapping[str, str]
    ) -> None:
        self.lambdas = lambdas
        self.routes: dict[str, Function] = {
            fn.route_key: fn for fn in functions if fn.route_key is not None
        }
        self.mock_routes = dict(mock_routes)
        # Set by the gateway: called after a route that may write to a table ran.
        self.on_write: Callable[[], None] = lambda: None

    def has(self, route_key: str) -> bool:
        return route_key in self.routes

    async def invoke(self, route_key: str, event: dict[str, Any], connection_id: str) -> Any:
        """Invoke the function behind a route (``$connect``, ``$disconnect``, a frame's)."""
        fn = self.routes[route_key]
        result = await self.lambdas.invoke(fn.name, event, label=route_key,
                                           subject=connection_id)
        if fn.writes:
            self.on_write()
        return result

    async def route_frame(self, info: ConnectionInfo, body: str, send: Send) -> None:
        """Route one frame from a client; ``send`` answers that client."""
        request_id = new_gateway_id()
        try:
            await self._route(info, body, request_id, send)
        except Exception:
            # A bug here must not swallow the frame silently: answer as API Gateway
            # does when something breaks behind it.
            log.exception(
                "Routing a frame of %s failed", info.connection_id)
            await send(gateway_error("Internal server error", info.connection_id, request_id))

    async def _route(self, info: ConnectionInfo, body: str, request_id: str, send: Send) -> None:
        route_key = select_route(body, self.routes, self.mock_routes)
        if route_key in self.mock_routes:
            started = time.monotonic()
            await send(self.mock_routes[route_key])
            log_line(route_key, info.connection_id, "MOCK", timed_ms(started))
            return
        if route_key not in self.routes:
            # No $default route: API Gateway answers this itself.
            await send(gateway_error("Forbidden", info.connection_id, request_id))
            return
        event = route_event(info, route_key=route_key, body=body, request_id=request_id)
        result = await self.invoke(route_key, event, info.connection_id)
        if not result.ok:
            await send(gateway_error("Internal server error", info.connection_id, request_id))
