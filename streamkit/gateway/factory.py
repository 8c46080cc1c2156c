"""The gateway app: a streamkit.App that serves the gateway routes; run it with `faust -A`."""
from __future__ import annotations

import asyncio
from typing import Any, Iterable, Mapping

import aiohttp

from mode import ServiceT

from ..app import App
from ..config import Settings
from ..errors import ConfigError
from .core import Gateway
from .openapi import gateway_paths
from .queries import QueryRoutes
from .routes import GatewayRoutes
from .settings import GatewaySettings
from .websocket import WebsocketRoute


class GatewayApp(App):
    """A streamkit.App whose /ready also waits for its response-topic assignment."""

    def __init__(self, id: str, *, gateway_settings: GatewaySettings,
                 settings: Settings | None = None, **options: Any) -> None:
        super().__init__(id, settings=settings, **options)
        self.gateway = Gateway(self, gateway_settings, beacon=self.beacon)
        self._gateway_routes = (GatewayRoutes(self.gateway), WebsocketRoute(self.gateway),
                                QueryRoutes(self.gateway))
        self.add_routes(self.install_gateway_routes)
        self.openapi_paths.update(gateway_paths())

    def install_gateway_routes(self, routes: Any) -> None:
        """Add the gateway's routes (to a streamkit.routing.Routes)."""
        for group in self._gateway_routes:
            group.install(routes)

    def on_init_dependencies(self) -> Iterable[ServiceT]:
        return [*super().on_init_dependencies(), self.gateway]

    async def topology_view(self) -> dict[str, Any]:
        """Every app registered with the gateway (from one of its workers), and the gateway."""
        apps = [await super().topology_view()]
        timeout = aiohttp.ClientTimeout(total=self.settings.query_timeout_ms / 1000)
        headers = ({"Authorization": f"Bearer {self.settings.api_token}"}
                   if self.settings.api_token else {})
        async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
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

    @property
    def is_ready(self) -> bool:
        """The app is ready and the response consumer holds its assignment."""
        return super().is_ready and self.gateway.ready


def create_gateway(gateway_id: str | None = None, services: Mapping[str, str] | None = None, *,
                   response_topic: str | None = None, settings: Settings | None = None,
                   env: Mapping[str, str] | None = None, **options: Any) -> GatewayApp:
    """A gateway app. `services` maps service names to request topics; what is not given
    comes from STREAMKIT_GATEWAY_* (see docs/gateway.md). Extra options go to faust.App."""
    settings = settings or Settings.from_env(env)
    gs = GatewaySettings.from_env(env, fetch_wait_ms=settings.fetch_max_wait_ms,
                                  gateway_id=gateway_id,
                                  services=dict(services) if services else None,
                                  response_topic=response_topic)
    if not gs.services:
        raise ConfigError("a gateway needs at least one service: pass services= or set "
                          "STREAMKIT_GATEWAY_SERVICES=name=topic,...")
    return GatewayApp(gs.gateway_id, gateway_settings=gs, settings=settings, **options)
