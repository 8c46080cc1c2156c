"""The batched processing path, run as a service inside the Faust worker: its fetch loop
and its lifecycle.

Why not Faust's stream layer: every record there crosses from Faust's consumer thread
to the conductor to an agent's stream, one task hand-off at a time, which caps an agent
near 10 k records/s (docs/architecture.md). Here one aiokafka consumer in the worker's
event loop fetches batches, each batch is pushed through the operator graph in a plain
loop, table updates stay in a write-back cache, and a commit (commit.py) writes the
changelog once per changed key, waits for every acknowledgement, applies the updates to
RocksDB with their changelog offset, and only then commits the input offsets.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from pathlib import Path
from typing import Any, Awaitable, Callable, Protocol

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service

from ..clients import NOT_AUTHORIZED, Clients, Rebalance, RetryLog, stop_client
from ..config import Settings
from ..errors import ConfigError
from ..serde import dumps
from ..state.global_tables import GlobalTables
from ..state.restore import RestoreProgress, restore
from ..state.store import ReadCache
from ..topics import REGISTRY_TOPIC, TopicAdmin, dead_letter_topic
from .assignor import ClusterMap, TaskAssignor, TaskId
from .commit import Commit, CommitListener
from .deadletters import dead_letter
from .durations import Durations
from .outbox import Outbox
from .ownership import Ownership
from .planning import check_copartitioned, external_topics, internal_topics
from .production import ProductionErrors
from .purge import Purger
from .registry import registry_record
from .standby import Standbys
from .task import Task
from .topology import Topology
from .transactions import Transactions
from .uncaught import UncaughtErrors

log = logging.getLogger(__name__)


class StateWaiters(Protocol):
    """Requests waiting for table entries to reach a state (query/waiters.py)."""

    def pending(self) -> bool:
        """Whether any request waits."""

    def met_uncommitted(self, uncommitted: Callable[[str, int, bytes], bytes | None]) -> bool:
        """Whether an update not yet durable would answer one."""


PRODUCER_BATCH_BYTES = 512 * 1024
# How long records that look up global tables wait for those tables to catch up.
GLOBAL_CATCH_UP_TIMEOUT_S = 10.0
COMMIT_RETRY_S = 0.5  # pause before a commit that a broker failed is tried again


async def _side_by_side(*steps: Awaitable[Any]) -> list[Any]:
    """The steps' results, once every step has ended; the first error raised, if any
    (none is left running behind it)."""
    done = await asyncio.gather(*steps, return_exceptions=True)
    for result in done:
        if isinstance(result, BaseException):
            raise result
    return done


class Runner(UncaughtErrors, Service):
    """Consumes the topology's sources, runs its tasks, and commits."""

    def __init__(self, app_id: str, topology: Topology, settings: Settings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_id, self.topology, self.settings = app_id, topology, settings
        self.group_id = f"{app_id}-processors"
        self.state_dir = Path(settings.data_dir) / app_id
        self.dead_letter_topic = dead_letter_topic(app_id)
        self.clients = Clients(settings)
        # Made here, its topics known at start: on_stop closes it even after a failed start.
        self.purger = Purger(self.clients, set(), settings.repartition_purge_interval_ms)
        self.tasks: dict[TaskId, Task] = {}
        # The bound of every store's read cache here, and its hits and misses (/metrics).
        self.read_cache = ReadCache(settings.read_cache_entries)
        self.restore_progress = RestoreProgress()  # each table's latest restore (/metrics)
        self.standbys: Standbys | None = None
        self.cluster = ClusterMap()
        self.partitions: dict[str, int] = {}
        self.ready = False
        self.failed: BaseException | None = None
        self.counters = {"records": 0, "dead_letters": 0, "commits": 0, "restored": 0,
                         "late_records_retired": 0, "commit_failures": 0, "replacements": 0}
        self.records_in: Counter[str] = Counter()       # per source topic
        self.dead_letters_by_topic: Counter[str] = Counter()
        self.positions: dict[TopicPartition, int] = {}  # next offset to process, per input
        self.batch_seconds: list[float] = []            # drained by the metrics collector
        self.commit_durations = Durations()
        self.first_record_at: float | None = None  # time.monotonic() of the first batch
        self.last_commit_at: float | None = None
        self._task_of_tp: dict[TopicPartition, Task] = {}
        self.ownership = Ownership(self, settings.web_url)
        # Called with (table, partition, encoded items) after each commit reached RocksDB,
        # and with the task ids this worker stops running.
        self.commit_listeners: list[CommitListener] = []
        self.revoke_listeners: list[Callable[[set[TaskId]], None]] = []
        # Requests waiting for a state to become durable (?wait_for= reads): while any
        # waits, a processed fetch that could lead to an answer is committed at once
        # rather than at the interval (_prompt_commit_due).
        self.state_waiters: list[StateWaiters] = []
        self._lock = asyncio.Lock()
        self._generation = 0
        self._uncommitted = 0
        self._unflushed = 0  # records processed since the state was last made durable
        self._last_commit = self.last_commit_at = time.monotonic()
        self._commit_retry_at = 0.0  # no commit tried before then: the last one failed
        self._commit_retries = RetryLog(log, "commit")
        self._pending: tuple[set[TaskId], set[TaskId]] = (set(), set())
        # At least once, after a commit of the input offsets failed because the group is
        # re-forming: nothing is processed until it assigns tasks again (_rejoining), so
        # that the commit on revocation covers everything processed. If that commit fails
        # too (_lost: the group went on without this worker), the consumer resumes at the
        # committed offsets, behind what the tasks have processed, so they are opened again
        # from their changelogs (uncaught.py, `_drop_tasks`): a task kept would take those
        # records again on top of its state, and judge them against its later stream time.
        self._rejoining = False
        self._lost = False
        self._stopping = False
        self.globals: GlobalTables | None = None
        # Exactly-once: each task's transactional producer and outbox (transactions.py).
        self.txn: Transactions | None = None
        self._global_readers: set[int] = set()
        self._durable_soon: asyncio.Task | None = None
        self._deferred_error: BaseException | None = None
        self._loops: list[asyncio.Task] = []
        self._clients: list[Any] = []
        # STREAMKIT_ON_UNCAUGHT_ERROR=shutdown_app: when this worker stops alone if the
        # group has not answered its request by then (time.monotonic()).
        self._shutdown_deadline: float | None = None

    # the view Ownership reads -------------------------------------------------------
    @property
    def serving(self) -> bool:
        """Partitions assigned, every active task restored, and processing not failed."""
        return self.ready and self.failed is None

    def active_store(self, table: str, tid: TaskId) -> Any:
        task = self.tasks.get(tid)
        return None if task is None else task.stores[table]

    def standby_store(self, changelog: TopicPartition, tid: TaskId) -> Any:
        return None if self.standbys is None else self.standbys.store(tid, changelog)

    # lifecycle -----------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(self.topology.sources)

    async def on_start(self) -> None:
        if not self.enabled:
            self.ready = True
            return
        self.topology.finalize()
        s, clients, ctx = self.settings, self.clients, self.topology.context
        ctx.partitions = self.partitions  # filled in once the topics exist
        self.production_errors = ProductionErrors(
            s.on_production_error, self.topology.production_errors, self.dead_letter_topic,
            self.partitions)
        if s.exactly_once and self.production_errors.continues:
            raise ConfigError("a production-error policy of 'continue' needs "
                              "STREAMKIT_PROCESSING_GUARANTEE=at_least_once: a transaction "
                              "holding a refused record cannot commit (docs/operations.md)")
        self.purger.topics = {t for t, it in self.topology.internal.items() if not it.compact}
        if s.exactly_once:
            self.txn = Transactions(clients, self.app_id, self.group_id, self.topology,
                                    linger_ms=5, max_batch_size=PRODUCER_BATCH_BYTES)
        self.producer = clients.producer(linger_ms=5, max_batch_size=PRODUCER_BATCH_BYTES)
        # Reads to the end on demand must not wait for records that are not there.
        self.restorer = clients.reader(s.read_to_end_wait_ms, reset="none")
        standby_consumer = clients.reader(200)
        self.standbys = Standbys(self.topology, self.state_dir, standby_consumer, self.read_cache)
        self.assignor = TaskAssignor(s.web_url, self._group_topics, s.standby_replicas,
                                     self._held_tasks, self._on_map)
        self.consumer = clients.member(self.group_id, s.fetch_max_wait_ms,
                                       partition_assignment_strategy=(self.assignor,),
                                       max_poll_records=s.fetch_max_records)
        self._clients = [self.producer, self.restorer, standby_consumer, self.consumer]
        if self.topology.globals:
            self.global_consumer = clients.reader(s.global_fetch_wait_ms,
                                                  fetch_min_bytes=s.global_fetch_min_bytes)
            self.global_probe = clients.reader(s.read_to_end_wait_ms)
            self._clients += [self.global_consumer, self.global_probe]
            self.globals = GlobalTables(list(self.topology.globals.values()), self.state_dir,
                                        self.read_cache, s.read_to_end_wait_ms,
                                        s.isolation_level == "read_committed")
            self._global_readers = self.topology.groups_reading_globals()
        # Started side by side, and beside the creation of the topics, which they do not
        # need: each one's bootstrap (a connection and the cluster's metadata) is a few
        # round trips of its own, and so is the check that the broker has transactions.
        steps = [client.start() for client in self._clients]
        if self.txn is not None:
            steps.append(self.txn.check_broker())
        counts, *_ = await _side_by_side(self._create_topics(), *steps)
        self.partitions.update(counts)
        if self.txn is None:
            self.outbox = ctx.writer = Outbox(self.producer, errors=self.production_errors)
        else:
            # Every record goes into its task's transaction; this outbox counts them all.
            self.outbox = Outbox(self.producer, self.txn.sent)
            ctx.writer = self.txn.writer
        if self.globals is not None:
            # Global tables are complete before any record is processed (as in Kafka Streams).
            started = time.monotonic()
            n = await self.globals.start(self.global_probe, self.global_consumer, self.partitions)
            log.info("global tables loaded (%d records) in %.3fs", n, time.monotonic() - started)
            self._loops.append(asyncio.create_task(self._guard(self._run_globals)))
        self._listener = Rebalance(self._on_revoked, self._on_assigned)
        self.consumer.subscribe(sorted(self.topology.sources), listener=self._listener)
        self._loops += [asyncio.create_task(self._run()),
                        asyncio.create_task(self._guard(self._run_standbys))]

    async def on_stop(self) -> None:
        if not self.enabled:
            return
        started = time.monotonic()
        close_s = self.settings.close_timeout_s
        self._stopping = True
        self.ready = False
        # Each loop sees _stopping after its current fetch (at most 200 ms).
        await asyncio.gather(*self._loops, return_exceptions=True)
        async with self._lock:
            if self.failed is None and self.tasks:
                try:
                    await asyncio.wait_for(self._commit(), close_s)
                except TimeoutError:  # the records since the last commit come again
                    log.warning("final commit not done within %.0f s (no broker answers)",
                                close_s)
                except Exception as exc:
                    log.warning("final commit failed: %r", exc)
            for task in self.tasks.values():
                task.close()
            self._notify_revoked(set(self.tasks))
            if self.standbys is not None:
                self.standbys.close(set(self.standbys))
            self.tasks.clear()
            if self.txn is not None:
                await self.txn.close(list(self.txn.producers))
            if self.globals is not None:
                self.globals.close()
        for client in reversed(self._clients):
            await stop_client(client, close_s)
        await self.purger.close()
        log.info("processors stopped in %.3fs", time.monotonic() - started)

    async def _create_topics(self) -> dict[str, int]:
        topo, s = self.topology, self.settings
        external = external_topics(topo, s.partitions)
        async with TopicAdmin(s) as admin:
            existing = await admin.partition_counts([t.name for t in external] + list(topo.internal))
            # Internal topics are sized from the external ones as they are or, if missing,
            # as they are about to be created: every missing topic in one request.
            planned = {**{t.name: t.partitions for t in external}, **existing}
            counts = await admin.ensure(external + internal_topics(topo, planned), existing)
        check_copartitioned(topo, counts)
        return counts

    # assignment ---------------------------------------------------------
    def _group_topics(self) -> dict[int, list[str]]:
        return {g: self.topology.topics_of_group(g) for g in self.topology.groups()}

    def _held_tasks(self) -> tuple[set[TaskId], set[TaskId]]:
        return set(self.tasks), set(self.standbys or ())

    def _on_map(self, cmap: ClusterMap, active: set[TaskId], standby: set[TaskId]) -> None:
        self.cluster = cmap
        self._pending = (active, standby)

    async def _on_revoked(self) -> None:
        self.ready = False
        async with self._lock:
            if self.failed is None and self.tasks and not self._stopping:
                try:
                    await self._commit()
                except (CommitFailedError, KafkaError) as exc:
                    log.warning("commit on revocation failed, records will be reprocessed: %r", exc)
                    self._lost = self.txn is None
                except Exception as exc:  # aiokafka swallows listener errors
                    await self._uncaught(exc, reopen=None)

    async def _on_assigned(self, _partitions: set[TopicPartition]) -> None:
        # The assignor has already said which tasks are ours (_on_map).
        active, standby = self._pending
        async with self._lock:
            self._generation += 1
            if self.cluster.shutdown is not None:
                await self._shut_down_app(self.cluster.shutdown)
                return
            if self.failed is not None:
                return  # this worker waits for the shutdown it asked the group for
            try:
                self._rejoining = False
                if self._lost:
                    log.warning("the group went on without this worker: its tasks start again "
                                "from their changelogs and committed offsets")
                    self._lost = False
                    await self._reopen(active)
                else:
                    await self._reassign(active, standby - active)
            except Exception as exc:  # aiokafka swallows listener errors
                if not await self._uncaught(exc, reopen=active) or self.failed is not None:
                    return
            self.ready = True
        await self._publish_registry()

    async def _reassign(self, active: set[TaskId], standby: set[TaskId],
                        rewind: bool = False) -> None:
        assert self.standbys is not None
        gone = set(self.tasks) - active
        for tid in gone:
            task = self.tasks.pop(tid)
            self.counters["late_records_retired"] += task.late_records
            task.close()
        self._notify_revoked(gone)
        self._forget_positions(gone)
        held = set(self.standbys)
        self.standbys.close(held - standby | (held & active))
        new = [Task(self.topology, g, p, self.state_dir, self.read_cache)
               for g, p in sorted(active - set(self.tasks))]
        if self.txn is not None:
            await self.txn.close(gone)
            # Before the changelogs and input offsets are read: starting a task's producer
            # fences its previous owner and settles that owner's open transaction.
            await self.txn.open(t.id for t in new)
        started = time.monotonic()
        changelogs = {tp: st for t in new for tp, st in t.changelogs.items()}
        tables = {spec.changelog: name for name, spec in self.topology.tables.items()}
        try:
            for task in new:
                task.open()
            applied = await restore(self.restorer, changelogs, progress=self.restore_progress,
                                    table_of=tables)
        except BaseException:
            for task in new:  # their RocksDB locks, for whoever opens them next
                task.close()
            raise
        self.counters["restored"] += applied
        if new:
            restored = {tables[tp.topic] for tp in changelogs}
            log.info("restored %d tasks (%d changelog records) in %.3fs%s",
                     len(new), applied, time.monotonic() - started,
                     f"; {self.restore_progress.describe(restored)}" if restored else "")
        self.tasks.update({t.id: t for t in new})
        self._map_inputs()
        if self.txn is not None or rewind:
            await self._seek_committed(new, rewind)
        if self.txn is not None:
            # Tasks kept through the rebalance go on from where they are. The group's
            # committed offsets can lag behind their last transaction (its commit marker
            # may not have reached the offsets topic yet), so the offsets the consumer
            # would fetch could make them process records again.
            for tp in self._task_of_tp:
                if tp in self.positions:
                    self.consumer.seek(tp, self.positions[tp])
        await self.standbys.open(standby - set(self.standbys))

    def _map_inputs(self) -> None:
        self._task_of_tp = {TopicPartition(topic, t.partition): t
                            for t in self.tasks.values()
                            for topic in self.topology.topics_of_group(t.group)}

    async def _seek_committed(self, tasks: list[Task], rewind: bool = False) -> None:
        """Start the inputs of new tasks at their committed offsets, read now that the
        previous owner's transactions are settled (an offset fetched earlier may predate
        its last commit); with rewind, an input never committed starts from its first
        record (as the group's reset policy, earliest, would)."""
        for task in tasks:
            for topic in self.topology.topics_of_group(task.group):
                tp = TopicPartition(topic, task.partition)
                offset = await self.consumer.committed(tp)
                if offset is not None:
                    self.positions[tp] = offset
                    self.consumer.seek(tp, offset)
                elif rewind:
                    self.positions.pop(tp, None)
                    await self.consumer.seek_to_beginning(tp)

    def _forget_positions(self, tids: set[TaskId]) -> None:
        """Tasks that leave: where their inputs stood here says nothing of where they
        stand when they come back."""
        for g, p in tids:
            for topic in self.topology.topics_of_group(g):
                self.positions.pop(TopicPartition(topic, p), None)

    async def _drop_fenced(self, fenced: list[TaskId]) -> None:
        """Tasks whose producer was fenced (another worker runs them, or another producer
        took their transactional id): their state since the last commit is void. The
        worker rejoins the group, whose assignment then says who runs them: a task that
        comes back here is opened afresh (a new producer, its changelog restored, its
        input read from the committed offsets)."""
        for tid in fenced:
            log.warning("task %s was fenced: another worker runs it now", tid)
            self.tasks.pop(tid).close()
        assert self.txn is not None
        await self.txn.close(fenced)
        self._map_inputs()
        self._notify_revoked(set(fenced))
        self._forget_positions(set(fenced))
        # Without a rebalance nobody would ever run them again (a producer started
        # elsewhere under their id, with no member leaving the group). aiokafka has no
        # call to rejoin; subscribing again to the same topics is one.
        if not self._stopping:
            self.consumer.subscribe(sorted(self.topology.sources), listener=self._listener)

    def active_inputs(self) -> set[TopicPartition]:
        """The input partitions of the tasks this worker runs now."""
        return set(self._task_of_tp)

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

    # processing -----------------------------------------------------------
    async def _run(self) -> None:
        while not self._stopping:
            try:
                if self.failed is None:
                    await self._run_once()
                elif not await self._await_shutdown():
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                async with self._lock:
                    if not await self._uncaught(exc, reopen=set(self.tasks)):
                        return

    async def _run_once(self) -> None:
        """One fetch, processed, and committed when it is time."""
        s = self.settings
        generation = self._generation
        batches = await self.consumer.getmany(timeout_ms=100, max_records=s.fetch_max_records)
        async with self._lock:
            if self._deferred_error is not None:
                exc, self._deferred_error = self._deferred_error, None
                raise exc
            # A batch fetched before a rebalance may belong to partitions that moved.
            # Put them back: the next fetch starts from the first unprocessed record.
            if (generation != self._generation or self._stopping or self.failed is not None
                    or self._rejoining):
                assigned = self.consumer.assignment()
                for tp, records in batches.items():
                    if records and tp in assigned:
                        self.consumer.seek(tp, self._resume_at(tp, records[0].offset))
                return
            if batches and self.first_record_at is None:
                self.first_record_at = time.monotonic()
            if self.globals is not None and self._reads_globals(batches):
                await self.globals.catch_up(self.global_probe, self.global_consumer,
                                            GLOBAL_CATCH_UP_TIMEOUT_S)
            self._process(batches)
            if self._uncommitted and (time.monotonic() - self._last_commit
                                      >= s.commit_interval_ms / 1000
                                      or self._waiting_writes() >= s.commit_max_records):
                await self._commit_or_retry()
            elif self._unflushed and self._prompt_commit_due():
                # Someone waits for a state: make it durable now (changelog, outputs,
                # RocksDB); the input offsets follow at the commit interval.
                await self._commit_or_retry(offsets=False)

    def _outboxes(self) -> list[Outbox]:
        return [self.outbox, *(self.txn.outboxes.values() if self.txn is not None else ())]

    def _waiting_writes(self) -> int:
        """The state updates and output records a commit would write now: what
        STREAMKIT_COMMIT_MAX_RECORDS bounds (the memory they hold, the size of a commit).
        Updates of one key in one commit period count once, as they are written once."""
        return (sum(task.dirty_count() for task in self.tasks.values())
                + sum(o.count for o in self._outboxes()))

    def _prompt_commit_due(self) -> bool:
        """Whether to make what was processed durable now rather than at the commit
        interval: a request waits for a state, and what was processed holds records to
        send (the state awaited may follow from them, on this worker or another) or an
        update that answers a waiter. Updates that answer nobody (an order's state before
        the one awaited) wait for the next commit, which costs a produce round trip."""
        waiting = [w for w in self.state_waiters if w.pending()]
        if not waiting:
            return False
        if any(o.count for o in self._outboxes()):
            return True
        return any(w.met_uncommitted(self._uncommitted_value) for w in waiting)

    def _uncommitted_value(self, table: str, partition: int, kb: bytes) -> bytes | None:
        """The encoded value a table key awaits the next commit with, None if none (or
        its deletion)."""
        spec = self.topology.tables.get(table)
        task = self.tasks.get((spec.group.root().id, partition)) if spec is not None else None
        store = task.stores.get(table) if task is not None else None
        return store.uncommitted(kb) if store is not None else None

    def make_durable_soon(self) -> None:
        """Someone has just started to wait for a state (a ?wait_for= read): make what was
        processed durable now, rather than after the fetch in progress returns (up to its
        timeout when no record comes), since that state may be the one awaited."""
        if self._unflushed and (self._durable_soon is None or self._durable_soon.done()):
            self._durable_soon = asyncio.create_task(self._make_durable())

    async def _make_durable(self) -> None:
        async with self._lock:
            if not self._unflushed or self._stopping or self.failed is not None:
                return
            try:
                await self._commit_or_retry(offsets=False)
            except Exception as exc:  # the processing loop deals with it, as with its own
                self._deferred_error = exc

    def _resume_at(self, tp: TopicPartition, fetched_from: int) -> int:
        """Where to read a partition again whose fetched records were put back. With
        exactly-once, where its task stands (the offset the records were fetched from may
        be a committed offset that lagged behind its last transaction); otherwise the
        first record put back."""
        if self.txn is not None and tp in self.positions and tp in self._task_of_tp:
            return self.positions[tp]
        return fetched_from

    def _process(self, batches: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        started = time.perf_counter()
        for tp, records in batches.items():
            task = self._task_of_tp.get(tp)
            if task is not None and records:
                task.process(tp, records, self._dead_letter, self.settings.on_error)
                self._uncommitted += len(records)
                self._unflushed += len(records)
                self.records_in[tp.topic] += len(records)
                self.positions[tp] = records[-1].offset + 1
        if batches and len(self.batch_seconds) < 10_000:
            self.batch_seconds.append(time.perf_counter() - started)

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
        topic = self.dead_letter_topic
        dead_letter(self.topology.context.writer, topic, self.partitions[topic], rec, stage, exc)
        self.counters["dead_letters"] += 1
        self.dead_letters_by_topic[rec.topic] += 1
        log.warning("dead letter: %s at %s[%d]@%d: %r", stage, rec.topic, rec.partition, rec.offset, exc)

    async def _commit_or_retry(self, offsets: bool = True) -> None:
        """Commit; a broker that fails the commit is not a reason to stop processing, but
        a missing permission is: retrying would only hold ever more records in memory."""
        if time.monotonic() < self._commit_retry_at:
            return  # a commit failed a moment ago: not again after every fetch
        try:
            await self._commit(offsets)
            self._commit_retries.recovered()
        except NOT_AUTHORIZED:
            raise
        except CommitFailedError as exc:
            # The group moved on (this worker was out of it too long): the state is written,
            # the input offsets are not, so the next owner of these partitions (this worker
            # again, once it has rejoined) processes the records since the last commit again.
            log.warning("input offsets not committed, the group has rebalanced: %r", exc)
            self._last_commit = time.monotonic()
            self._rejoining = self.txn is None
        except KafkaError as exc:
            # Nothing was marked written: the state and the outputs wait for the next try.
            self.counters["commit_failures"] += 1
            self._commit_retries.failed(exc)
            self._commit_retry_at = time.monotonic() + COMMIT_RETRY_S
            self._last_commit = time.monotonic() - self.settings.commit_interval_ms / 1000 \
                + COMMIT_RETRY_S

    async def _commit(self, offsets: bool = True) -> None:
        """The commit sequence (commit.py): changelogs and outputs, RocksDB, input offsets
        (without offsets=False: the state is then durable, and the records since the last
        commit of offsets are still processed again after a crash). Timed when it
        completes (/metrics: streamkit_commit_seconds)."""
        started = time.perf_counter()
        await self._commit_steps(offsets)
        self.commit_durations.observe(time.perf_counter() - started)
        await self.purger.maybe_purge()  # on its own interval, and not part of the timing

    async def _commit_steps(self, offsets: bool) -> None:
        if self.txn is not None:
            # Every transaction carries its input offsets: a state made durable without
            # them would be applied again by the records a crash replays.
            fenced, committed = await self.txn.commit(self.tasks.values(), self.commit_listeners)
            if fenced:
                await self._drop_fenced(fenced)
            self.purger.committed(committed)
        else:
            commit = Commit(self.topology, self.tasks.values())
            commit.written(await self.outbox.flush(commit.changelogs), self.commit_listeners)
            self._unflushed = 0
            if not offsets:
                return
            if commit.offsets:
                await self.consumer.commit(commit.offsets)
                self.purger.committed(commit.offsets)
            commit.done()
        self._unflushed = 0
        self.counters["records"] += self._uncommitted
        self.counters["commits"] += 1
        self._uncommitted = 0
        self._last_commit = self.last_commit_at = time.monotonic()

    async def _run_standbys(self) -> None:
        assert self.standbys is not None
        while not self._stopping:
            if not len(self.standbys):
                await asyncio.sleep(0.2)
                continue
            batches = await self.standbys.poll()
            async with self._lock:
                self.standbys.apply(batches)

    async def _run_globals(self) -> None:
        assert self.globals is not None
        while not self._stopping:
            batches = await self.global_consumer.getmany(timeout_ms=200, max_records=20000)
            async with self._lock:
                self.globals.apply(batches)
