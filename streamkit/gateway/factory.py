"""The gateway app: a streamkit.App that serves the gateway routes; run it with `faust -A`."""
from __future__ import annotations

import asyncio
from typing import Any, Mapping

import aiohttp

from ..app import App
from ..config import Settings
from ..errors import ConfigError
from ..httpclient import peer_session
from ..parts import Part
from ..routing import Routes
from .core import Gateway
from .openapi import gateway_paths
from .prometheus import GatewayCollector
from .queries import QueryRoutes
from .routes import GatewayRoutes
from .settings import GatewaySettings
from .websocket import WebsocketRoute
from .workers import WorkersRoute


class GatewayRoutesPart(Part):
    """The gateway's routes, their OpenAPI paths, and its condition of /ready: the response
    consumer holds its assignment."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.groups = (GatewayRoutes(gateway), WebsocketRoute(gateway), QueryRoutes(gateway),
                       WorkersRoute(gateway))

    def install_routes(self, routes: Routes) -> None:
        for group in self.groups:
            group.install(routes)

    def openapi_paths(self) -> dict[str, Any]:
        return gateway_paths()

    def ready(self) -> bool:
        return self.gateway.ready


class GatewayApp(App):
    """A streamkit.App that serves the gateway routes."""

    def __init__(self, id: str, *, gateway_settings: GatewaySettings,
                 settings: Settings | None = None, **options: Any) -> None:
        super().__init__(id, settings=settings, **options)
        self.gateway = Gateway(self.settings, gateway_settings, beacon=self.beacon)
        self.worker_services.append(self.gateway)
        self.add_part(GatewayRoutesPart(self.gateway))
        self.ops.registry.register(GatewayCollector(id, self.gateway))

    async def topology_view(self) -> dict[str, Any]:
        """Every app registered with the gateway (from one of its workers), and the gateway."""
        apps = [await super().topology_view()]
        s = self.settings
        async with peer_session(s.api_token, s.query_timeout_ms) as session:
            for name in sorted(self.gateway.registry.describe()):
                for host in self.gateway.registry.hosts(name):
                    try:
                        async with session.get(host + "/topology") as resp:
                            if resp.status == 200:
                                apps.append(await resp.json())
                                break
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        continue  # try the app's next worker
        return {"apps": apps}


def create_gateway(gateway_id: str | None = None, services: Mapping[str, str] | None = None, *,
                   response_topic: str | None = None, settings: Settings | None = None,
                   env: Mapping[str, str] | None = None, **options: Any) -> GatewayApp:
    """A gateway app. `services` maps service names to request topics; what is not given
    comes from STREAMKIT_GATEWAY_* (see docs/gateway.md). Extra options go to faust.App."""
    settings = settings or Settings.from_env(env)
    gs = GatewaySettings.from_env(env, fetch_wait_ms=settings.request_fetch_wait_ms,
                                  gateway_id=gateway_id,
                                  services=dict(services) if services else None,
                                  response_topic=response_topic)
    if not gs.services:
        raise ConfigError("a gateway needs at least one service: pass services= or set "
                          "STREAMKIT_GATEWAY_SERVICES=name=topic,...")
    return GatewayApp(gs.gateway_id, gateway_settings=gs, settings=settings, **options)
