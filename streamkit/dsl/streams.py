"""The stream DSL: what users write to declare a processing graph.

Functions passed to operators take the record value (`map`, `flat_map`, `select_key` and
`foreach` take key and value), run once per record on the batched path, and must not block.

An operator that may change the key (`map`, `flat_map`, `select_key`) marks the stream,
as in Kafka Streams: a later `group_by_key` or `join` first sends it through a
repartition topic, so that records of one key meet in one partition.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, cast

from ..errors import TopologyError
from ..joins.foreign import foreign_key_join
from ..joins.nodes import GlobalJoinNode, StreamTableJoinNode, TableTableJoinNode, check_how
from ..joins.stream_stream import stream_stream_join
from ..processing.builder import Position
from ..processing.nodes import (
    AggregateNode,
    BranchNode,
    FilterNode,
    FlatMapNode,
    FlatMapValuesNode,
    MapNode,
    MapValuesNode,
    Node,
    Partitioner,
    PeekNode,
    RoutedSinkNode,
    SelectKeyNode,
    SinkNode,
    SourceNode,
    TableChanges,
    TopicExtractor,
    UpsertNode,
)
from ..processing.tables import (
    ChangeSerde,
    RegroupNode,
    SuppressNode,
    TableAggregateNode,
    TableFilterNode,
    TableMapValuesNode,
)
from ..processing.topology import Group, InternalTopic, TableSpec, Topology
from ..serde import Serde, SerdeSpec, resolve
from ..state.global_tables import GlobalSpec, GlobalTable
from ..windows.codec import WindowedKeySerde
from ..windows.sink import WindowedSink
from ..windows.specs import Session, Sliding, WindowSpec
from ..windows.table import WINDOW_TYPES, WindowedTableSpec, add_windowed_table, windowed_node


class Stream:
    """An unbounded sequence of (key, value, timestamp) records."""

    def __init__(self, pos: Position, rekeyed: bool = False) -> None:
        self._pos = pos
        # The key may have changed since the records were partitioned (map, flat_map,
        # select_key): a grouping or join by key repartitions first.
        self._rekeyed = rekeyed

    keys = property(lambda self: self._pos.keys, doc="the serializer of the keys")
    values = property(lambda self: self._pos.values, doc="the serializer of the values")
    _topology = property(lambda self: self._pos.topology)
    _group = property(lambda self: self._pos.group)

    def _then(self, node: Node, keys: Serde | None = None, values: Serde | None = None,
              rekeys: bool = False) -> "Stream":
        return Stream(self._pos.then(node, keys, values), self._rekeyed or rekeys)

    def _through(self, name: str, keys: Serde | None = None, partitions: int | None = None,
                 partitioner: Partitioner | None = None,
                 sized_by: Group | None = None) -> "Stream":
        """This stream written to the repartition topic `<app>-<name>-repartition` and read
        back: a new sub-topology, each record in the partition of its key. The topic has
        `partitions`, or the count of sub-topology `sized_by` (a join's other side), or
        that of this stream's own."""
        topic = self._topology.repartition_topic(name)
        if topic in self._topology.sources:
            raise TopologyError(f"a repartition named {name!r} already exists")
        keys = keys or self.keys
        self._then(SinkNode(topic, keys, self.values, partitioner))
        self._topology.internal[topic] = InternalTopic(
            topic, compact=False, partitions_from=sized_by or self._group, partitions=partitions)
        source = SourceNode(topic, keys, self.values, None, None)
        source.group = Group()
        self._topology.sources[topic] = source
        return Stream(self._pos.at(source, source.group, keys))

    def _by_key(self, name: str | None, what: str, sized_by: Group | None = None) -> "Stream":
        """This stream, repartitioned through `name` if its key may have changed."""
        if not self._rekeyed:
            return self
        if name is None:
            raise TopologyError(f"the key may have changed (map, flat_map or select_key): "
                                f"{what} repartitions the stream first and needs name=...")
        return self._through(name, sized_by=sized_by)

    def map_values(self, fn: Callable[[Any], Any], values: SerdeSpec = None) -> "Stream":
        """A stream of fn(value), same key."""
        return self._then(MapValuesNode(f"map_values:{_name(fn)}", fn),
                          values=resolve(values) if values else None)

    def map(self, fn: Callable[[Any, Any], tuple[Any, Any]], keys: SerdeSpec = None,
            values: SerdeSpec = None) -> "Stream":
        """A stream of fn(key, value) -> (new key, new value). The record stays in its
        partition; a later group_by_key or join repartitions it by the new key."""
        return self._then(MapNode(f"map:{_name(fn)}", fn), resolve(keys) if keys else None,
                          resolve(values) if values else None, rekeys=True)

    def flat_map(self, fn: Callable[[Any, Any], Iterable[tuple[Any, Any]]],
                 keys: SerdeSpec = None, values: SerdeSpec = None) -> "Stream":
        """Each (key, value) pair of fn(key, value), in order, at the record's timestamp (none
        for an empty iterable). Marks the stream for repartitioning as map does."""
        return self._then(FlatMapNode(f"flat_map:{_name(fn)}", fn),
                          resolve(keys) if keys else None, resolve(values) if values else None,
                          rekeys=True)

    def flat_map_values(self, fn: Callable[[Any], Iterable[Any]],
                        values: SerdeSpec = None) -> "Stream":
        """Each value of fn(value), in order, under the record's key and timestamp."""
        return self._then(FlatMapValuesNode(f"flat_map_values:{_name(fn)}", fn),
                          values=resolve(values) if values else None)

    def select_key(self, fn: Callable[[Any, Any], Any], keys: SerdeSpec = None) -> "Stream":
        """The records with key fn(key, value), value unchanged. Marks the stream for
        repartitioning as map does."""
        return self._then(SelectKeyNode(f"select_key:{_name(fn)}", fn),
                          resolve(keys) if keys else None, rekeys=True)

    def foreach(self, fn: Callable[[Any, Any], None]) -> None:
        """Calls fn(key, value) for each record; ends the stream. Calls are at-least-once:
        records since the last commit are processed again after a crash."""
        self._then(PeekNode(f"foreach:{_name(fn)}", fn))

    def repartition(self, partitions: int | None = None, *, name: str,
                    keys: SerdeSpec = None, partitioner: Partitioner | None = None) -> "Stream":
        """This stream through the repartition topic `<app>-<name>-repartition` (with
        `partitions` partitions, or as many as this stream's sources), each record in the
        partition of its key, or of partitioner(topic, key, value, count). The stream
        after it is a sub-topology of its own, no longer marked for repartitioning."""
        if partitions is not None and partitions < 1:
            raise TopologyError(f"a repartition needs at least one partition, not {partitions}")
        return self._through(name, resolve(keys) if keys else None, partitions, partitioner)

    def filter(self, pred: Callable[[Any], bool]) -> "Stream":
        """The records whose value satisfies pred."""
        return self._then(FilterNode(f"filter:{_name(pred)}", pred))

    def peek(self, fn: Callable[[Any, Any], None]) -> "Stream":
        """Calls fn(key, value) for each record and passes the record on."""
        return self._then(PeekNode(f"peek:{_name(fn)}", fn))

    def branch(self, *preds: Callable[[Any], bool], default: bool = False) -> list["Stream"]:
        """One stream per predicate: each record goes to the first that holds. With
        default=True a last stream gets the records no predicate took; otherwise they drop."""
        if not preds:
            raise TopologyError("branch needs at least one predicate")
        node = BranchNode(f"branch:{len(preds)}", list(preds))
        self._then(node)
        outs = [Stream(self._pos.at(b), self._rekeyed) for b in node.branches]
        if default:
            outs.append(Stream(self._pos.at(node.default), self._rekeyed))
        return outs

    def merge(self, *others: "Stream") -> "Stream":
        """One stream of the records of this and the other streams."""
        node = Node("merge")
        out = self._then(node, rekeys=any(o._rekeyed for o in others))
        for other in others:
            other._then(node)
            self._group.union(other._group)
        return out

    def to(self, topic: str | TopicExtractor, keys: SerdeSpec = None, values: SerdeSpec = None,
           *, partitioner: Partitioner | None = None, topics: Iterable[str] = (),
           on_error: str | None = None) -> None:
        """Writes each record to topic, partitioned by murmur2 of the key bytes, or by
        partitioner(topic, key, value, partition count) where it returns a partition
        number (None: the default).

        topic may be a topic extractor instead: extractor(key, value, record_context)
        returns the topic of each record (record_context: a streamkit.RecordContext of
        the input record). It must be one of `topics`, declared with it so that a worker
        knows their partition counts at start-up; another name sends the record to the
        dead letters (or stops the worker with the source's on_error="stop").

        on_error: what a record the broker refuses (too large for the topic...) leads
        to: 'fail' (the worker stops before committing its input) or 'continue' (the
        record goes to the dead letters); default STREAMKIT_ON_PRODUCTION_ERROR."""
        keys_serde = resolve(keys) if keys else self.keys
        values_serde = resolve(values) if values else self.values
        sink: SinkNode
        if callable(topic):
            sink = RoutedSinkNode(topic, topics, keys_serde, values_serde, partitioner)
        else:
            if topics:
                raise TopologyError("topics= goes with a topic extractor, not a topic name")
            sink = SinkNode(topic, keys_serde, values_serde, partitioner)
        if on_error is not None:
            self._topology.set_production_error(sink.topics, on_error)
        self._topology.sinks.update(sink.topics)
        self._then(sink)

    def group_by(self, key_fn: Callable[[Any], Any], name: str, keys: SerdeSpec = "str") -> "GroupedStream":
        """Re-keys by key_fn(value) through the repartition topic `<app>-<name>-repartition`,
        so that records with the same new key meet in one partition."""
        key_serde = resolve(keys)
        rekey = self._then(SelectKeyNode(f"select_key:{_name(key_fn)}", lambda k, v: key_fn(v)),
                           keys=key_serde)
        return GroupedStream(rekey._through(name, key_serde))

    def group_by_key(self) -> "GroupedStream":
        """Groups by the current key: without repartitioning, unless the key may have
        changed (map, flat_map, select_key), in which case the aggregate repartitions
        through `<app>-<table name>-repartition` first."""
        return GroupedStream(self)

    def join(self, table: "Table", joiner: Callable[[Any, Any], Any], how: str = "inner",
             *, name: str | None = None) -> "Stream":
        """Each record with the table's current value for its key: joiner(value, table_value).
        how='left' keeps records whose key is absent (table_value None). The stream and the
        table must be co-partitioned (same key, same partition count: checked at start-up).
        A stream whose key may have changed is first repartitioned through
        `<app>-<name>-repartition`, with the table's partition count."""
        check_how(how, ("inner", "left"))
        stream = self._by_key(name, "a join", sized_by=table.spec.group)
        stream._group.union(table.spec.group)
        return stream._then(StreamTableJoinNode(table.name, joiner, how))  # type: ignore[arg-type]

    def join_global(self, table: "GlobalTable", key: Callable[[Any], Any],
                    joiner: Callable[[Any, Any], Any], how: str = "inner") -> "Stream":
        """Each record with the global table's value for key(value) (a foreign key);
        how='left' keeps records with no match. The lookup sees every update of the
        global table that was written before the record was fetched."""
        check_how(how, ("inner", "left"))
        self._topology.global_readers.append(self._group)
        return self._then(GlobalJoinNode(table.name, table.get, key, joiner, how))  # type: ignore[arg-type]

    def join_window(self, other: "Stream", windows: Any, joiner: Callable[[Any, Any], Any],
                    how: str = "inner", *, name: str, values: SerdeSpec = "json",
                    semantics: str = "streamkit") -> "Stream":
        """Stream-stream windowed join: each record of this stream at time t with each record
        of `other` of the same key with time in [t - windows.before_ms, t + windows.after_ms]
        (`windows` a streamkit.JoinWindows), as joiner(this_value, other_value), at the
        later of the two times. how='left' also gives joiner(value, None) for a record of
        this stream that joined nothing, once its window has closed (grace included);
        how='outer' does so for both streams (joiner(None, other_value)). Both streams are
        buffered in changelogged window stores `<name>-left` and `<name>-right`; records
        more than grace_ms behind their stream's stream time go to late events. The
        streams must be co-partitioned (same key, same partition count: checked at
        start-up). semantics="kafka" gives the records Kafka Streams gives instead (one
        stream time for both streams, no late records, null results as Kafka Streams
        emits them: results then depend on how the streams interleave). See
        docs/joins.md.
        A stream whose key may have changed is first repartitioned through
        `<app>-<name>-left-repartition` (`-right-` for other)."""
        if self._topology.finalized:
            raise TopologyError("the topology is already running; declare streams at import time")
        # A side repartitioned alone takes the partition count of the other side.
        left = self._by_key(f"{name}-left", "a join", None if other._rekeyed else other._group)
        right = other._by_key(f"{name}-right", "a join", None if self._rekeyed else self._group)
        return Stream(stream_stream_join(left._pos, right._pos, windows, joiner, how, name,
                                         values, semantics))


class GroupedStream:
    """Records grouped by key, ready to aggregate into a table."""

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    @property
    def stream(self) -> Stream:
        """The grouped records as a stream (each in the partition of its key)."""
        if self._stream._rekeyed:
            raise TopologyError("the key may have changed: the records are grouped only by "
                                "an aggregate, which repartitions them")
        return self._stream

    def _keyed(self, name: str) -> Stream:
        """The records in the partitions of their keys, for aggregate `name` (repartitioned
        through `<app>-<name>-repartition` if the key may have changed)."""
        return self._stream._by_key(name, "an aggregate")

    def aggregate(self, name: str, initial: Any, add: Callable[[Any, Any], Any],
                  values: SerdeSpec = "json", expose: bool = True) -> "Table":
        """Table `name`: per key, add(aggregate, value) folded from initial (a value, or a
        callable that returns a fresh one)."""
        s = self._keyed(name)
        spec = s._topology.add_table(name, s.keys, resolve(values), s._group, expose)
        node = AggregateNode(name, initial, add)
        return Table(spec, s._then(node, values=spec.values))

    def count(self, name: str, expose: bool = True) -> "Table":
        """Table `name`: the number of records per key."""
        return self.aggregate(name, 0, lambda acc, _v: acc + 1, expose=expose)

    def reduce(self, name: str, fn: Callable[[Any, Any], Any], values: SerdeSpec = "json",
               expose: bool = True) -> "Table":
        """Table `name`: per key, fn(previous, value); the first value is kept as it is."""
        first = object()
        return self.aggregate(name, first, lambda acc, v: v if acc is first else fn(acc, v),
                              values, expose)

    def cogroup(self, add: Callable[[Any, Any], Any]) -> "CogroupedStream":
        """The start of one aggregate fed by several grouped streams (Kafka Streams'
        cogroup): this stream's records fold in with add(aggregate, value); add others
        with `.cogroup(grouped, add)`, then `.aggregate(name, initial)`."""
        return CogroupedStream([(self, add)])

    def windowed_by(self, windows: WindowSpec) -> "WindowedStream":
        """Groups records by key and window (Tumbling, Hopping, Sliding or Session, from
        streamkit.windows), on event time: the source's timestamp extractor."""
        if not isinstance(windows, WINDOW_TYPES):
            raise TopologyError(f"windowed_by takes Tumbling, Hopping, Sliding or Session, "
                                f"not {windows!r}")
        return WindowedStream(self, windows)


class CogroupedStream:
    """Several grouped streams, each with its own adder, folding into one table."""

    def __init__(self, inputs: list[tuple[GroupedStream, Callable[[Any, Any], Any]]]) -> None:
        self._inputs = inputs

    def cogroup(self, grouped: GroupedStream, add: Callable[[Any, Any], Any]) -> "CogroupedStream":
        """Adds grouped's records, folded in with add(aggregate, value)."""
        if any(g is grouped for g, _ in self._inputs):
            raise TopologyError("a grouped stream can be cogrouped once")
        return CogroupedStream([*self._inputs, (grouped, add)])

    def aggregate(self, name: str, initial: Any, values: SerdeSpec = "json",
                  expose: bool = True) -> "Table":
        """Table `name` (one store, one changelog): per key, each record of each input
        folded in with that input's adder, from initial (a value, or a callable returning
        a fresh one), in the order the records are processed. The inputs must be
        co-partitioned (checked at start-up); one whose key may have changed is first
        repartitioned through `<app>-<name>-<i>-repartition` (i its place, from 0)."""
        streams, group = self._keyed(name)
        first = streams[0]
        spec = first._topology.add_table(name, first.keys, resolve(values), group, expose)
        merged = TableChanges(f"cogroup:{name}")
        for stream, (_g, add) in zip(streams, self._inputs):
            stream._pos.then(AggregateNode(name, initial, add)).node.children.append(merged)
        return Table(spec, Stream(first._pos.at(merged, group, values=spec.values)))

    def windowed_by(self, windows: WindowSpec) -> "WindowedCogroupedStream":
        """The cogroup per key and window (Tumbling, Hopping or Session), on event time."""
        if isinstance(windows, Sliding) or not isinstance(windows, WINDOW_TYPES):
            # A sliding window is built again from the records it buffered, with one adder.
            raise TopologyError(f"a cogroup is windowed by Tumbling, Hopping or Session, "
                                f"not {windows!r}")
        return WindowedCogroupedStream(self, windows)

    def _keyed(self, name: str) -> tuple[list[Stream], Group]:
        """Each input in the partitions of its keys, and the sub-topology they make."""
        streams = [g._keyed(f"{name}-{i}") for i, (g, _add) in enumerate(self._inputs)]
        group = streams[0]._group
        for stream in streams[1:]:
            group = group.union(stream._group)
        return streams, group


class WindowedCogroupedStream:
    """A cogroup per key and window (Kafka Streams' TimeWindowedCogroupedKStream and
    SessionWindowedCogroupedKStream)."""

    def __init__(self, cogrouped: CogroupedStream, windows: WindowSpec) -> None:
        self._cogrouped, self.windows = cogrouped, windows

    def aggregate(self, name: str, initial: Any, *,
                  merge: Callable[[Any, Any], Any] | None = None, emit: str = "update",
                  to: str | None = None, values: SerdeSpec = "json",
                  expose: bool = True) -> "WindowedTable":
        """Windowed table `name` (one store, one changelog): per key and window, each
        record of each input folded in with that input's adder, from initial; session
        windows also need merge(agg1, agg2). The inputs share the window store, its stream
        time (the largest event time of any input) and its grace; emit and to as
        WindowedStream.aggregate."""
        if emit not in ("update", "final"):
            raise TopologyError(f"emit must be 'update' or 'final', not {emit!r}")
        streams, group = self._cogrouped._keyed(name)
        first = streams[0]
        aggregates = resolve(values)
        topo = first._topology
        spec = add_windowed_table(topo, name, first.keys, aggregates, first.values, group,
                                  self.windows, expose)
        merged = Node(f"cogroup:{name}")
        for stream, (_g, add) in zip(streams, self._cogrouped._inputs):
            node = windowed_node(topo, name, self.windows, initial, add, merge, emit)
            stream._pos.then(node).node.children.append(merged)
        changes = Stream(first._pos.at(merged, group, WindowedKeySerde(first.keys), aggregates))
        if to is not None:
            topo.sinks.add(to)
            changes._then(WindowedSink(to, changes.keys, aggregates))
        return WindowedTable(spec, changes)


class GroupedTable:
    """A table's entries grouped by a new key, ready to aggregate with an adder and a
    subtractor (Kafka Streams' KGroupedTable)."""

    def __init__(self, changes: Stream) -> None:
        self._changes = changes  # (new, old) pairs, each in the partition of its group

    def aggregate(self, name: str, initial: Any, add: Callable[[Any, Any], Any],
                  subtract: Callable[[Any, Any], Any], values: SerdeSpec = "json",
                  expose: bool = True) -> "Table":
        """Table `name`: per group, add(aggregate, value) for a value that joins the group
        (from initial, a value or a callable returning a fresh one, when the group has no
        aggregate) and subtract(aggregate, value) for one that leaves it. A value that
        changes within its group is subtracted, then added: one update of the result."""
        return self._table(name, initial, add, subtract, False, values, expose)

    def count(self, name: str, expose: bool = True) -> "Table":
        """Table `name`: the number of entries per group (a group emptied keeps 0)."""
        return self.aggregate(name, 0, lambda n, _v: n + 1, lambda n, _v: n - 1, expose=expose)

    def reduce(self, name: str, add: Callable[[Any, Any], Any],
               subtract: Callable[[Any, Any], Any], values: SerdeSpec = "json",
               expose: bool = True) -> "Table":
        """Table `name`: per group, add(aggregate, value) and subtract(aggregate, value);
        the first value of a group with no aggregate is kept as it is. A subtract that
        returns None deletes the group."""
        return self._table(name, None, add, subtract, True, values, expose)

    def _table(self, name: str, initial: Any, add: Callable[[Any, Any], Any],
               subtract: Callable[[Any, Any], Any], reduce: bool, values: SerdeSpec,
               expose: bool) -> "Table":
        c = self._changes
        spec = c._topology.add_table(name, c.keys, resolve(values), c._group, expose)
        # Per origin partition, the last change pair applied: what makes replays exact.
        positions = c._topology.add_table(f"{name}-positions", resolve("str"),
                                          resolve("json"), c._group, exposed=False)
        node = TableAggregateNode(name, positions.name, initial, add, subtract, reduce)
        return Table(spec, c._then(node, values=spec.values))


class WindowedStream:
    """Records grouped by key and window, ready to aggregate into a windowed table."""

    def __init__(self, grouped: GroupedStream, windows: WindowSpec) -> None:
        self._grouped, self.windows = grouped, windows

    def aggregate(self, name: str, initial: Any, add: Callable[[Any, Any], Any], *,
                  merge: Callable[[Any, Any], Any] | None = None, emit: str = "update",
                  to: str | None = None, values: SerdeSpec = "json",
                  expose: bool = True) -> "WindowedTable":
        """Windowed table `name`: per key and window, add(aggregate, value) folded from
        initial (a value, or a callable returning a fresh one). Session windows also need
        merge(agg1, agg2): as in Kafka Streams, a record that reaches existing sessions
        makes a new one, merge(...merge(initial, session1)..., sessionN), then add.

        emit="update" forwards each window's new value on every change; emit="final"
        forwards one result per window when it closes (end + grace reached by stream
        time). With `to`, the results are written to that topic with a JSON key
        {"key", "start", "end"}, in the partition of the record key; `changes()` is the
        same stream."""
        if emit not in ("update", "final"):
            raise TopologyError(f"emit must be 'update' or 'final', not {emit!r}")
        s = self._grouped._keyed(name)
        aggregates = resolve(values)
        node = windowed_node(s._topology, name, self.windows, initial, add, merge, emit)
        spec = add_windowed_table(s._topology, name, s.keys, aggregates, s.values, s._group,
                                  self.windows, expose)
        changes = s._then(node, WindowedKeySerde(s.keys), aggregates)
        if to is not None:
            s._topology.sinks.add(to)
            changes._then(WindowedSink(to, changes.keys, aggregates))
        return WindowedTable(spec, changes)

    def count(self, name: str, *, emit: str = "update", to: str | None = None,
              expose: bool = True) -> "WindowedTable":
        """Windowed table `name`: the number of records per key and window."""
        return self.aggregate(name, 0, lambda n, _v: n + 1, merge=self._merge(lambda a, b: a + b),
                              emit=emit, to=to, expose=expose)

    def reduce(self, name: str, fn: Callable[[Any, Any], Any], *, emit: str = "update",
               to: str | None = None, values: SerdeSpec = "json",
               expose: bool = True) -> "WindowedTable":
        """Windowed table `name`: per key and window, fn(previous, value) with the first
        value kept as it is (fn also merges two sessions)."""
        first = object()
        # A merged session starts from the initial value (as in Kafka Streams), so the
        # merge skips it as the add does.
        return self.aggregate(name, lambda: first,
                              lambda acc, v: v if acc is first else fn(acc, v),
                              merge=self._merge(lambda a, b: b if a is first else fn(a, b)),
                              emit=emit, to=to, values=values, expose=expose)

    def _merge(self, fn: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any] | None:
        return fn if isinstance(self.windows, Session) else None


class WindowedTable:
    """A changelog-backed table of windows, partitioned by the record key alone. Read it
    with streamkit.windows.fetch_window / fetch_windows."""

    def __init__(self, spec: WindowedTableSpec, changes: Stream) -> None:
        self.spec = spec
        self._changes = changes

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def windows(self) -> WindowSpec:
        return cast(WindowSpec, self.spec.windows)  # a windowed table's spec has them

    def changes(self) -> Stream:
        """A stream of (WindowedKey, value): every update with emit="update", one final
        result per window with emit="final" (a None value: a session merged away)."""
        return self._changes


class Table:
    """A changelog-backed RocksDB table, partitioned like the stream that feeds it."""

    def __init__(self, spec: TableSpec, changes: Stream) -> None:
        self.spec = spec
        self._changes = changes

    @property
    def name(self) -> str:
        return self.spec.name

    def changes(self) -> Stream:
        """A stream of (key, new value) for every update of the table."""
        return self._changes

    def to_stream(self) -> Stream:
        """The table's changelog stream, as Kafka Streams' KTable.toStream: (key, new value)
        for every update, (key, None) for a deletion."""
        return self._changes

    def filter(self, pred: Callable[[Any], bool], name: str, expose: bool = True) -> "Table":
        """Table `name`: the entries whose value satisfies pred(value). An update that
        fails pred deletes the key (forwarding a tombstone if the key was there), as
        Kafka Streams' KTable.filter does."""
        c = self._changes
        spec = c._topology.add_table(name, c.keys, c.values, c._group, expose)
        return Table(spec, c._then(TableFilterNode(name, pred)))

    def map_values(self, fn: Callable[[Any], Any], name: str, values: SerdeSpec = "json",
                   expose: bool = True) -> "Table":
        """Table `name`: fn(value) for every entry, same key; a deleted entry is deleted (fn
        is not called with None)."""
        c = self._changes
        spec = c._topology.add_table(name, c.keys, resolve(values), c._group, expose)
        return Table(spec, c._then(TableMapValuesNode(name, fn), values=spec.values))

    def suppress(self, until_time_limit_ms: int, *, name: str,
                 max_records: int | None = None, max_bytes: int | None = None,
                 shut_down_when_full: bool = False) -> "SuppressedTable":
        """The table's updates rate-limited per key, as Kafka Streams' KTable.suppress(
        untilTimeLimit(...)): an update waits until stream time (the largest timestamp
        seen here) reaches its arrival time + until_time_limit_ms, and goes on as its key's
        latest value then; later updates of a waiting key replace it without restarting
        its wait. Past max_records waiting keys or max_bytes of waiting entries (key and
        entry as the buffer table holds them), the oldest go on at once (emitEarlyWhenFull),
        or with shut_down_when_full the error SuppressBufferFull escapes processing
        (shutDownWhenFull: STREAMKIT_ON_UNCAUGHT_ERROR decides). The waiting updates are
        kept in hidden tables `<name>` and `<name>-clock` (changelogged: a restart keeps
        them and the stream time)."""
        if until_time_limit_ms < 0 or any(n is not None and n < 1
                                           for n in (max_records, max_bytes)):
            raise TopologyError("suppress needs a time limit >= 0, and max_records and "
                                "max_bytes >= 1")
        if shut_down_when_full and max_records is None and max_bytes is None:
            raise TopologyError("shut_down_when_full needs a bound: max_records or max_bytes")
        c = self._changes
        topo = c._topology
        buffer = topo.add_table(name, c.keys, ChangeSerde(c.values), c._group, exposed=False)
        clock = topo.add_table(f"{name}-clock", resolve("str"), resolve("json"), c._group,
                               exposed=False)
        if isinstance(c._pos.node, UpsertNode):
            c._pos.node.old_values = True
        node = SuppressNode(buffer.name, clock.name, until_time_limit_ms, max_records,
                            max_bytes, shut_down_when_full)
        return SuppressedTable(c._then(node))

    def group_by(self, selector: Callable[[Any, Any], tuple[Any, Any]], name: str,
                 keys: SerdeSpec = "str", values: SerdeSpec = None) -> "GroupedTable":
        """Re-groups the table by selector(key, value) -> (new key, new value), through the
        repartition topic `<app>-<name>-repartition`, as Kafka Streams' KTable.groupBy:
        each update sends the subtraction of the old value from its group and the addition
        of the new value to its group, so that the aggregate stays right under updates
        and deletes (a deletion only subtracts). A pair with a None key or value is
        skipped. The aggregate's subtractor undoes its adder."""
        c = self._changes
        source = c._pos.node
        if not source.gives_old:
            raise TopologyError(f"table {self.name!r} does not keep the value an update "
                                f"replaces, which group_by needs")
        if isinstance(source, UpsertNode):
            source.old_values = True
        key_serde = resolve(keys)
        value_serde = resolve(values) if values else c.values
        regroup = Stream(c._pos.then(RegroupNode(f"group_by:{_name(selector)}", selector),
                                     key_serde, ChangeSerde(value_serde)))
        return GroupedTable(regroup._through(name))

    def join_foreign(self, other: "Table", name: str, fk: Callable[[Any], Any],
                     joiner: Callable[[Any, Any], Any], how: str = "inner",
                     values: SerdeSpec = "json", expose: bool = True) -> "Table":
        """Table `name`, keyed like this table: joiner(value, other[fk(value)]), updated when
        either side changes; a changed foreign key retracts the old match. how='left' keeps
        left values with no match (None on the right). Internal topics
        `<app>-<name>-subscription` and `<app>-<name>-response` carry the requests."""
        spec, pos = foreign_key_join(self._changes._pos, self.spec, other._changes._pos,
                                     other.spec, name, fk, joiner, how, values, expose)
        return Table(spec, Stream(pos))

    def join(self, other: "Table", name: str, joiner: Callable[[Any, Any], Any],
             how: str = "inner", values: SerdeSpec = "json", expose: bool = True) -> "Table":
        """Table `name`: per key, joiner(left, right), updated whenever either side changes.
        inner: both sides present; left: the left present (right may be None); outer: either
        (the other None). A key whose join no longer holds is deleted."""
        how = check_how(how, ("inner", "left", "outer"))
        left, right = self._changes, other._changes
        group = left._group.union(right._group)
        spec = left._topology.add_table(name, left.keys, resolve(values), group, expose)
        merged = TableChanges(f"join-table:{name}")
        left._pos.then(TableTableJoinNode(name, other.name, joiner, how, True)).node.children.append(merged)
        right._pos.then(TableTableJoinNode(name, self.name, joiner, how, False)).node.children.append(merged)
        return Table(spec, Stream(left._pos.at(merged, group, values=spec.values)))


class SuppressedTable:
    """A table's updates, rate-limited by Table.suppress."""

    def __init__(self, changes: Stream) -> None:
        self._changes = changes

    def to_stream(self) -> Stream:
        """(key, latest value) for each update that goes on, (key, None) for a deletion."""
        return self._changes

    changes = to_stream


def source_stream(topology: Topology, topic: str, keys: SerdeSpec, values: SerdeSpec,
                  timestamp: Callable[[Any], int] | None, on_error: str | None) -> Stream:
    """The stream of a topic (one source node per topic, shared by its streams)."""
    source = topology.sources.get(topic)
    if source is None:
        source = SourceNode(topic, resolve(keys, "str"), resolve(values), timestamp, on_error)
        source.group = Group()
        topology.sources[topic] = source
    return Stream(Position(topology, source, source.group, source.keys, source.values))


def table_from_topic(topology: Topology, name: str, topic: str, keys: SerdeSpec,
                     values: SerdeSpec, expose: bool = True) -> Table:
    """Table `name`: the latest value of each key of topic (a None value deletes the key)."""
    stream = source_stream(topology, topic, keys, values, None, None)
    spec = topology.add_table(name, stream.keys, stream.values, stream._group, expose)
    return Table(spec, stream._then(UpsertNode(name)))


def global_table(topology: Topology, name: str, topic: str, keys: SerdeSpec, values: SerdeSpec,
                 expose: bool = True) -> GlobalTable:
    """Global table `name`: every worker holds every key of topic (latest value per key)."""
    if name in topology.tables or name in topology.globals:
        raise TopologyError(f"a table named {name!r} already exists")
    table = GlobalTable(GlobalSpec(name, topic, resolve(keys, "str"), resolve(values), expose))
    topology.globals[name] = table
    return table


def _name(fn: Callable) -> str:
    return getattr(fn, "__name__", type(fn).__name__)
