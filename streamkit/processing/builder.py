"""A point of a processing graph under construction.

The DSL's Stream and Table wrap one; joins and windows build on it, below the DSL, so
that they never reach into the DSL's classes."""
from __future__ import annotations

from ..errors import TopologyError
from ..serde import Serde
from .nodes import Node
from .topology import Group, Topology


class Position:
    """A node of a topology, the sub-topology (group) it belongs to, and the serializers
    of the records it emits."""

    __slots__ = ("topology", "node", "group", "keys", "values")

    def __init__(self, topology: Topology, node: Node, group: Group, keys: Serde,
                 values: Serde) -> None:
        self.topology, self.node, self.group = topology, node, group
        self.keys, self.values = keys, values

    def then(self, node: Node, keys: Serde | None = None, values: Serde | None = None
             ) -> "Position":
        """Add node after this one; the position of node."""
        if self.topology.finalized:
            raise TopologyError("the topology is already running; declare streams at import time")
        self.node.children.append(node)
        return Position(self.topology, node, self.group, keys or self.keys, values or self.values)

    def at(self, node: Node, group: Group | None = None, keys: Serde | None = None,
           values: Serde | None = None) -> "Position":
        """The position of another node of the same topology (one that joins this one's
        records with others', say), same serializers unless given."""
        return Position(self.topology, node, group or self.group, keys or self.keys,
                        values or self.values)
