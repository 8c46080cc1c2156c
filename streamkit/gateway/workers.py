"""GET /gateway/workers: every worker of every app the registry knows, with its /metrics
read now. The deployment's /ui shows these figures, each worker's own: the gateway's own
processing figures (it has no sources) would say nothing of the deployment."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

from ..http import json_response
from ..routing import Routes

if TYPE_CHECKING:
    from .core import Gateway

PATH = "/gateway/workers"


class WorkersRoute:
    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway
        self.timeout = aiohttp.ClientTimeout(total=gateway.settings.query_timeout_ms / 1000)

    def install(self, routes: Routes) -> None:
        routes.get(PATH, self.workers)

    async def workers(self, request: web.Request) -> web.Response:
        registry = self.gateway.registry
        hosts = [(app, host) for app in sorted(registry.describe())
                 for host in sorted(registry.hosts(app))]
        found = await asyncio.gather(*(self._metrics(app, host) for app, host in hosts))
        return json_response({"workers": found})

    async def _metrics(self, app: str, url: str) -> dict[str, Any]:
        """{"app", "url", "metrics": text} or, when the worker does not answer, "error"."""
        try:
            async with self.gateway.http.get(url + "/metrics", timeout=self.timeout) as resp:
                text = await resp.text()
                if resp.status == 200:
                    return {"app": app, "url": url, "metrics": text}
                return {"app": app, "url": url, "metrics": None,
                        "error": f"{url} answered {resp.status}"}
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return {"app": app, "url": url, "metrics": None,
                    "error": f"{url} did not answer: {type(exc).__name__}"}
