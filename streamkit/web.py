"""The routes every worker serves: /health, /ready, and the table views."""
from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .http import json_response, unavailable
from .ops.auth import auth_middleware
from .ops.metrics import CONTENT_TYPE, render
from .ops.openapi import document
from .ops.ui import PAGE
from .query.routes import TableRoutes
from .routing import Routes

if TYPE_CHECKING:
    from .app import App


def install_routes(app: "App", web_app: web.Application) -> None:
    """Every route of the app: these, the table views, those of add_routes installers,
    and the JSON 404/405 catch-all last."""
    if app.settings.api_token:
        # A middleware, not a per-route check, so that every route is covered, including
        # any that bypass streamkit's Routes; it costs every request a little.
        web_app.middlewares.append(
            auth_middleware(app.settings.api_token, lambda: app.limit_breaches.update(["auth"])))
    routes = Routes(web_app, app.settings, app.limit_breaches)

    async def health(request: web.Request) -> web.Response:
        return json_response({"status": "ok", "app": app.conf.id})

    async def ready(request: web.Request) -> web.Response:
        if app.is_ready:
            return json_response({"ready": True, "app": app.conf.id,
                                  "tasks": sorted(app.processors.tasks),
                                  "standby": sorted(app.processors.standbys)})
        return unavailable("partitions are being assigned or tables recovered")

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=render(app.metrics_registry), headers={"Content-Type": CONTENT_TYPE})

    async def ui(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def openapi(request: web.Request) -> web.Response:
        tables = sorted(app.processors.ownership.tables())
        return json_response(document(f"streamkit {app.conf.id}", app.openapi_paths,
                                      tables=tables or None, secured=bool(app.settings.api_token),
                                      max_wait_ms=app.settings.max_wait_ms))

    async def topology(request: web.Request) -> web.Response:
        return json_response(await app.topology_view())

    routes.get("/health", health)
    routes.get("/ready", ready)
    routes.get("/metrics", metrics)
    routes.get("/topology", topology)
    routes.get("/openapi.json", openapi)
    routes.get("/ui", ui)
    TableRoutes(app).install(routes)
    for installer in app.route_installers:
        installer(routes)
    routes.add_fallback()
