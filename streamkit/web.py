"""The routes every worker serves: /health, /ready, and the table views."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .http import json_response, unavailable
from .query.routes import TableRoutes

if TYPE_CHECKING:
    from .app import App


def install_routes(app: "App", web_app: web.Application) -> None:
    async def health(request: web.Request) -> web.Response:
        return json_response({"status": "ok", "app": app.conf.id})

    async def ready(request: web.Request) -> web.Response:
        if app.is_ready:
            return json_response({"ready": True, "app": app.conf.id,
                                  "tasks": sorted(app.processors.tasks),
                                  "standby": sorted(app.processors.standbys)})
        return unavailable("partitions are being assigned or tables recovered")

    web_app.router.add_get("/health", health)
    web_app.router.add_get("/ready", ready)
    TableRoutes(app).install(web_app)
