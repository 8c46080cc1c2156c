"""Faust's own tables (app.Table, app.GlobalTable, app.SetTable) as views of the query layer:
listed in /tables, key reads served by the worker Faust assigned the key's partition to,
scans and counts gathered from every owner, like streamkit's tables.

Faust decides where its tables live (its assignor, its consumer group) and writes each
update to the changelog partition of the record being processed; this module only reads
what Faust holds. A Faust table is read through its store, so what a query sees is what
the agents see, uncommitted updates included (Faust has no separate committed view).
"""
from __future__ import annotations

from typing import Any, Iterator

from aiokafka import TopicPartition
from faust import SetTable

from ..partitioner import partition_for
from ..state.store import MISSING, key_range, scan_start


class FaustKeys:
    """A Faust table's key serializer as a streamkit serde (for URL keys and cursors)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        serializer = table.key_serializer or table.app.conf.key_serializer
        key_type = table.key_type
        self.name = "str" if serializer == "raw" and key_type in (None, str, bytes) else "json"

    def encode(self, key: Any) -> bytes:
        return self.table.changelog_topic.prepare_key(key, None)[0]

    def decode(self, data: bytes) -> Any:
        key = _store(self.table)._decode_key(data)
        return key.decode(errors="replace") if isinstance(key, bytes) else key


class FaustValues:
    """A Faust table's value serializer as a streamkit serde (for scans)."""

    def __init__(self, table: Any) -> None:
        self.table = table
        self.name = str(table.value_serializer or table.app.conf.value_serializer)
        self.is_set = isinstance(table, SetTable)

    def decode(self, data: bytes) -> Any:
        return _json_ready(_store(self.table)._decode_value(data), self.is_set)

    def encode(self, value: Any) -> bytes:
        return self.table.changelog_topic.prepare_value(value, None)[0]


def _store(table: Any) -> Any:
    """The store that holds a Faust table's entries (a SetTable keeps its sets in memory
    and persists them to a store of its own)."""
    data = table.data
    return getattr(data, "storage", data)


class FaustSpec:
    """What the query layer needs to know of one Faust table (a TableSpec's fields)."""

    faust = True
    windows = None
    exposed = True

    def __init__(self, table: Any) -> None:
        self.table = table
        self.name = table.name
        self.changelog = table.changelog_topic.get_topic_name()
        self.keys = FaustKeys(table)
        self.values = FaustValues(table)
        self.key_codec = self.keys
        self.is_global = bool(getattr(table, "is_global", False))


class FaustPartition:
    """One partition of a Faust table held by this worker, read as a streamkit store."""

    def __init__(self, spec: FaustSpec, partition: int, partitions: int) -> None:
        self.spec, self.partition, self.partitions = spec, partition, partitions
        self.keys, self.values = spec.keys, spec.values

    def partition_of(self, key: Any) -> int | None:
        """The partition whose database holds key (Faust's RocksDB store notes it when it
        reads a key); None when the store does not say."""
        index = getattr(_store(self.spec.table), "_key_index", None)
        try:
            return None if index is None else index.get(self.keys.encode(key))
        except Exception:
            return None

    def read(self, key: Any) -> Any:
        """key's value in any partition this worker holds (see FaustTables)."""
        table = self.spec.table
        if table.window is not None:
            return self._windows(key)
        value = _store(table).get(key, MISSING)
        return None if value is MISSING else _json_ready(value, self.values.is_set)

    def _windows(self, key: Any) -> list[dict[str, Any]] | None:
        """A windowed Faust table's windows of key in this partition (Faust keeps each
        window as the entry ((key, (start, end)) -> value), times in seconds)."""
        rows = []
        for wkey, value in _store(self.spec.table).items():
            if isinstance(wkey, (list, tuple)) and len(wkey) == 2 and wkey[0] == key:
                start, end = wkey[1]
                rows.append({"start": start, "end": end, "value": _json_ready(value)})
        return sorted(rows, key=lambda r: r["start"]) or None

    get_committed = read

    def raw_items(self, start: bytes | None = None, end: bytes | None = None,
                  prefix: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        return key_range(self._sorted_raw(), scan_start(start, prefix), end, prefix)

    def count(self) -> int:
        return sum(1 for _ in self._sorted_raw())

    def _sorted_raw(self) -> Iterator[tuple[bytes, bytes]]:
        """This partition's entries in key order. A RocksDB store keeps one database per
        partition (Faust's layout); other stores are filtered by the key's partition."""
        store = _store(self.spec.table)
        dbs = getattr(store, "_dbs", None)
        if dbs is not None:
            db = dbs.get(self.partition)
            if db is not None:
                skip = getattr(store, "offset_key", None)  # Faust's own bookkeeping entry
                yield from ((kb, vb) for kb, vb in db.items() if kb != skip)
            return
        encode = store._encode_key
        rows = []
        for key, value in store.items():
            kb = encode(key)
            if self.spec.is_global or partition_for(kb, self.partitions) == self.partition:
                rows.append((kb, store._encode_value(value)))
        yield from sorted(rows)


class FaustTables:
    """The Faust tables of one app, through the ownership interface's questions."""

    def __init__(self, app: Any, url: str) -> None:
        self.app, self.url = app, url
        self._specs: dict[str, FaustSpec] = {}

    def specs(self) -> dict[str, FaustSpec]:
        tables = self.app.tables
        if len(self._specs) != len(tables):
            self._specs = {name: FaustSpec(t) for name, t in tables.items()}
        return self._specs

    @property
    def ready(self) -> bool:
        """Faust's recovery of its tables is done (or there are none)."""
        app = self.app
        if not app.tables:
            return True
        return app.tables.recovery.completed.is_set() and not app.in_recovery

    def kind(self, name: str) -> str:
        spec = self._specs[name]
        if spec.is_global:
            return "faust-global"
        return "faust-windowed" if spec.table.window is not None else "faust"

    def partitions(self, name: str) -> int | None:
        table = self._specs[name].table
        return table.partitions or self.app.conf.topic_partitions

    def owner(self, name: str, partition: int) -> str | None:
        spec = self._specs[name]
        if spec.is_global:
            return self.url
        for host, topics in self.app.assignor.changelog_distribution.items():
            if partition in topics.get(spec.changelog, ()):
                return str(host).rstrip("/")
        return None

    def local_store(self, name: str, partition: int) -> FaustPartition | None:
        spec = self._specs[name]
        n = self.partitions(name) or 0
        if spec.is_global or TopicPartition(spec.changelog, partition) in \
                self.app.assignor.assigned_actives():
            return FaustPartition(spec, partition, n)
        return None


def _json_ready(value: Any, is_set: bool = False) -> Any:
    """A Faust value as JSON can carry it: Records as their fields, a SetTable's members
    as a sorted list."""
    if hasattr(value, "asdict"):
        return value.asdict()
    if is_set or isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return value
