"""The local stand-in for the chat's AWS services, on one aiohttp port.

One port serves what a deployed stack spreads over several hosts: the page
(``site``), the WebSocket stage (``stage``, ``/local``) and its route integrations
(``routing``), the Management API (``management_api``, ``/local/@connections/{id}``).
The functions are the deployed ones, declared once in ``chat.functions`` and run by
``lambda_service`` in Lambda-like processes (``runtime``) against moto's DynamoDB
(``dynamodb``) and SQS (``event_sources``, which also polls the queues for the
functions they trigger); ``state`` keeps the tables across restarts. This module only
builds those parts and starts and stops them in order.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from chat.config import CALLBACK_URL_ENV
from chat.functions import MOCK_ROUTES, Function, QueueConsumer, functions_for
from chat.queues import QUEUES
from chat.tables import TABLES, TableSpec
from local_gateway import management_api, runtime
from local_gateway.authorizers import ConnectAuthorizers
from local_gateway.cognito import LocalCognito
from local_gateway.dynamodb import DUMMY_CREDENTIALS, LocalDynamoDB
from local_gateway.event_sources import LocalQueues, SqsPoller
from local_gateway.events import STAGE, ConnectionInfo, new_gateway_id
from local_gateway.lambda_service import LambdaService
from local_gateway.management_api import ManagementApi
from local_gateway.routing import Router
from local_gateway.settings import REPO_ROOT, GatewaySettings
from local_gateway.site import Site
from local_gateway.stage import Stage
from local_gateway.state import StateKeeper

__all__ = ["REPO_ROOT", "Gateway", "GatewaySettings"]


class Gateway:
    """The chat's API Gateway stage, Lambda functions and DynamoDB, on 127.0.0.1.

    ``functions`` defaults to ``chat.functions.functions_for(settings.auth)``; tests pass
    their own to check what happens when a handler raises or hangs. With a function
    that verifies tokens, moto's Cognito is served at ``/cognito/`` (``cognito``). Use
    ``await start()``/``await stop()``, or ``local_gateway.testing`` for a gateway in a
    thread or a subprocess.
    """

    def __init__(
        self,
        settings: GatewaySettings | None = None,
        *,
        functions: Iterable[Function] | None = None,
        mock_routes: Mapping[str, str] = MOCK_ROUTES,
        tables: Iterable[TableSpec] = TABLES,
        connection_ids: Callable[[], str] = new_gateway_id,
        runner: Callable[[Gateway], Any] | None = None,
    ) -> None:
        self.settings = settings or GatewaySettings()
        self.functions = tuple(functions_for(self.settings.auth) if functions is None
                               else functions)
        self.cognito: LocalCognito | None = None
        if any(fn.verifies_tokens for fn in self.functions):
            self.cognito = LocalCognito(self.functions)
        self.mock_routes = dict(mock_routes)
        self.dynamodb = LocalDynamoDB(tables)
        self.queues = LocalQueues(QUEUES, self.settings.queue_visibility_timeout_s)
        self.pollers: list[SqsPoller] = []
        self._connection_ids = connection_ids
        # Makes the function pool once the resources exist (``cdk_out.DeployedApp.runner``:
        # the synthesized app under awslambdaric); None: ``runtime``'s processes.
        self._make_pool = runner
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._listener: management_api.Listener | None = None
        self._stopping = False
        self.port = 0
        # Built in start(), once the ports and endpoints they need exist.
        self.lambdas: LambdaService
        self.stage: Stage
        self.state: StateKeeper | None = None

    # -- addresses -------------------------------------------------------------------

    @property
    def http_url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    @property
    def websocket_url(self) -> str:
        return f"ws://{self.settings.host}:{self.port}/{STAGE}"

    @property
    def callback_url(self) -> str:
        """What the functions get as CALLBACK_URL: the stage URL for @connections."""
        return f"{self.http_url}/{STAGE}"

    @property
    def stats(self) -> Any:
        return self.lambdas.stats

    def environment_values(self) -> dict[str, str]:
        """Every value a declared function may ask for (``Function.environment``)."""
        return {
            **{spec.env_var: name for spec, name in self.dynamodb.table_names.items()},
            CALLBACK_URL_ENV: self.callback_url,
            **self.queues.env(),
            **self.settings.function_settings,
            **(self.cognito.environment_values(self.http_url) if self.cognito else {}),
        }

    def runtime_environment(self) -> dict[str, str]:
        """What every function's environment has besides its own variables."""
        return {
            **DUMMY_CREDENTIALS,
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb.endpoint_url,
            # Any other AWS service a handler might call lands on moto, never on AWS.
            "AWS_ENDPOINT_URL": self.dynamodb.endpoint_url,
            "AWS_EC2_METADATA_DISABLED": "true",
            # A readable console: no EMF metric blobs, no X-Ray, handler logs only when
            # asked for (the gateway prints one line per invocation).
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "INFO" if self.settings.verbose else "WARNING",
        }

    # -- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        loop = asyncio.get_running_loop()
        # Start the forkserver (which imports boto3) while everything else starts up.
        loop.run_in_executor(None, runtime.warm_up)
        sock = self._bind()
        self.port = sock.getsockname()[1]
        await loop.run_in_executor(None, self.dynamodb.start)
        # SQS on the same moto server as DynamoDB (it serves every service).
        await loop.run_in_executor(None, self.queues.start, self.dynamodb.endpoint_url)
        if self.cognito is not None:  # Cognito on the same moto server too
            await loop.run_in_executor(None, self.cognito.start, self.dynamodb.endpoint_url)

        self.lambdas = LambdaService(
            self.functions, s,
            environment_values=self.environment_values(),
            runtime_environment=self.runtime_environment(),
            pool=self._make_pool(self) if self._make_pool is not None else None,
        )
        router = Router(self.lambdas, self.functions, self.mock_routes)
        self.stage = Stage(s, router, port=lambda: self.port,
                           connection_ids=self._connection_ids, spawn=self._spawn,
                           authorizers=ConnectAuthorizers(self.lambdas, self.functions))
        orphans: list[ConnectionInfo] = []
        if s.state_dir is not None:
            self.state = StateKeeper(s.state_dir, self.dynamodb, self.stage, s.save_interval_s)
            router.on_write = self.state.mark_dirty
            orphans = await loop.run_in_executor(None, self.state.load)

        app = web.Application(client_max_size=s.max_message_bytes + 1)
        app.router.add_get(f"/{STAGE}", self.stage.handle)
        connections = ManagementApi(self.stage, s.max_message_bytes)
        connections.add_routes(app)
        if self.cognito is not None:
            self.cognito.lambdas = self.lambdas
            self.cognito.add_routes(app)
        Site(s.frontend_dir, lambda: self.websocket_url, self._page_auth).add_routes(
            app)  # last: "/" catches all
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=1.0)
        await self._runner.setup()
        # Posts to @connections take a fast path in front of aiohttp (management_api).
        self._listener = await management_api.listen(self._runner, sock, connections)
        for fn in self.functions:
            if isinstance(fn.trigger, QueueConsumer):
                concurrency = s.trigger_settings[fn.trigger.max_concurrency.key]
                self.pollers.append(SqsPoller(self.lambdas, fn, self.queues, concurrency))
        for poller in self.pollers:
            poller.start()
        if self.state is not None:
            self.state.start()
            self.state.recover(orphans)

    def _bind(self) -> socket.socket:
        # SO_REUSEADDR: a restarted gateway can take the port back at once, even with
        # the previous run's connections still in TIME_WAIT.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.settings.host, self.settings.port))
        except OSError:
            sock.close()
            raise
        sock.listen(128)
        sock.setblocking(False)
        return sock

    async def stop(self) -> None:
        """Close every connection (running its $disconnect), save, release everything."""
        if self._stopping:
            return
        self._stopping = True
        await self.stage.close_all()
        if self._tasks:
            # $disconnect handlers and in-flight invocations, bounded so SIGTERM is prompt.
            timeout = max(fn.timeout_s for fn in self.functions) if self.functions else 10
            await asyncio.wait(set(self._tasks),
                               timeout=(self.settings.handler_timeout_s or timeout) / 2)
        if self._listener is not None:
            self._listener.close()
        if self._runner is not None:
            await self._runner.cleanup()
        for poller in self.pollers:
            await poller.stop()
        if self.cognito is not None:
            await self.cognito.stop()
        if self.state is not None:
            await self.state.stop()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.lambdas.close)
        await loop.run_in_executor(None, self.dynamodb.stop)

    async def save(self) -> Any:
        """Save the state now (tests; the gateway saves by itself while it runs)."""
        return None if self.state is None else await self.state.save()

    def _page_auth(self) -> dict[str, Any] | None:
        """config.json's "auth": how the page signs in (None: no sign-in)."""
        return None if self.cognito is None else self.cognito.page_auth(self.http_url)

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task
