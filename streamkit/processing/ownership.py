"""The one interface that says which worker owns which partition of which table, and
gives the local store when this worker holds it. The query layer, /ready, /metadata and
the registry read ownership only through here; it reads the worker only through the
narrow view below."""
from __future__ import annotations

from typing import Any, Callable, Protocol

from aiokafka import TopicPartition

from ..partitioner import partition_for
from ..state.store import PartitionStore
from .assignor import ClusterMap, TaskId


class AssignmentView(Protocol):
    """What ownership needs to know of a worker (the processing runner provides it)."""

    topology: Any       # its tables and global tables (streamkit.processing.topology)
    cluster: ClusterMap  # the last assignment map: every task's active and standby workers

    @property
    def serving(self) -> bool:
        """Partitions assigned and every active task restored."""

    def active_store(self, table: str, tid: TaskId) -> PartitionStore | None:
        """The store of table in task tid, if this worker runs tid."""

    def standby_store(self, changelog: TopicPartition, tid: TaskId) -> PartitionStore | None:
        """The open standby store of a changelog partition of task tid, if held here."""


class TableSource(Protocol):
    """Tables that live outside the topology (Faust's own, streamkit.query.faust_tables):
    they answer the same questions for their tables."""

    @property
    def ready(self) -> bool: ...

    def specs(self) -> dict[str, Any]: ...

    def kind(self, table: str) -> str: ...

    def partitions(self, table: str) -> int | None: ...

    def owner(self, table: str, partition: int) -> str | None: ...

    def local_store(self, table: str, partition: int) -> Any: ...


class Ownership:
    def __init__(self, view: AssignmentView, url: str) -> None:
        self.view = view
        self.url = url
        self._tables: dict[bool, dict[str, Any]] = {}
        self._routing: dict[str, tuple[int, Any, Callable[[Any], bytes]]] = {}
        self.sources: list[TableSource] = []

    def add_source(self, source: TableSource) -> None:
        """Serve another kind of table (its names must not clash with the topology's)."""
        self.sources.append(source)

    def _source(self, table: str) -> TableSource | None:
        for source in self.sources:
            if table in source.specs() and table not in self.view.topology.tables:
                return source
        return None

    @property
    def ready(self) -> bool:
        """Partitions assigned and every active table partition restored."""
        return self.view.serving and all(source.ready for source in self.sources)

    def tables(self, exposed_only: bool = True) -> dict[str, Any]:
        """name -> TableSpec (or GlobalSpec for global tables, or a source's spec)."""
        others: dict[str, Any] = {}
        for source in self.sources:
            others.update(source.specs())
        topo = self.view.topology
        if topo.finalized and exposed_only in self._tables:
            # The graph no longer changes: read it once.
            return {**others, **self._tables[exposed_only]} if others else self._tables[exposed_only]
        specs: dict[str, Any] = dict(topo.tables)
        specs.update({n: g.spec for n, g in topo.globals.items()})
        out = {n: t for n, t in specs.items() if t.exposed or not exposed_only}
        if topo.finalized:
            self._tables[exposed_only] = out
        return {**others, **out}

    def kind(self, table: str) -> str:
        source = self._source(table)
        if source is not None:
            return source.kind(table)
        return "global" if table in self.view.topology.globals else "key-value"

    def _route(self, table: str) -> tuple[int, Any, Callable[[Any], bytes]]:
        """(sub-topology id or None, global table or None, key encoder), read once the
        graph is final: every key read needs them."""
        found = self._routing.get(table)
        if found is None:
            topo = self.view.topology
            g = topo.globals.get(table)
            spec = g.spec if g is not None else topo.tables[table]
            # A global table belongs to no sub-topology (-1): every worker holds all of it.
            found = (-1 if g is not None else spec.group.root().id, g, spec.keys.encode)
            if topo.finalized:
                self._routing[table] = found
        return found

    def partitions(self, table: str) -> int | None:
        """The table's partition count, once an assignment (or, for a global table, the
        initial load) has said it."""
        source = self._source(table)
        if source is not None:
            return source.partitions(table)
        gid, g, _ = self._route(table)
        if g is not None:
            return len(g.stores) or None
        return self.view.cluster.partitions.get(gid) or None

    def partition_of(self, table: str, key: Any) -> int | None:
        """Where Kafka's default partitioner puts key (serialized as the table's key type)."""
        return self.locate(table, key)[0]

    def locate(self, table: str, key: Any, allow_standby: bool = False
               ) -> tuple[int | None, PartitionStore | None]:
        """(key's partition or None before an assignment, the partition's local store or
        None): the key read's path."""
        n = self.partitions(table)
        if n is None:
            return None, None
        source = self._source(table)
        encode = self._route(table)[2] if source is None else source.specs()[table].keys.encode
        p = partition_for(encode(key), n)
        return p, self.local_store(table, p, allow_standby)

    def owner(self, table: str, partition: int) -> str | None:
        source = self._source(table)
        if source is not None:
            return source.owner(table, partition)
        gid, g, _ = self._route(table)
        if g is not None:
            return self.url  # every worker holds all of a global table
        return self.view.cluster.active.get((gid, partition))

    def standbys(self, table: str, partition: int) -> list[str]:
        if self._source(table) is not None:
            return []
        gid, g, _ = self._route(table)
        if g is not None:
            return []
        return list(self.view.cluster.standby.get((gid, partition), []))

    def local_store(self, table: str, partition: int, allow_standby: bool = False
                    ) -> PartitionStore | None:
        """The store of this table partition if this worker holds it (active, or standby
        when allowed)."""
        source = self._source(table)
        if source is not None:
            return source.local_store(table, partition)
        gid, g, _ = self._route(table)
        if g is not None:
            return g.stores[partition] if partition < len(g.stores) else None
        view = self.view
        store = view.active_store(table, (gid, partition))
        if store is not None or not allow_standby:
            return store
        changelog = TopicPartition(view.topology.tables[table].changelog, partition)
        return view.standby_store(changelog, (gid, partition))

    def owners_of(self, table: str) -> dict[int, str | None]:
        """partition -> owner url, for every partition of the table."""
        n = self.partitions(table) or 0
        return {p: self.owner(table, p) for p in range(n)}

    def describe(self) -> dict[str, Any]:
        """Every table's partitions with their active and standby workers."""
        tables = {}
        for name, spec in self.tables().items():
            n = self.partitions(name) or 0
            tables[name] = {
                "kind": self.kind(name),
                "partitions": n,
                "keys": spec.keys.name,
                "values": spec.values.name,
                "active": {str(p): self.owner(name, p) for p in range(n)},
                "standby": {str(p): self.standbys(name, p) for p in range(n)},
            }
        hosts = sorted({u for t in tables.values() for u in t["active"].values() if u}
                       | {u for t in tables.values() for us in t["standby"].values() for u in us})
        return {"self": self.url, "hosts": hosts, "tables": tables}
