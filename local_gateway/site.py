"""The page: ``frontend/`` as static files, and the ``config.json`` that points it here.

On AWS, CloudFront serves the same files from S3 and the CDK app writes ``config.json``
from the same function (``chat.protocol.page_config``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from chat.protocol import page_config


class Site:
    def __init__(self, frontend_dir: Path, websocket_url: Callable[[], str],
                 auth: Callable[[], dict[str, Any] | None] = lambda: None) -> None:
        self.frontend_dir = frontend_dir
        self._websocket_url = websocket_url
        self._auth = auth  # config.json's "auth" (None: no sign-in)

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/config.json", self.config_json)
        app.router.add_get("/", self.index)
        if self.frontend_dir.is_dir():
            app.router.add_static("/", self.frontend_dir)

    async def config_json(self, request: web.Request) -> web.Response:
        return web.json_response(page_config(self._websocket_url(), self._auth()),
                                 headers={"Cache-Control": "no-store"})

    async def index(self, request: web.Request) -> web.StreamResponse:
        index = self.frontend_dir / "index.html"
        if index.is_file():
            return web.FileResponse(index, headers={"Cache-Control": "no-cache"})
        url = self._websocket_url()
        return web.Response(
            content_type="text/html",
            text=(
                "<!doctype html><meta charset=utf-8><title>Chat (local)</title>"
                f"<p>No <code>{index}</code> yet. The WebSocket API is at "
                f"<code>{url}</code>; try<pre>npx wscat -c "
                f"'{url}?username=alice&amp;room=general'</pre>"
            ),
        )
