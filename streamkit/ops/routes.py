"""The operations routes of a worker: /metrics, /topology, /openapi.json and /ui."""
from __future__ import annotations

from typing import Callable, Mapping

from aiohttp import web

from ..http import json_response
from ..parts import Part
from ..routing import Routes
from ..shell import AppShell
from .metrics import CONTENT_TYPE, registry_for, render
from .openapi import document
from .ui import PAGE


class OpsRoutes(Part):
    """What operators read of a worker; `queries()` gives the query layer's figures."""

    def __init__(self, app: AppShell, queries: Callable[[], Mapping[str, int]]) -> None:
        self.app = app
        self.registry = registry_for(app, queries)

    def install_routes(self, routes: Routes) -> None:
        app = self.app

        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=render(self.registry), headers={"Content-Type": CONTENT_TYPE})

        async def ui(request: web.Request) -> web.Response:
            return web.Response(text=PAGE, content_type="text/html")

        async def openapi(request: web.Request) -> web.Response:
            tables = sorted(app.processors.ownership.tables())
            return json_response(document(f"streamkit {app.conf.id}", app.openapi_paths(),
                                          tables=tables or None,
                                          secured=bool(app.settings.api_token),
                                          max_wait_ms=app.settings.max_wait_ms))

        async def topology(request: web.Request) -> web.Response:
            return json_response(await app.topology_view())

        routes.get("/metrics", metrics)
        routes.get("/topology", topology)
        routes.get("/openapi.json", openapi)
        routes.get("/ui", ui)
