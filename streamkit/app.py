"""streamkit.App: the app shell with the query layer (HTTP views of every table, reads
from code) and the operations routes (metrics, topology, OpenAPI, UI)."""
from __future__ import annotations

from typing import Any

from .config import Settings
from .errors import NotAWorker
from .ops.routes import OpsRoutes
from .parts import runs_as_worker
from .query.faust_tables import FaustTables
from .query.forward import Forwarder
from .query.reader import TableReader
from .query.routes import TableRoutes
from .shell import AppShell


class App(AppShell):
    """A Faust app with streamkit's defaults and its processing path, whose tables are
    served over HTTP and read from code with `await app.read(table, key)`."""

    def __init__(self, id: str, *, settings: Settings | None = None,
                 service_name: str | None = None, **options: Any) -> None:
        super().__init__(id, settings=settings, service_name=service_name, **options)
        s = self.settings
        # One session to the app's other workers, for routed reads and gathered scans.
        self.forwarder = Forwarder(s.query_timeout_ms, s.api_token)
        # Faust's own tables are views too, owned where Faust's assignor put them.
        self.processors.ownership.add_source(FaustTables(self, s.web_url))
        self.queries = TableRoutes(id, self.processors, s, self.forwarder)
        self.add_part(self.queries)
        # /metrics; its registry takes the collectors of what is built on the app.
        self.ops = OpsRoutes(self, self.queries.stats)
        self.add_part(self.ops)
        self._reader = TableReader(self.processors.ownership, self.forwarder, s.exactly_once)

    async def read(self, table: str, key: Any) -> Any:
        """A table's value for key, read where it lives (this worker or its owner); None
        when absent; StoreUnavailable while partitions move (retry); NotAWorker in a
        client-only app, which holds no tables and knows no owners."""
        if not runs_as_worker(self):
            raise NotAWorker(f"app.read({table!r}, ...) runs in a worker of {self.conf.id}; "
                             "this process runs the app client-only: read GET "
                             f"/tables/{table}/keys/<key> from a worker")
        return await self._reader.read(table, key)

    async def on_stop(self) -> None:
        await super().on_stop()
        await self.forwarder.close()
