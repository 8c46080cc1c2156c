"""What adds to a worker beyond its processing: routes, documented paths, a condition of
/ready. The query layer, the operations routes, the service helper, the gateway and
plugins are parts; the app shell asks each of them, and none of them writes into the app."""
from __future__ import annotations

from typing import Any, Callable

from .routing import Routes


class Part:
    """A part of a worker; override what it adds."""

    def install_routes(self, routes: Routes) -> None:
        """Add routes (each gets the URL and header limits and JSON errors)."""

    def openapi_paths(self) -> dict[str, Any]:
        """The OpenAPI path items of the routes it adds."""
        return {}

    def ready(self) -> bool:
        """Whether the worker may say it is ready, as far as this part is concerned."""
        return True

    def keeps_state(self) -> bool:
        """Whether it keeps stores under the app's state directory (which the worker then
        locks)."""
        return False


class RoutesPart(Part):
    """A part made of one route installer (App.add_routes)."""

    def __init__(self, installer: Callable[[Routes], None]) -> None:
        self.installer = installer

    def install_routes(self, routes: Routes) -> None:
        self.installer(routes)


def runs_as_worker(app: Any) -> bool:
    """Whether this process runs the app as a worker: not as Faust's client-only app (which
    a script starts to send or ask an agent, `app.start_client()`) nor its producer-only
    one. Only a worker takes partitions, opens state and locks the state directory; a
    client beside the workers must not join their groups."""
    return not (getattr(app, "client_only", False) or getattr(app, "producer_only", False))
