"""Declaring a windowed table in a topology: its spec and its operator.

A windowed table is an ordinary changelog table of the topology (one RocksDB store per
partition, restored, standby-replicated and owned like any other), partitioned by the
record key alone, so that all windows of a key live on one worker. Its store encodes
composite keys (streamkit.windows.codec); `spec.keys` stays the record key serde, so a
key's partition is found the same way as for any table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..processing.topology import Group, TableSpec, Topology
from ..serde import Serde
from ..state.keys import KeyCodec, codec_for
from ..topics import late_events_topic
from .aggregate import TimeWindowAggregate, WindowedAggregate
from .codec import WindowKeys, WindowValues
from .session import SessionAggregate
from .sliding import SlidingAggregate
from .specs import Hopping, Session, Sliding, Tumbling, WindowSpec

WINDOW_TYPES = (Tumbling, Hopping, Sliding, Session)


@dataclass
class WindowedTableSpec(TableSpec):
    """A table of windows: `values` is the store's serde; `aggregates` the user's."""

    windows: WindowSpec | None = None
    aggregates: Serde | None = None

    @property
    def key_codec(self) -> KeyCodec:
        return WindowKeys(codec_for(self.keys))


def add_windowed_table(topology: Topology, name: str, keys: Serde, aggregates: Serde,
                       records: Serde, group: Group, windows: WindowSpec,
                       exposed: bool) -> WindowedTableSpec:
    base = topology.add_table(name, keys, WindowValues(aggregates, records), group, exposed)
    spec = WindowedTableSpec(base.name, base.changelog, base.keys, base.values, base.group,
                             base.exposed, windows=windows, aggregates=aggregates)
    topology.tables[name] = spec
    return spec


def windowed_node(topology: Topology, name: str, windows: WindowSpec, initial: Any,
                  add: Callable[[Any, Any], Any], merge: Callable[[Any, Any], Any] | None,
                  emit: str) -> WindowedAggregate:
    """The operator for this kind of window."""
    late = late_events_topic(topology.app_id)
    if isinstance(windows, Session):
        if merge is None:
            raise ValueError("session windows need merge(agg1, agg2): sessions merge when "
                             "a record bridges two of them")
        return SessionAggregate(name, windows, initial, add, merge, emit, late)
    if merge is not None:
        raise ValueError("merge applies to session windows only")
    if isinstance(windows, Sliding):
        return SlidingAggregate(name, windows, initial, add, emit, late)
    if isinstance(windows, (Tumbling, Hopping)):
        return TimeWindowAggregate(name, windows, initial, add, emit, late)
    raise TypeError(f"not a window spec: {windows!r}; use one of "
                    f"{', '.join(t.__name__ for t in WINDOW_TYPES)}")
