"""The batched processing path, run as a service inside the Faust worker.

Why not Faust's stream layer: every record there crosses from Faust's consumer thread
to the conductor to an agent's stream, one task hand-off at a time, which caps an agent
near 10 k records/s (docs/architecture.md). Here one aiokafka consumer in the worker's
event loop fetches batches, each batch is pushed through the operator graph in a plain
loop, table updates stay in a write-back cache, and a commit writes the changelog once
per changed key, waits for every acknowledgement, applies the updates to RocksDB with
their changelog offset, and only then commits the input offsets (at-least-once).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service

from ..config import Settings
from ..joins.global_table import GlobalTables
from ..errors import TopologyError
from ..state.restore import restore, seek_to_checkpoint
from ..state.store import PartitionStore
from ..registry import REGISTRY_TOPIC, registry_record
from ..serde import dumps
from ..state.ownership import Ownership
from ..topics import TopicAdmin, TopicSpec, dead_letter_topic, late_events_topic
from .assignor import ClusterMap, TaskAssignor, TaskId
from .nodes import current
from .outbox import Outbox
from .task import Task
from .topology import Topology

log = logging.getLogger(__name__)

PRODUCER_BATCH_BYTES = 512 * 1024
# How long records that look up global tables wait for those tables to catch up.
GLOBAL_CATCH_UP_TIMEOUT_S = 10.0
COMMIT_RETRY_S = 0.5  # pause before a commit that a broker failed is tried again


class Runner(Service):
    """Consumes the topology's sources, runs its tasks, and commits."""

    def __init__(self, app_id: str, topology: Topology, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_id, self.topology, self.settings = app_id, topology, settings
        self.group_id = f"{app_id}-processors"
        self.state_dir = Path(settings.data_dir) / app_id
        self.dead_letter_topic = dead_letter_topic(app_id)
        self.tasks: dict[TaskId, Task] = {}
        self.standbys: dict[TaskId, dict[TopicPartition, PartitionStore]] = {}
        self.cluster = ClusterMap()
        self.ready = False
        self.failed: BaseException | None = None
        self.counters = {"records": 0, "dead_letters": 0, "commits": 0, "restored": 0,
                         "late_records_retired": 0, "commit_failures": 0}
        self.records_in: Counter[str] = Counter()       # per source topic
        self.dead_letters_by_topic: Counter[str] = Counter()
        self.positions: dict[TopicPartition, int] = {}  # next offset to process, per input
        self.batch_seconds: list[float] = []            # drained by the metrics collector
        self.first_record_at: float | None = None  # time.monotonic() of the first batch
        self.last_commit_at: float | None = None
        self._task_of_tp: dict[TopicPartition, Task] = {}
        self.ownership = Ownership(self, settings.web_url)
        # Called with (table, partition, encoded items) after each commit reached RocksDB,
        # and with the task ids this worker stops running.
        self.commit_listeners: list[Callable[[str, int, list[tuple[bytes, bytes | None]]], None]] = []
        self.revoke_listeners: list[Callable[[set[TaskId]], None]] = []
        # Someone waits for a state to become durable (a ?wait_for= read): while any of
        # these says so, a commit follows every processed fetch instead of the interval.
        self.prompt_commit_checks: list[Callable[[], bool]] = []
        self._lock = asyncio.Lock()
        self._generation = 0
        self._uncommitted = 0
        self._last_commit = self.last_commit_at = time.monotonic()
        self._pending: tuple[set[TaskId], set[TaskId]] = (set(), set())
        self._stopping = False
        self.globals: GlobalTables | None = None
        self._global_readers: set[int] = set()
        self._loops: list[asyncio.Task] = []
        self._clients: list[Any] = []

    # lifecycle -----------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(self.topology.sources)

    async def on_start(self) -> None:
        if not self.enabled:
            self.ready = True
            return
        self.topology.finalize()
        s = self.settings
        common = dict(bootstrap_servers=s.bootstrap_servers, **s.security.client_kwargs())
        self.partitions = await self._create_topics()
        current.partitions = self.partitions
        self.producer = AIOKafkaProducer(linger_ms=5, max_batch_size=PRODUCER_BATCH_BYTES,
                                         acks="all", **common)
        self.restorer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="none",
                                         fetch_max_wait_ms=1, **common)
        self.standby_consumer = AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset="earliest",
                                                 fetch_max_wait_ms=200, **common)
        assignor = TaskAssignor(s.web_url, self._group_topics, s.standby_replicas,
                                self._held_tasks, self._on_map)
        self.consumer = AIOKafkaConsumer(
            group_id=self.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            partition_assignment_strategy=(assignor,), session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms, max_poll_records=s.fetch_max_records,
            fetch_max_wait_ms=s.fetch_max_wait_ms,
            rebalance_timeout_ms=max(s.session_timeout_ms, 30000), **common)
        self._clients = [self.producer, self.restorer, self.standby_consumer, self.consumer]
        if self.topology.globals:
            self.global_consumer = AIOKafkaConsumer(enable_auto_commit=False,
                                                    auto_offset_reset="earliest",
                                                    fetch_max_wait_ms=s.global_fetch_wait_ms,
                                                    fetch_min_bytes=s.global_fetch_min_bytes,
                                                    **common)
            # Reads to the end on demand, so it must not wait for records that are not
            # there: 1 ms (a wait of 0 is never answered by some Kafka-protocol brokers).
            self.global_probe = AIOKafkaConsumer(enable_auto_commit=False,
                                                 auto_offset_reset="earliest",
                                                 fetch_max_wait_ms=1, **common)
            self._clients += [self.global_consumer, self.global_probe]
            self.globals = GlobalTables(list(self.topology.globals.values()), self.state_dir)
            self._global_readers = self.topology.groups_reading_globals()
        for client in self._clients:
            await client.start()
        self.outbox = Outbox(self.producer)
        current.outbox = self.outbox
        if self.globals is not None:
            # Global tables are complete before any record is processed (as in Kafka Streams).
            started = time.monotonic()
            n = await self.globals.start(self.global_probe, self.global_consumer, self.partitions)
            log.info("global tables loaded (%d records) in %.3fs", n, time.monotonic() - started)
            self._loops.append(asyncio.create_task(self._run_globals()))
        self.consumer.subscribe(sorted(self.topology.sources), listener=_Listener(self))
        self._loops += [asyncio.create_task(self._run()), asyncio.create_task(self._run_standbys())]

    async def on_stop(self) -> None:
        if not self.enabled:
            return
        started = time.monotonic()
        self._stopping = True
        self.ready = False
        # Each loop sees _stopping after its current fetch (at most 200 ms).
        await asyncio.gather(*self._loops, return_exceptions=True)
        async with self._lock:
            if self.failed is None and self.tasks:
                try:
                    await self._commit()
                except (KafkaError, CommitFailedError) as exc:
                    log.warning("final commit failed: %r", exc)
            for task in self.tasks.values():
                task.close()
            self._notify_revoked(set(self.tasks))
            self._close_standbys(set(self.standbys))
            self.tasks.clear()
            if self.globals is not None:
                self.globals.close()
        for client in reversed(self._clients):
            await client.stop()
        log.info("processors stopped in %.3fs", time.monotonic() - started)

    async def _create_topics(self) -> dict[str, int]:
        topo, s = self.topology, self.settings
        internal = topo.internal
        async with TopicAdmin(s) as admin:
            external = [TopicSpec(t, s.partitions) for t in topo.sources if t not in internal]
            external += [TopicSpec(t, s.partitions) for t in topo.sinks if t not in internal]
            external += [TopicSpec(g.spec.topic, s.partitions) for g in topo.globals.values()]
            counts = await admin.ensure(external + [
                TopicSpec(self.dead_letter_topic, s.partitions),
                TopicSpec(late_events_topic(self.app_id), s.partitions),
                TopicSpec(REGISTRY_TOPIC, 1, compact=True)])
            # Internal topics take the partition count of the sub-topology they serve,
            # which for a repartition chain is known only once its upstream is.
            todo = dict(internal)
            while todo:
                ready = {}
                for name, spec in todo.items():
                    upstream = self._group_partitions(spec.partitions_from, counts)
                    if upstream is not None:
                        ready[name] = TopicSpec(name, upstream, spec.compact)
                if not ready:
                    raise TopologyError(f"cannot size internal topics {sorted(todo)}")
                counts.update(await admin.ensure(list(ready.values())))
                for name in ready:
                    del todo[name]
        for g in topo.groups():
            self._group_partitions_checked(g, counts)
        return counts

    def _group_partitions(self, group, counts: dict[str, int]) -> int | None:
        gid = group.root().id
        topics = self.topology.topics_of_group(gid)
        # A sub-topology may read internal topics sized after itself (a foreign-key join's
        # subscriptions): the topics that exist already decide, and the co-partitioning
        # check afterwards makes sure they all agree.
        known = [counts[t] for t in topics if t in counts]
        return max(known) if known else None

    def _group_partitions_checked(self, gid: int, counts: dict[str, int]) -> int:
        sizes = {t: counts[t] for t in self.topology.topics_of_group(gid)}
        for spec in self.topology.tables_of_group(gid):
            sizes[spec.changelog] = counts[spec.changelog]
        if len(set(sizes.values())) > 1:
            raise TopologyError(
                f"topics processed together must have the same number of partitions: {sizes}")
        return next(iter(sizes.values()))

    # assignment ---------------------------------------------------------
    def _group_topics(self) -> dict[int, list[str]]:
        return {g: self.topology.topics_of_group(g) for g in self.topology.groups()}

    def _held_tasks(self) -> tuple[set[TaskId], set[TaskId]]:
        return set(self.tasks), set(self.standbys)

    def _on_map(self, cmap: ClusterMap, active: set[TaskId], standby: set[TaskId]) -> None:
        self.cluster = cmap
        self._pending = (active, standby)

    async def _on_revoked(self) -> None:
        self.ready = False
        async with self._lock:
            if self.failed is None and self.tasks and not self._stopping:
                try:
                    await self._commit()
                except CommitFailedError as exc:
                    log.warning("commit on revocation failed, records will be reprocessed: %r", exc)

    async def _on_assigned(self) -> None:
        active, standby = self._pending
        async with self._lock:
            self._generation += 1
            try:
                await self._reassign(active, standby - active)
            except Exception as exc:  # aiokafka swallows listener errors: stop the worker
                log.exception("assignment failed")
                self.failed = exc
                await self.crash(exc)
                return
            self.ready = True
        await self._publish_registry()

    async def _reassign(self, active: set[TaskId], standby: set[TaskId]) -> None:
        gone = set(self.tasks) - active
        for tid in gone:
            task = self.tasks.pop(tid)
            self.counters["late_records_retired"] += task.late_records
            task.close()
        self._notify_revoked(gone)
        self._close_standbys(set(self.standbys) - standby | (set(self.standbys) & active))
        new = [Task(self.topology, g, p, self.state_dir) for g, p in sorted(active - set(self.tasks))]
        for task in new:
            task.open()
        started = time.monotonic()
        applied = await restore(self.restorer, {tp: st for t in new for tp, st in t.changelogs.items()})
        self.counters["restored"] += applied
        if new:
            log.info("restored %d tasks (%d changelog records) in %.3fs",
                     len(new), applied, time.monotonic() - started)
        self.tasks.update({t.id: t for t in new})
        self._task_of_tp = {TopicPartition(topic, t.partition): t
                            for t in self.tasks.values()
                            for topic in self.topology.topics_of_group(t.group)}
        await self._open_standbys(standby - set(self.standbys))

    @property
    def late_records(self) -> int:
        """Records too late for their window, on every task this worker has run."""
        return self.counters["late_records_retired"] + sum(t.late_records for t in self.tasks.values())

    def _notify_revoked(self, gone: set[TaskId]) -> None:
        if gone:
            for listener in self.revoke_listeners:
                listener(gone)

    async def _publish_registry(self) -> None:
        """Tell gateways and other apps where this app's tables live."""
        record = registry_record(self.app_id, self.ownership)
        try:
            await self.producer.send_and_wait(REGISTRY_TOPIC, dumps(record), key=self.app_id.encode())
        except KafkaError as exc:  # discovery is best effort; processing goes on
            log.warning("could not publish to %s: %r", REGISTRY_TOPIC, exc)

    async def _open_standbys(self, new: set[TaskId]) -> None:
        for g, p in new:
            stores = {}
            for spec in self.topology.tables_of_group(g):
                store = PartitionStore(self.state_dir / spec.name / str(p), spec.key_codec, spec.values)
                stores[TopicPartition(spec.changelog, p)] = store.open()
            self.standbys[(g, p)] = stores
        tps = [tp for stores in self.standbys.values() for tp in stores]
        self.standby_consumer.assign(tps)
        for stores in self.standbys.values():
            for tp, store in stores.items():
                await seek_to_checkpoint(self.standby_consumer, tp, store)

    def _close_standbys(self, ids: set[TaskId]) -> None:
        for tid in ids:
            for store in self.standbys.pop(tid, {}).values():
                store.close()
        if not self.standbys and self._clients:
            self.standby_consumer.assign([])

    # processing -----------------------------------------------------------
    async def _run(self) -> None:
        s = self.settings
        interval = s.commit_interval_ms / 1000
        try:
            while not self._stopping:
                generation = self._generation
                batches = await self.consumer.getmany(timeout_ms=100, max_records=s.fetch_max_records)
                async with self._lock:
                    # A batch fetched before a rebalance may belong to partitions that moved.
                    # Put them back: the next fetch starts from the first unprocessed record.
                    if generation != self._generation or self._stopping:
                        assigned = self.consumer.assignment()
                        for tp, records in batches.items():
                            if records and tp in assigned:
                                self.consumer.seek(tp, records[0].offset)
                        continue
                    if batches and self.first_record_at is None:
                        self.first_record_at = time.monotonic()
                    if self._reads_globals(batches):
                        await self.globals.catch_up(self.global_probe, self.global_consumer,
                                                    GLOBAL_CATCH_UP_TIMEOUT_S)
                    started = time.perf_counter()
                    for tp, records in batches.items():
                        task = self._task_of_tp.get(tp)
                        if task is not None and records:
                            task.process(tp, records, self._dead_letter, s.on_error)
                            self._uncommitted += len(records)
                            self.records_in[tp.topic] += len(records)
                            self.positions[tp] = records[-1].offset + 1
                    if batches and len(self.batch_seconds) < 10_000:
                        self.batch_seconds.append(time.perf_counter() - started)
                    if self._uncommitted and (self._uncommitted >= s.commit_max_records
                                              or time.monotonic() - self._last_commit >= interval
                                              or any(c() for c in self.prompt_commit_checks)):
                        await self._commit_or_retry()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("processing stopped")
            self.failed = exc
            self.ready = False
            await self.crash(exc)

    def _reads_globals(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> bool:
        """Whether records of this fetch look up a global table."""
        if self.globals is None or not self._global_readers:
            return False
        for tp, records in batches.items():
            task = self._task_of_tp.get(tp)
            if records and task is not None and task.group in self._global_readers:
                return True
        return False

    def _dead_letter(self, rec: ConsumerRecord, stage: str, exc: BaseException) -> None:
        headers = [
            ("streamkit.error", f"{type(exc).__name__}: {exc}".encode()[:2000]),
            ("streamkit.stage", stage.encode()),
            ("streamkit.topic", rec.topic.encode()),
            ("streamkit.partition", str(rec.partition).encode()),
            ("streamkit.offset", str(rec.offset).encode()),
            ("streamkit.timestamp", str(rec.timestamp).encode()),
        ]
        partition = rec.partition % self.partitions[self.dead_letter_topic]
        self.outbox.add(self.dead_letter_topic, partition, rec.key, rec.value, rec.timestamp, headers)
        self.counters["dead_letters"] += 1
        self.dead_letters_by_topic[rec.topic] += 1
        log.warning("dead letter: %s at %s[%d]@%d: %r", stage, rec.topic, rec.partition, rec.offset, exc)

    async def _commit_or_retry(self) -> None:
        """Commit; a broker that fails the commit is not a reason to stop processing."""
        try:
            await self._commit()
        except CommitFailedError as exc:
            # The group moved on (this worker was out of it too long): the state is written,
            # the input offsets are not, so the next owner of these partitions (this worker
            # again, once it has rejoined) processes the records since the last commit again.
            log.warning("input offsets not committed, the group has rebalanced: %r", exc)
            self._last_commit = time.monotonic()
        except KafkaError as exc:
            # Nothing was marked written: the state and the outputs wait for the next try.
            self.counters["commit_failures"] += 1
            log.warning("commit failed, retrying in %.1fs: %r", COMMIT_RETRY_S, exc)
            self._last_commit = time.monotonic() - self.settings.commit_interval_ms / 1000 \
                + COMMIT_RETRY_S

    async def _commit(self) -> None:
        """Changelog and outputs first, then RocksDB with the changelog offsets, then inputs."""
        flushed, changelogs = [], {}
        for task in self.tasks.values():
            for name, store in task.stores.items():
                if store.dirty:
                    items = store.encode_dirty()
                    ctp = (self.topology.tables[name].changelog, task.partition)
                    changelogs[ctp] = [(kb, vb, None, None) for kb, vb in items]
                    flushed.append((name, task.partition, store, items, ctp))
        last = await self.outbox.flush(changelogs)
        for name, partition, store, items, ctp in flushed:
            store.write(items, last[ctp] + 1)
            store.dirty.clear()
            for listener in self.commit_listeners:
                listener(name, partition, items)
        offsets = {tp: off for task in self.tasks.values() for tp, off in task.offsets.items()}
        if offsets:
            await self.consumer.commit(offsets)
        for task in self.tasks.values():
            task.offsets.clear()
        self.counters["records"] += self._uncommitted
        self.counters["commits"] += 1
        self._uncommitted = 0
        self._last_commit = self.last_commit_at = time.monotonic()

    async def _run_standbys(self) -> None:
        while not self._stopping:
            if not self.standbys:
                await asyncio.sleep(0.2)
                continue
            batches = await self.standby_consumer.getmany(timeout_ms=200, max_records=20000)
            async with self._lock:
                for tp, records in batches.items():
                    store = self._standby_store(tp)
                    if store is not None and records:
                        store.write(((r.key, r.value) for r in records), records[-1].offset + 1)

    async def _run_globals(self) -> None:
        while not self._stopping:
            batches = await self.global_consumer.getmany(timeout_ms=200, max_records=20000)
            async with self._lock:
                self.globals.apply(batches)

    def _standby_store(self, tp: TopicPartition) -> PartitionStore | None:
        for stores in self.standbys.values():
            if tp in stores:
                return stores[tp]
        return None


class _Listener(ConsumerRebalanceListener):
    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked) -> None:
        await self.runner._on_revoked()

    async def on_partitions_assigned(self, assigned) -> None:
        await self.runner._on_assigned()
