"""Operator nodes of the processing graph.

A node is shared by every task of its sub-topology: per-partition state is reached
through its context (`self.ctx.task`), which the runner fills in before it hands a task
its records. Records are pushed depth-first: `forward(key, value, timestamp_ms)`.
"""
from __future__ import annotations

from typing import Any, Callable

from ..errors import TopologyError
from ..partitioner import partition_for
from ..serde import Serde
from ..state.store import MISSING
from .context import ProcessorContext


class _Unbound:
    """The context of an operator whose topology is not finalized yet."""

    def __getattr__(self, name: str) -> Any:
        raise TopologyError("an operator ran before its topology was finalized")


_UNBOUND: Any = _Unbound()


class Node:
    __slots__ = ("children", "group", "name", "ctx")

    def __init__(self, name: str) -> None:
        self.children: list[Node] = []
        self.group: Any = None  # a source's sub-topology (processing.topology.Group)
        self.name = name
        self.ctx: ProcessorContext = _UNBOUND

    def successors(self) -> list["Node"]:
        """The nodes this one forwards to."""
        return self.children

    def forward(self, key: Any, value: Any, ts: int) -> None:
        for child in self.children:
            child.process(key, value, ts)

    def process(self, key: Any, value: Any, ts: int) -> None:
        self.forward(key, value, ts)


class SourceNode(Node):
    __slots__ = ("topic", "keys", "values", "timestamp", "on_error")

    def __init__(self, topic: str, keys: Serde, values: Serde,
                 timestamp: Callable[[Any], int] | None, on_error: str | None) -> None:
        super().__init__(f"source:{topic}")
        self.topic, self.keys, self.values = topic, keys, values
        self.timestamp, self.on_error = timestamp, on_error


class MapValuesNode(Node):
    __slots__ = ("fn",)

    def __init__(self, name: str, fn: Callable[[Any], Any]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, key, value, ts):
        self.forward(key, self.fn(value), ts)


class MapNode(Node):
    __slots__ = ("fn",)

    def __init__(self, name: str, fn: Callable[[Any, Any], tuple[Any, Any]]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, key, value, ts):
        key, value = self.fn(key, value)
        self.forward(key, value, ts)


class FilterNode(Node):
    __slots__ = ("pred",)

    def __init__(self, name: str, pred: Callable[[Any], bool]) -> None:
        super().__init__(name)
        self.pred = pred

    def process(self, key, value, ts):
        if self.pred(value):
            self.forward(key, value, ts)


class PeekNode(Node):
    __slots__ = ("fn",)

    def __init__(self, name: str, fn: Callable[[Any, Any], None]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, key, value, ts):
        self.fn(key, value)
        self.forward(key, value, ts)


class BranchNode(Node):
    """Sends each record to the first branch whose predicate holds (or to the default)."""

    __slots__ = ("preds", "branches", "default")

    def __init__(self, name: str, preds: list[Callable[[Any], bool]]) -> None:
        super().__init__(name)
        self.preds = preds
        self.branches = [Node(f"{name}-{i}") for i in range(len(preds))]
        self.default = Node(f"{name}-default")

    def successors(self) -> list[Node]:
        return [*self.children, *self.branches, self.default]

    def process(self, key, value, ts):
        for pred, branch in zip(self.preds, self.branches):
            if pred(value):
                branch.forward(key, value, ts)
                return
        self.default.forward(key, value, ts)


class SinkNode(Node):
    """Writes to a topic, partitioned by murmur2 of the key bytes (Kafka's default)."""

    __slots__ = ("topic", "keys", "values")

    def __init__(self, topic: str, keys: Serde, values: Serde) -> None:
        super().__init__(f"sink:{topic}")
        self.topic, self.keys, self.values = topic, keys, values

    def process(self, key, value, ts):
        kb = None if key is None else self.keys.encode(key)
        vb = None if value is None else self.values.encode(value)
        ctx = self.ctx
        n = ctx.partitions[self.topic]
        partition = ctx.task.partition % n if kb is None else partition_for(kb, n)
        ctx.writer.add(self.topic, partition, kb, vb, ts)


class AggregateNode(Node):
    """Folds each record into its key's value in a table; forwards the new value."""

    __slots__ = ("table", "initial", "add")

    def __init__(self, table: str, initial: Any, add: Callable[[Any, Any], Any]) -> None:
        super().__init__(f"aggregate:{table}")
        self.table, self.add = table, add
        self.initial = initial if callable(initial) else (lambda: initial)

    def process(self, key, value, ts):
        if key is None:
            raise ValueError(f"{self.table}: a record without a key cannot be aggregated")
        store = self.ctx.task.stores[self.table]
        old = store.get(key, MISSING)
        new = self.add(self.initial() if old is MISSING else old, value)
        store.put(key, new)
        self.forward(key, new, ts)


class UpsertNode(Node):
    """Materializes a topic as a table: the latest value per key, None deletes."""

    __slots__ = ("table",)

    def __init__(self, table: str) -> None:
        super().__init__(f"table:{table}")
        self.table = table

    def process(self, key, value, ts):
        if key is None:
            raise ValueError(f"{self.table}: a record without a key cannot update a table")
        self.ctx.task.stores[self.table].put(key, value)
        self.forward(key, value, ts)
