"""Declaring a stream-stream windowed join (Stream.join_window): its buffers, one window
store per input (and one for waiting null results with Kafka Streams' semantics), and the
node of each input."""
from __future__ import annotations

from typing import Any

from ..errors import TopologyError
from ..processing.builder import Position
from ..processing.nodes import Node, SourceNode
from ..processing.topology import Group, Topology
from ..serde import Serde, SerdeSpec, resolve
from ..topics import late_events_topic
from ..windows.codec import WindowValues
from .nodes import check_how
from .shared_time import SharedTimeJoinNode, Sided
from .windowed import (
    Flagged,
    JoinBufferSpec,
    Joiner,
    JoinWindows,
    WindowedJoin,
    WindowedJoinNode,
)

SEMANTICS = ("streamkit", "kafka")


def _add_buffer(topology: Topology, name: str, keys: Serde, records: Any, group: Group,
                windows: JoinWindows) -> JoinBufferSpec:
    base = topology.add_table(name, keys, WindowValues(resolve("json"), records), group,
                              exposed=False)
    spec = JoinBufferSpec(base.name, base.changelog, base.keys, base.values, base.group,
                          base.exposed, join_windows=windows)
    topology.tables[name] = spec
    return spec


def _source_as_decoded(position: Position) -> SourceNode | None:
    """The source whose records, as its serde decoded them, are the records at position."""
    node = position.node
    return node if isinstance(node, SourceNode) and position.values is node.values else None


def stream_stream_join(left: Position, right: Position, windows: JoinWindows,
                       joiner: Joiner, how: str, name: str, values: SerdeSpec,
                       semantics: str = "streamkit") -> Position:
    """Declare the join of left and right (Stream.join_window); the position of its
    results. semantics="streamkit" judges each input on its own stream time
    (streamkit.joins.windowed); "kafka" gives Kafka Streams' records
    (streamkit.joins.shared_time)."""
    if not isinstance(windows, JoinWindows):
        raise TopologyError(f"join_window takes JoinWindows(before_ms, after_ms, grace_ms), "
                            f"not {windows!r}")
    check_how(how, ("inner", "left", "outer"))
    if semantics not in SEMANTICS:
        raise TopologyError(f"semantics must be one of {SEMANTICS}, not {semantics!r}")
    if not isinstance(name, str) or not name:
        raise TopologyError("a stream-stream join needs a name (it names its state stores)")
    topology = left.topology
    if right.topology is not topology:
        raise TopologyError("both streams of a join must belong to the same app")
    if left.keys.name != right.keys.name:
        raise TopologyError(f"the streams of a join must have the same key serde (the join "
                            f"key, co-partitioned), not {left.keys.name!r} and "
                            f"{right.keys.name!r}")
    # Co-partitioned: one sub-topology, so the start-up check compares partition counts.
    group = left.group.union(right.group)
    join = WindowedJoin(name, windows, joiner, how, late_events_topic(topology.app_id),
                        semantics)
    _add_buffer(topology, join.stores[0], left.keys, Flagged(left.values), group, windows)
    _add_buffer(topology, join.stores[1], right.keys, Flagged(right.values), group, windows)
    if join.outer is not None:
        _add_buffer(topology, join.outer, left.keys, Sided(left.values, right.values), group,
                    windows)
    nodes: tuple[Node, Node]
    if semantics == "kafka":
        nodes = (SharedTimeJoinNode(join, True), SharedTimeJoinNode(join, False))
    else:
        nodes = (WindowedJoinNode(join, True, _source_as_decoded(left)),
                 WindowedJoinNode(join, False, _source_as_decoded(right)))
    merged = Node(f"join-window:{name}")
    left.then(nodes[0]).node.children.append(merged)
    right.then(nodes[1]).node.children.append(merged)
    return left.at(merged, group, values=resolve(values))
