"""The query layer of every registered app, through the gateway.

GET /apps                                  every app the registry knows
GET /apps/{app}                            its registry record
GET /apps/{app}/tables/{table}/keys/{key}  sent to the key's owner (from the registry)
GET /apps/{app}/{anything else}            sent to a host of the app, whose own routing
                                           forwards or gathers as the query layer does
A host that does not answer, or answers 503 (rebalancing, partition moving), is skipped for
the next one, and the round is retried until the query timeout.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from ..http import error, json_response
from ..routing import Routes

if TYPE_CHECKING:
    from .core import Gateway

log = logging.getLogger(__name__)

RETRY_PAUSE_S = 0.1
SERVED_BY = "X-Streamkit-Served-By"  # set by the worker that answered
_PASS_HEADERS = (SERVED_BY, "Retry-After")


class QueryRoutes:
    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway
        self.registry = gateway.registry
        self.timeout_s = gateway.settings.query_timeout_ms / 1000

    def install(self, routes: Routes) -> None:
        routes.get("/apps", self.list_apps)
        routes.get("/apps/{app}", self.describe)
        routes.get("/apps/{app}/tables/{table}/keys/{key}", self.get_key)
        routes.get("/apps/{app}/{tail:.+}", self.forward_any)

    async def list_apps(self, request: web.Request) -> web.Response:
        return json_response({"apps": self.registry.describe()})

    async def describe(self, request: web.Request) -> web.Response:
        name = request.match_info["app"]
        found = self.registry.describe().get(name)
        if found is None:
            return _unknown(name)
        return json_response({"app": name, **found})

    async def get_key(self, request: web.Request) -> web.Response:
        app, table = request.match_info["app"], request.match_info["table"]
        if not self.registry.known(app):
            return _unknown(app)
        owner = self.registry.owner(app, table, request.match_info["key"])
        return await self._forward(request, app, owner)

    async def forward_any(self, request: web.Request) -> web.Response:
        app = request.match_info["app"]
        if not self.registry.known(app):
            return _unknown(app)
        return await self._forward(request, app, None)

    async def _forward(self, request: web.Request, app: str, first: str | None) -> web.Response:
        prefix = f"/apps/{app}"
        raw = request.rel_url.raw_path_qs
        path_qs = raw[len(prefix):] if raw.startswith(prefix) else raw
        deadline = time.monotonic() + self.timeout_s
        last = "no host of the app is known"
        while time.monotonic() < deadline:
            hosts = self.registry.hosts(app)
            if first:
                hosts = [first] + [h for h in hosts if h != first]
            for host in hosts:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    resp = await self._get(host + path_qs, remaining)
                except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                    last = f"{host} did not answer: {exc!r}"
                    continue
                if resp.status != 503:
                    return resp
                last = f"{host} is rebalancing"
            first = None  # the owner named by a stale record may be the one that moved
            await asyncio.sleep(min(RETRY_PAUSE_S, max(deadline - time.monotonic(), 0)))
        log.info("no host of app=%s answered %s: %s", app, path_qs, last)
        return error(503, "unavailable", f"{app}: {last}", {"Retry-After": "1"})

    async def _get(self, url: str, remaining: float) -> web.Response:
        timeout = aiohttp.ClientTimeout(total=remaining)
        # Sent as a client would, so that the worker may still forward to the owner it knows.
        async with self.gateway.http.get(url, timeout=timeout) as resp:
            payload = await resp.read()
            headers = {k: v for k, v in resp.headers.items() if k in _PASS_HEADERS}
            return web.Response(body=payload, status=resp.status,
                                content_type=resp.content_type, headers=headers)


def _unknown(app: str) -> web.Response:
    return error(404, "unknown_app", f"no app named {app!r} is registered with the gateway")

