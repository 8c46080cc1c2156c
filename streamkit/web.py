"""The routes every worker serves: /health, /ready, and the table views."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from aiohttp import web

from .http import JSON, error, json_response, unavailable
from .query.routes import TableRoutes

if TYPE_CHECKING:
    from .app import App


def json_errors(settings) -> Callable:
    """Every error is JSON, an over-long URL is 414, and a body over the limit 413."""

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        if len(request.raw_path) > settings.max_url_bytes:
            return error(414, "uri_too_long", f"the URL is longer than {settings.max_url_bytes} bytes")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.content_type == JSON:
                raise
            code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
                exc.status, "http_error")
            return error(exc.status, code, exc.reason, {k: v for k, v in exc.headers.items()
                                                        if k in ("Allow", "Retry-After")})

    return middleware


def install_routes(app: "App", web_app: web.Application) -> None:
    web_app.middlewares.append(json_errors(app.settings))
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
