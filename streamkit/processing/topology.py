"""The declared processing graph: sources, tables, sinks and sub-topologies.

A sub-topology is a connected part of the graph; re-keying cuts the graph at a
repartition topic. Sources of one sub-topology must be co-partitioned, and task
(group, p) owns partition p of each of its sources and tables.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from ..errors import TopologyError
from ..serde import Serde
from ..state.keys import KeyCodec, codec_for
from .context import ProcessorContext
from .nodes import Node, SourceNode


class Group:
    """A sub-topology under construction (union-find, merged by `merge`)."""

    __slots__ = ("parent", "id")

    def __init__(self) -> None:
        self.parent: Group | None = None
        self.id: int = -1  # numbered when the topology is finalized

    def root(self) -> "Group":
        g = self
        while g.parent is not None:
            g = g.parent
        return g

    def union(self, other: "Group") -> "Group":
        a, b = self.root(), other.root()
        if a is not b:
            b.parent = a
        return a


@dataclass
class TableSpec:
    name: str
    changelog: str
    keys: Serde
    values: Serde
    group: Group
    exposed: bool = True

    @property
    def key_codec(self) -> KeyCodec:
        return codec_for(self.keys)


@dataclass
class InternalTopic:
    name: str
    compact: bool
    partitions_from: Group | None = None  # same count as that sub-topology's sources
    partitions: int | None = None  # a count of its own (KStream.repartition(n))


@dataclass
class Topology:
    app_id: str
    sources: dict[str, SourceNode] = field(default_factory=dict)
    tables: dict[str, TableSpec] = field(default_factory=dict)
    sinks: set[str] = field(default_factory=set)
    internal: dict[str, InternalTopic] = field(default_factory=dict)
    globals: dict[str, Any] = field(default_factory=dict)  # name -> joins.GlobalTable
    # Sub-topologies that look records up in a global table.
    global_readers: list[Group] = field(default_factory=list)
    finalized: bool = False
    context: ProcessorContext = field(default_factory=ProcessorContext)
    # The production-error policy a sink chose for its topics ('continue' or 'fail';
    # processing.production), where it differs from STREAMKIT_ON_PRODUCTION_ERROR.
    production_errors: dict[str, str] = field(default_factory=dict)

    def changelog_topic(self, table: str) -> str:
        return f"{self.app_id}-{table}-changelog"

    def repartition_topic(self, name: str) -> str:
        return f"{self.app_id}-{name}-repartition"

    def add_table(self, name: str, keys: Serde, values: Serde, group: Group,
                  exposed: bool = True) -> TableSpec:
        if name in self.tables or name in self.globals:
            raise TopologyError(f"a table named {name!r} already exists")
        spec = TableSpec(name, self.changelog_topic(name), keys, values, group, exposed)
        self.tables[name] = spec
        self.internal[spec.changelog] = InternalTopic(spec.changelog, compact=True,
                                                      partitions_from=group)
        return spec

    def set_production_error(self, topics: Iterable[str], policy: str) -> None:
        """The production-error policy of records written to topics: 'continue' or
        'fail' (one per topic)."""
        if policy not in ("continue", "fail"):
            raise TopologyError(f"on_error of a sink is 'continue' or 'fail', not {policy!r}")
        for topic in topics:
            if self.production_errors.setdefault(topic, policy) != policy:
                raise TopologyError(f"sinks to {topic!r} ask for both on_error="
                                    f"{self.production_errors[topic]!r} and {policy!r}")

    def finalize(self) -> None:
        """Number the sub-topologies and bind every operator to this topology's context;
        after this the graph no longer changes."""
        if self.finalized:
            return
        for node in self.nodes():
            node.ctx = self.context
        roots: dict[int, int] = {}
        for group in self._all_groups():
            root = group.root()
            if id(root) not in roots:
                roots[id(root)] = len(roots)
            group.id = roots[id(root)]
            root.id = group.id
        self.finalized = True

    def nodes(self) -> list[Node]:
        """Every operator reachable from a source, each once."""
        out: list[Node] = []
        seen: set[int] = set()
        stack: list[Node] = list(self.sources.values())
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                out.append(node)
                stack.extend(node.successors())
        return out

    def _all_groups(self) -> list[Group]:
        groups = [s.group for s in self.sources.values()]
        groups += [t.group for t in self.tables.values()]
        return groups

    def group_of_topic(self, topic: str) -> int:
        return self.sources[topic].group.root().id

    def topics_of_group(self, group: int) -> list[str]:
        return sorted(t for t, s in self.sources.items() if s.group.root().id == group)

    def groups(self) -> list[int]:
        return sorted({s.group.root().id for s in self.sources.values()})

    def groups_reading_globals(self) -> set[int]:
        return {g.root().id for g in self.global_readers}

    def tables_of_group(self, group: int) -> list[TableSpec]:
        return [t for t in self.tables.values() if t.group.root().id == group]

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description of the graph."""
        self.finalize()

        def walk(node: Node) -> dict[str, Any]:
            return {"name": node.name, "children": [walk(c) for c in node.children]}

        return {
            "sub_topologies": [
                {"id": g, "sources": self.topics_of_group(g),
                 "tables": [t.name for t in self.tables_of_group(g)],
                 "graph": [walk(self.sources[t]) for t in self.topics_of_group(g)]}
                for g in self.groups()
            ],
            "global_tables": {n: g.spec.topic for n, g in sorted(self.globals.items())},
            "sinks": sorted(self.sinks),
            "internal_topics": sorted(self.internal),
        }
