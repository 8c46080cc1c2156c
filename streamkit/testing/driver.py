"""An in-process driver for topologies, in the spirit of Kafka Streams' TopologyTestDriver.

    from streamkit.testing.driver import TopologyTestDriver

    with TopologyTestDriver(app) as driver:
        driver.pipe("clicks", "u1", {"page": "/"}, timestamp_ms=1_000)
        assert driver.read_output("click-counts") == [...]
        assert driver.table("clicks-per-user") == {"u1": 1}

It runs the real tasks and operators (streamkit.processing.Task, the nodes, the real
serializers and real RocksDB stores in a temporary directory) with no broker: topics are
in-memory logs, a record piped into a topic is processed at once, depth first, and the
records its processing writes to repartition topics are processed next, by the task of
the partition Kafka's default partitioner (murmur2) gives their key. A commit writes
every store's uncommitted updates to RocksDB, as the runner does (without a changelog).
docs/testing.md is the user guide.
"""
from __future__ import annotations

import tempfile
from collections import deque
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

from aiokafka import TopicPartition
from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.structs import ConsumerRecord

from ..partitioner import partition_for
from ..processing.commit import Commit
from ..processing.context import ProcessorContext
from ..processing.deadletters import dead_letter
from ..processing.nodes import Node, SinkNode
from ..processing.planning import check_copartitioned, external_topics, internal_topics
from ..processing.production import ProductionErrors, Record
from ..processing.task import Task
from ..processing.topology import Topology
from ..serde import Serde
from ..state.global_tables import GlobalTable
from ..state.store import TOMBSTONE, PartitionStore
from ..topics import dead_letter_topic, late_events_topic
from ..windows.aggregate import WindowedAggregate
from ..windows.codec import Agg, WindowedKey
from ..windows.state import NO_TIME

Header = tuple[str, bytes]


class OutputRecord(NamedTuple):
    """A record read from a topic: key and value decoded (raw bytes where the topic has
    no serializer in the topology, as the late-events and dead-letter topics)."""

    key: Any
    value: Any
    timestamp: int
    partition: int
    offset: int
    headers: dict[str, bytes]


class _Outbox:
    """The outbox interface of the runner, appending to the driver's topics at once; a
    record larger than its topic's max_message_bytes waits for the commit, where a worker
    would learn that the broker refused it."""

    def __init__(self, driver: "TopologyTestDriver") -> None:
        self.driver = driver

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None, headers: Sequence[Header] | None = None) -> None:
        if self.driver._too_large(topic, (key, value, timestamp_ms, headers)) is not None:
            self.driver._refused.append((topic, partition, (key, value, timestamp_ms, headers)))
            return
        self.driver._append(topic, partition, key, value, timestamp_ms or 0, headers,
                            produced=True)


