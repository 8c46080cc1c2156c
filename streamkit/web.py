"""The routes every worker serves: /health, /ready, and the table views."""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Callable

from aiohttp import web

from .http import JSON, error, json_response, unavailable
from .ops.auth import auth_middleware
from .ops.metrics import CONTENT_TYPE, render
from .ops.openapi import document
from .ops.ui import PAGE
from .query.routes import TableRoutes

if TYPE_CHECKING:
    from .app import App


def json_errors(settings, breaches: Counter) -> Callable:
    """Every error is JSON; an over-long URL is 414, over-large headers 431, a body over
    the limit 413; each refusal is counted by limit."""

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        if len(request.raw_path) > settings.max_url_bytes:
            breaches["url"] += 1
            return error(414, "uri_too_long", f"the URL is longer than {settings.max_url_bytes} bytes")
        if sum(len(k) + len(v) for k, v in request.raw_headers) > settings.max_header_bytes:
            breaches["headers"] += 1
            return error(431, "headers_too_large",
                         f"the headers are larger than {settings.max_header_bytes} bytes")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.content_type == JSON:
                raise
            if exc.status == 413:
                breaches["body"] += 1
            code = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(
                exc.status, "http_error")
            return error(exc.status, code, exc.reason, {k: v for k, v in exc.headers.items()
                                                        if k in ("Allow", "Retry-After")})

    return middleware


def install_routes(app: "App", web_app: web.Application) -> None:
    web_app.middlewares.append(json_errors(app.settings, app.limit_breaches))
    if app.settings.api_token:
        web_app.middlewares.append(
            auth_middleware(app.settings.api_token, lambda: app.limit_breaches.update(["auth"])))
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

    web_app.router.add_get("/health", health)
    web_app.router.add_get("/ready", ready)
    web_app.router.add_get("/metrics", metrics)
    web_app.router.add_get("/topology", topology)
    web_app.router.add_get("/openapi.json", openapi)
    web_app.router.add_get("/ui", ui)
    TableRoutes(app).install(web_app)
