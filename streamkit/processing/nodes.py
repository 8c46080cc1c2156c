"""Operator nodes of the processing graph.

A node is shared by every task of its sub-topology: per-partition state is reached
through its context (`self.ctx.task`), which the runner fills in before it hands a task
its records. Records are pushed depth-first: `forward(key, value, timestamp_ms)`.

A table's updates can also travel with the value they replaced, as Kafka Streams'
`Change(new, old)` does: `forward_change(key, new, old, ts)`. Operators that need only the
new value take it through `process`; those that subtract what an update replaced (a
re-grouped table's aggregate) override `process_change`.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from ..errors import TopologyError
from ..partitioner import partition_for
from ..serde import Serde
from ..state.store import MISSING
from .context import ProcessorContext, RecordContext


class _Unbound:
    """The context of an operator whose topology is not finalized yet."""

    def __getattr__(self, name: str) -> Any:
        raise TopologyError("an operator ran before its topology was finalized")


_UNBOUND: Any = _Unbound()


class Node:
    __slots__ = ("children", "group", "name", "ctx")

    # Whether the updates this node forwards carry the value they replaced (see
    # forward_change); a table whose changes do not cannot be re-grouped.
    gives_old = False

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

    def forward_change(self, key: Any, new: Any, old: Any, ts: int) -> None:
        for child in self.children:
            child.process_change(key, new, old, ts)

    def process_change(self, key: Any, new: Any, old: Any, ts: int) -> None:
        self.process(key, new, ts)


class TableChanges(Node):
    """Where the updates of a table computed by several nodes (a table-table join's two
    sides) come out: each passes on with the value it replaced."""

    __slots__ = ()
    gives_old = True

    def process_change(self, key, new, old, ts):
        self.forward_change(key, new, old, ts)


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


class SelectKeyNode(Node):
    __slots__ = ("fn",)

    def __init__(self, name: str, fn: Callable[[Any, Any], Any]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, key, value, ts):
        self.forward(self.fn(key, value), value, ts)


class FlatMapNode(Node):
    """Forwards each (key, value) of fn(key, value), in order, at the record's time."""

    __slots__ = ("fn",)

    def __init__(self, name: str, fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, key, value, ts):
        for k, v in self.fn(key, value):
            self.forward(k, v, ts)


class FlatMapValuesNode(Node):
    """Forwards each value of fn(value), in order, under the record's key."""

    __slots__ = ("fn",)

    def __init__(self, name: str, fn: Callable[[Any], Iterable[Any]]) -> None:
        super().__init__(name)
        self.fn = fn

    def process(self, key, value, ts):
        for v in self.fn(value):
            self.forward(key, v, ts)


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


Partitioner = Callable[[str, Any, Any, int], "int | None"]
TopicExtractor = Callable[[Any, Any, RecordContext], str]


class SinkNode(Node):
    """Writes to a topic, partitioned by murmur2 of the key bytes (Kafka's default), or by
    partitioner(topic, key, value, partition count) where it returns a partition (as Kafka
    Streams' StreamPartitioner: None keeps the default)."""

    __slots__ = ("topic", "keys", "values", "partitioner")

    def __init__(self, topic: str, keys: Serde, values: Serde,
                 partitioner: Partitioner | None = None) -> None:
        super().__init__(f"sink:{topic}")
        self.topic, self.keys, self.values = topic, keys, values
        self.partitioner = partitioner

    @property
    def topics(self) -> tuple[str, ...]:
        """Every topic this sink may write to."""
        return (self.topic,)

    def process(self, key, value, ts):
        self.write(self.topic, key, value, ts)

    def write(self, topic: str, key: Any, value: Any, ts: int) -> None:
        kb = None if key is None else self.keys.encode(key)
        vb = None if value is None else self.values.encode(value)
        ctx = self.ctx
        n = ctx.partitions[topic]
        partition = None if self.partitioner is None else self.partitioner(topic, key, value, n)
        if partition is None:
            partition = ctx.task.partition % n if kb is None else partition_for(kb, n)
        elif not 0 <= partition < n:
            raise ValueError(f"the partitioner chose partition {partition} of {topic!r}, "
                             f"which has {n}")
        ctx.writer.add(topic, partition, kb, vb, ts)


class RoutedSinkNode(SinkNode):
    """Writes each record to the topic extractor(key, value, record context) names, one
    of the topics declared with it (their partition counts are known at start-up)."""

    __slots__ = ("extractor", "allowed")

    def __init__(self, extractor: TopicExtractor, topics: Iterable[str], keys: Serde,
                 values: Serde, partitioner: Partitioner | None = None) -> None:
        self.allowed = tuple(dict.fromkeys(topics))
        if not self.allowed:
            raise TopologyError("a topic extractor needs the topics it may choose (topics=...)")
        super().__init__("|".join(self.allowed), keys, values, partitioner)
        # Not "sink:<topic>": the topology view draws those as one topic.
        self.name = f"route:{getattr(extractor, '__name__', 'extractor')}"
        self.extractor = extractor

    @property
    def topics(self) -> tuple[str, ...]:
        return self.allowed

    def process(self, key, value, ts):
        rec = self.ctx.record
        rc = (RecordContext(None, -1, -1, ts, ()) if rec is None
              else RecordContext(rec.topic, rec.partition, rec.offset, ts, tuple(rec.headers)))
        topic = self.extractor(key, value, rc)
        if topic not in self.allowed:
            raise ValueError(f"the topic extractor chose {topic!r}, not one of the topics "
                             f"declared with it {list(self.allowed)}")
        self.write(topic, key, value, ts)


class AggregateNode(Node):
    """Folds each record into its key's value in a table; forwards the new value."""

    __slots__ = ("table", "initial", "add")
    gives_old = True

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
        self.forward_change(key, new, None if old is MISSING else old, ts)


class UpsertNode(Node):
    """Materializes a topic as a table: the latest value per key, None deletes."""

    __slots__ = ("table", "old_values")
    gives_old = True

    def __init__(self, table: str) -> None:
        super().__init__(f"table:{table}")
        self.table = table
        # Reading the value an update replaces costs a store read per record: done only
        # once an operator downstream needs it (set by the DSL).
        self.old_values = False

    def process(self, key, value, ts):
        if key is None:
            raise ValueError(f"{self.table}: a record without a key cannot update a table")
        store = self.ctx.task.stores[self.table]
        if self.old_values:
            old = store.get(key)
            store.put(key, value)
            self.forward_change(key, value, old, ts)
        else:
            store.put(key, value)
            self.forward(key, value, ts)