class TopologyTestDriver:
    """Runs a streamkit.App's topology in process (see the module docstring).

    partitions: the partition count of the external topics (an int, or a mapping of topic
    to count with "*" for the rest; default 1); internal topics take the count of the
    sub-topology they serve, as in a worker. on_error: "stop" raises a failing record's
    error from pipe(); "continue" sends it to the dead-letter topic as a worker does.
    auto_commit: commit after each pipe() (otherwise call commit()).
    max_message_bytes: {topic: n}: a record whose key, value and headers come to more
    than n bytes is refused, as a broker refuses one larger than the topic's
    max.message.bytes (docs/testing.md); on_production_error: what follows, 'fail' or
    'continue', as STREAMKIT_ON_PRODUCTION_ERROR (a sink's own on_error wins).
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any, *, partitions: int | Mapping[str, int] = 1,
                 state_dir: str | Path | None = None, on_error: str = "stop",
                 auto_commit: bool = True, max_message_bytes: Mapping[str, int] | None = None,
                 on_production_error: str = "fail") -> None:
        if on_error not in ("stop", "continue"):
            raise ValueError(f"on_error must be 'stop' or 'continue', not {on_error!r}")
        topology: Topology = getattr(app, "topology", app)
        topology.finalize()
        self.topology, self.on_error, self.auto_commit = topology, on_error, auto_commit
        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="streamkit-driver-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir) / topology.app_id
        self.late_events_topic = late_events_topic(topology.app_id)
        self.dead_letter_topic = dead_letter_topic(topology.app_id)
        self.partitions = self._size_topics(partitions)
        self.max_message_bytes = dict(max_message_bytes or {})
        self.production_errors = ProductionErrors(on_production_error,
                                                  topology.production_errors,
                                                  self.dead_letter_topic, self.partitions)
        self._refused: list[tuple[str, int, Record]] = []  # until the next commit
        self._logs: dict[tuple[str, int], list[ConsumerRecord]] = {}
        self._order: dict[str, list[ConsumerRecord]] = {}  # per topic, in append order
        self._read: dict[str, int] = {}
        self._inputs: list[ConsumerRecord] = []  # records of source topics, in append order
        self._queue: deque[ConsumerRecord] = deque()
        self._committed: dict[TopicPartition, int] = {}
        self._produced: list[ConsumerRecord] = []  # written by the topology since the commit
        self._retired_late = 0
        self._outbox = _Outbox(self)
        self._serdes = _sink_serdes(topology)
        for g in topology.globals.values():
            self._serdes.setdefault(g.spec.topic, (g.spec.keys, g.spec.values))
        self._windowed = _windowed_nodes(topology)
        self.tasks: dict[tuple[int, int], Task] = {}
        self._globals: dict[tuple[str, int], tuple[GlobalTable, PartitionStore]] = {}
        self._open_tasks()

    # set-up ---------------------------------------------------------------------------
    def _size_topics(self, partitions: int | Mapping[str, int]) -> dict[str, int]:
        """The partition count of every topic, sized as a worker sizes them (planning.py)."""
        topo = self.topology
        per_topic = {} if isinstance(partitions, int) else dict(partitions)
        default = partitions if isinstance(partitions, int) else per_topic.pop("*", 1)
        counts = {spec.name: per_topic.get(spec.name, spec.partitions)
                  for spec in external_topics(topo, default)}
        counts.update((spec.name, spec.partitions) for spec in internal_topics(topo, counts))
        check_copartitioned(topo, counts)
        return counts

    def _open_tasks(self) -> None:
        for table in self.topology.globals.values():
            for tp, store in table.open(self.state_dir, self.partitions[table.spec.topic]).items():
                self._globals[(tp.topic, tp.partition)] = (table, store)
        for g in self.topology.groups():
            n = self.partitions[self.topology.topics_of_group(g)[0]]
            for p in range(n):
                task = Task(self.topology, g, p, self.state_dir)
                task.open()
                self.tasks[(g, p)] = task

    # input ----------------------------------------------------------------------------
    def pipe(self, topic: str, key: Any, value: Any, timestamp_ms: int = 0, *,
             partition: int | None = None, headers: Sequence[Header] | None = None) -> None:
        """Write one record to topic, encoded with the topic's serializers in the
        topology, and process it (and what it leads to) at once."""
        source = self.topology.sources.get(topic)
        serdes = (source.keys, source.values) if source is not None else self._serdes.get(topic)
        if serdes is None:
            raise KeyError(f"no serializer known for topic {topic!r}: use pipe_raw")
        kb = None if key is None else serdes[0].encode(key)
        vb = None if value is None else serdes[1].encode(value)
        self.pipe_raw(topic, kb, vb, timestamp_ms, partition=partition, headers=headers)

    def pipe_raw(self, topic: str, key: bytes | None, value: bytes | None,
                 timestamp_ms: int = 0, *, partition: int | None = None,
                 headers: Sequence[Header] | None = None) -> None:
        """Write one record of raw bytes to topic and process it."""
        n = self.partitions.get(topic, 1)
        if partition is None:
            partition = 0 if key is None else partition_for(key, n)
        elif not 0 <= partition < n:
            raise ValueError(f"topic {topic!r} has {n} partitions, not partition {partition}")
        self._append(topic, partition, key, value, timestamp_ms, headers)
        self._drain()

    def pipe_many(self, topic: str, records: Sequence[tuple[Any, Any, int]]) -> None:
        """pipe() each (key, value, timestamp_ms)."""
        for key, value, ts in records:
            self.pipe(topic, key, value, ts)

    def advance_stream_time(self, timestamp_ms: int) -> None:
        """Move the stream time of every windowed operation on every partition to
        timestamp_ms (if later), closing the windows that ends and emitting their final
        results, as a record with that timestamp reaching each of them would. In a worker
        only records move stream time."""
        ctx = self._bind()
        ctx.record = None
        for (g, _p), task in self.tasks.items():
            ctx.task = task
            for node in self._windowed.get(g, ()):
                node.advance(task, timestamp_ms)
        self._drain()

    def commit(self, offsets: bool = True) -> None:
        """Commit as a worker does, through the same sequence (streamkit.processing.commit):
        every store's uncommitted updates to its changelog topic, then to RocksDB with the
        changelog position, then the input offsets. offsets=False stops before the input
        offsets, as a worker makes its state durable at once for a `?wait_for=` read: a
        crash then replays the records since the last commit of offsets."""
        self._settle_refused()
        commit = Commit(self.topology, self.tasks.values())
        last = {}
        for (topic, partition), records in commit.changelogs.items():
            for record in records:
                refused = self._too_large(topic, record)
                if refused is not None:
                    self.production_errors.letters(topic, partition, record, refused,
                                                   changelog=True)
                self._append(topic, partition, record[0], record[1], 0, None)
            last[(topic, partition)] = len(self._logs[(topic, partition)]) - 1
        commit.written(last)
        self._produced.clear()
        if offsets:
            self._committed.update(commit.offsets)
            commit.done()

    def restart(self, crash: bool = False, torn: float | None = None,
                lose_outputs: bool = False) -> None:
        """Stop every task and start new ones on the same RocksDB directories, as a worker
        restart does (after a commit).

        crash=True: a worker killed during a commit. The input records after the
        committed offsets are processed again; the state updates since the last commit
        are lost, except, with torn=f, the first fraction f of each store's pending
        changelog entries (in changelog order: a changelog write cut short). The records
        the topology wrote since the last commit stay in their topics (the commit's
        outputs were sent), or are lost with lose_outputs=True."""
        if not crash:
            if torn is not None or lose_outputs:
                raise ValueError("torn and lose_outputs describe a crash: pass crash=True")
            self.commit()
        elif torn is not None:
            for task in self.tasks.values():
                task.before_commit()  # the cut-short commit's changelog, in its order
                for store in task.stores.values():
                    items = store.encode_dirty()
                    store.write(items[:int(len(items) * torn)], None)
        if lose_outputs:
            self._drop_produced()
        self._refused.clear()
        for task in self.tasks.values():
            self._retired_late += task.late_records
            task.close()
        self.tasks.clear()
        self._close_globals()
        self._open_tasks()
        if crash:
            committed = self._committed
            self._queue.clear()
            self._queue.extend(r for r in self._inputs
                               if r.offset >= committed.get(TopicPartition(r.topic, r.partition), 0))
        self._drain()

    def committed(self, topic: str, partition: int = 0) -> int | None:
        """The committed offset of an input partition (the next record to process after a
        crash), or None before its first commit."""
        return self._committed.get(TopicPartition(topic, partition))

    # output and state -----------------------------------------------------------------
    def read_output(self, topic: str) -> list[OutputRecord]:
        """The records written to topic since the last read_output of it, decoded."""
        records = self._order.get(topic, [])
        start = self._read.get(topic, 0)
        self._read[topic] = len(records)
        serdes = self._serdes.get(topic)
        return [_decoded(r, serdes) for r in records[start:]]

    def output(self, topic: str) -> list[OutputRecord]:
        """Every record written to topic so far, decoded (does not consume)."""
        serdes = self._serdes.get(topic)
        return [_decoded(r, serdes) for r in self._order.get(topic, [])]

    def table(self, name: str) -> dict[Any, Any]:
        """Every entry of table name, over all partitions, uncommitted updates included;
        a windowed table as {WindowedKey(key, start, end): value} of its open windows."""
        out: dict[Any, Any] = {}
        if name in self.topology.globals:
            for store in self.topology.globals[name].stores:
                out.update(_entries(store))
            return out
        for task in self.tasks.values():
            store = task.stores.get(name)
            if store is not None:
                out.update(_windows(store) if getattr(self.topology.tables[name], "windows", None)
                           else _entries(store))
        return out

    def stream_time(self, table: str, partition: int = 0) -> int | None:
        """The stream time of a windowed table's partition (None before any record)."""
        for task in self.tasks.values():
            if task.partition == partition and table in task.stores:
                ws = task.operator_state.get(table)
                if ws is not None:
                    st = ws.stream_time
                else:
                    clock = task.stores[table].get(("t",))
                    st = None if clock is None else clock.stream_time
                return None if st is None or st == NO_TIME else st
        raise KeyError(f"no partition {partition} of table {table!r}")

    @property
    def late_records(self) -> int:
        """Records dropped as too late for their window, over every task so far."""
        return self._retired_late + sum(t.late_records for t in self.tasks.values())

    # internals ------------------------------------------------------------------------
    def _bind(self) -> ProcessorContext:
        ctx = self.topology.context
        ctx.writer, ctx.partitions = self._outbox, self.partitions
        return ctx

    def _append(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
                ts: int, headers: Sequence[Header] | None, produced: bool = False) -> None:
        log = self._logs.setdefault((topic, partition), [])
        rec = ConsumerRecord(topic, partition, len(log), ts, 0, key, value, None,
                             -1 if key is None else len(key), -1 if value is None else len(value),
                             tuple(headers or ()))
        log.append(rec)
        if produced:
            self._produced.append(rec)
        global_table = self._globals.get((topic, partition))
        if global_table is not None:
            # A worker catches its global tables up before it processes a batch: a record
            # written to a global table's topic is in the table for every record after it.
            table, store = global_table
            table.apply(store, [rec])
        self._order.setdefault(topic, []).append(rec)
        if topic in self.topology.sources:
            self._inputs.append(rec)
            self._queue.append(rec)

    def _too_large(self, topic: str, record: Record) -> MessageSizeTooLargeError | None:
        """The error a broker answers for a record over its topic's max_message_bytes."""
        limit = self.max_message_bytes.get(topic)
        if limit is None:
            return None
        key, value, _ts, headers = record
        size = (len(key or b"") + len(value or b"")
                + sum(len(k) + len(v or b"") for k, v in headers or ()))
        if size <= limit:
            return None
        return MessageSizeTooLargeError(f"{size} bytes, more than the {limit} of {topic}")

    def _settle_refused(self) -> None:
        """The records refused since the last commit, by their topic's production-error
        policy (processing.production), as a worker's commit settles them."""
        while self._refused:
            topic, partition, record = self._refused[0]
            exc = self._too_large(topic, record)
            if exc is None:  # max_message_bytes was raised meanwhile: the retry passes
                self._append(topic, partition, record[0], record[1], record[2] or 0,
                             record[3], produced=True)
            else:
                self._dead_letter_refused(topic, partition, record, exc)
            self._refused.pop(0)

    def _dead_letter_refused(self, topic: str, partition: int, record: Record,
                             exc: BaseException) -> None:
        letters = self.production_errors.letters(topic, partition, record, exc)
        for letter_topic, letter_partition, (key, value, ts, headers) in letters:
            error = self._too_large(letter_topic, (key, value, ts, headers))
            if error is None:
                self._append(letter_topic, letter_partition, key, value, ts or 0, headers,
                             produced=True)
                return
            exc = error
        raise ProductionErrors.refused_letter(letters[-1], exc)

    def _drain(self) -> None:
        self._bind()
        while self._queue:
            rec = self._queue.popleft()
            task = self.tasks[(self.topology.group_of_topic(rec.topic), rec.partition)]
            task.process(TopicPartition(rec.topic, rec.partition), [rec], self._dead_letter,
                         self.on_error)
        if self.auto_commit:
            self.commit()

    def _drop_produced(self) -> None:
        gone = {id(r) for r in self._produced}
        for rec in reversed(self._produced):
            log = self._logs[(rec.topic, rec.partition)]
            if log and log[-1] is rec:
                log.pop()
        for topic, records in self._order.items():
            kept = [r for r in records if id(r) not in gone]
            self._read[topic] = min(self._read.get(topic, 0), len(kept))
            records[:] = kept
        self._inputs = [r for r in self._inputs if id(r) not in gone]
        self._produced.clear()

    def _close_globals(self) -> None:
        for table in self.topology.globals.values():
            table.close()
        self._globals.clear()

    def _dead_letter(self, rec: ConsumerRecord, stage: str, exc: BaseException) -> None:
        topic = self.dead_letter_topic
        dead_letter(self._outbox, topic, self.partitions[topic], rec, stage, exc)

    def close(self) -> None:
        """Close every store and delete the temporary state directory."""
        for task in self.tasks.values():
            task.close()
        self.tasks.clear()
        self._close_globals()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "TopologyTestDriver":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _sink_serdes(topology: Topology) -> dict[str, tuple[Serde, Serde]]:
    out: dict[str, tuple[Serde, Serde]] = {}
    for node in topology.nodes():
        if isinstance(node, SinkNode):
            for topic in node.topics:
                out.setdefault(topic, (node.keys, node.values))
    return out


