"""Reading a table from code (a service handler, an agent): the local store when this
worker owns the key, else the owner's HTTP view."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ..errors import PeerError, StoreUnavailable
from ..processing.ownership import Ownership
from .forward import Forwarder


class TableReader:
    """Reads a table from code (App.read)."""

    def __init__(self, ownership: Ownership, forwarder: Forwarder, committed: bool = False) -> None:
        self.own, self.forwarder = ownership, forwarder
        self.committed = committed  # exactly-once: committed state only, as the HTTP reads

    async def read(self, table: str, key: Any) -> Any:
        """The table's value for key, or None; StoreUnavailable while partitions move."""
        own = self.own
        if table not in own.tables(exposed_only=False):
            raise KeyError(f"no table named {table!r}")
        partition = own.partition_of(table, key)
        if partition is None or not own.ready:
            raise StoreUnavailable(f"{table} is not ready")
        store = own.local_store(table, partition)
        if store is not None:
            return store.get_committed(key) if self.committed else store.get(key)
        owner = own.owner(table, partition)
        if owner is None or owner == own.url:
            raise StoreUnavailable(f"partition {partition} of {table} is moving")
        path = f"/tables/{quote(table, safe='')}/keys/{quote(str(key), safe='')}"
        try:
            body = await self.forwarder.get_json(owner, path, {})
        except PeerError as exc:
            if exc.status == 404:
                return None
            raise StoreUnavailable(str(exc)) from None
        return body["value"]