def _windowed_nodes(topology: Topology) -> dict[int, list[WindowedAggregate]]:
    out: dict[int, list[WindowedAggregate]] = {}
    for topic, source in topology.sources.items():
        stack: list[Node] = [source]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                stack.extend(node.successors())
                if isinstance(node, WindowedAggregate):
                    group = out.setdefault(topology.group_of_topic(topic), [])
                    if node not in group:
                        group.append(node)
    return out


def _decoded(rec: ConsumerRecord, serdes: tuple[Serde, Serde] | None) -> OutputRecord:
    key, value = rec.key, rec.value
    if serdes is not None:
        key = None if key is None else serdes[0].decode(key)
        value = None if value is None else serdes[1].decode(value)
    return OutputRecord(key, value, rec.timestamp, rec.partition, rec.offset, dict(rec.headers))


def _entries(store: PartitionStore) -> dict[Any, Any]:
    out = dict(store.items())
    for entry in store.dirty.items():
        k, v = store.decoded(*entry)  # a join buffer's entries may be put encoded
        if v is TOMBSTONE:
            out.pop(k, None)
        else:
            out[k] = v
    return out


def _windows(store: PartitionStore) -> dict[WindowedKey, Any]:
    raw = {store.keys.decode(kb): vb for kb, vb in store.raw_items(prefix=b"w")}
    rows = {k: store.values.decode(vb) for k, vb in raw.items()}
    rows.update((k, v) for k, v in store.dirty.items() if len(k) == 3)
    return {WindowedKey(*k): v.value for k, v in rows.items()
            if type(v) is Agg and not v.closed}
