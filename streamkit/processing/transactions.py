"""Exactly-once commits (STREAMKIT_PROCESSING_GUARANTEE=exactly_once): each task commits in
a Kafka transaction of its own.

A task's commit sends its changelog records, every record its operators produced (outputs,
repartition records, late events, dead letters) and its input offsets
(`send_offsets_to_transaction`) in one transaction of the task's own producer, and writes
RocksDB only once that transaction has committed. A crash before the commit leaves nothing
visible to read_committed consumers (the transaction is aborted) and RocksDB as it was; a
crash after it leaves RocksDB behind the changelog, which the restore catches up.

Fencing. Each task's producer has the transactional id `<app id>-<group>_<partition>`, the
same on whichever worker runs the task (Kafka Streams' first exactly-once design). The
worker that takes a task starts its producer before it restores the task or reads its
input offsets: that fences the previous owner (its later sends and commits fail with
ProducerFenced) and makes the broker finish the previous owner's open transaction first, so
the committed input offsets and the changelog it then reads are final. aiokafka's
`send_offsets_to_transaction` carries the group id only (not the member and generation of
KIP-447), so fencing by consumer group generation is not available; hence a producer per
task rather than one per worker.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Iterable, Sequence

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, ProducerFenced

from ..clients import Clients
from ..errors import ConfigError, ProductionFailed
from .commit import Commit, CommitListener
from .context import Header, ProcessorContext
from .outbox import Outbox
from .topology import Topology

log = logging.getLogger(__name__)

TaskId = tuple[int, int]
# How long a broker may take to show that it runs transactions at all.
CHECK_TIMEOUT_S = 20.0


class TaskWriter:
    """The processor context's record writer: each record into the outbox of the task
    whose records are being processed, so that it commits in that task's transaction."""

    __slots__ = ("ctx", "outboxes")

    def __init__(self, ctx: ProcessorContext, outboxes: dict[TaskId, Outbox]) -> None:
        self.ctx, self.outboxes = ctx, outboxes

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None, headers: Sequence[Header] | None = None) -> None:
        self.outboxes[self.ctx.task.id].add(topic, partition, key, value, timestamp_ms, headers)


class Transactions:
    """The transactional producer and the outbox of every task a worker runs."""

    def __init__(self, clients: Clients, app_id: str, group_id: str, topology: Topology,
                 **producer_options: Any) -> None:
        self.clients, self.app_id, self.group_id = clients, app_id, group_id
        self.topology = topology
        self.options = producer_options
        self.producers: dict[TaskId, AIOKafkaProducer] = {}
        self.outboxes: dict[TaskId, Outbox] = {}
        self.sent: Counter[str] = Counter()
        self.writer = TaskWriter(topology.context, self.outboxes)
        self.counters = {"transactions": 0, "aborted": 0, "fenced": 0}

    def transactional_id(self, tid: TaskId) -> str:
        return f"{self.app_id}-{tid[0]}_{tid[1]}"

    async def check_broker(self) -> None:
        await require_transactions(self.clients, f"{self.app_id}-check")

    async def open(self, tids: Iterable[TaskId]) -> None:
        """Start the producers of tasks this worker takes (fencing their previous owner)."""
        new = [tid for tid in tids if tid not in self.producers]
        producers = {tid: self._producer(tid) for tid in new}
        self.producers.update(producers)
        await asyncio.gather(*(p.start() for p in producers.values()))
        for tid, p in producers.items():
            self.outboxes[tid] = Outbox(p, self.sent)

    async def close(self, tids: Iterable[TaskId]) -> None:
        """Stop the producers of tasks this worker gives up. Records still queued belong
        to no committed transaction: they are dropped, and the next owner makes them again
        from the uncommitted input."""
        gone = [tid for tid in tids if tid in self.producers]
        for tid in gone:
            self.outboxes.pop(tid, None)
        await asyncio.gather(*(stop_quietly(self.producers.pop(tid)) for tid in gone))

    def _producer(self, tid: TaskId) -> AIOKafkaProducer:
        return self.clients.producer(transactional_id=self.transactional_id(tid), **self.options)

    async def commit(self, tasks: Iterable[Any], listeners: Sequence[CommitListener]
                     ) -> tuple[list[TaskId], dict[TopicPartition, int]]:
        """Commit every task in a transaction of its own; return the tasks whose producer
        was fenced (another worker runs them now: their uncommitted work is void) and the
        input offsets the transactions committed. Any other failure is raised after every
        task has tried (those that failed were aborted, and commit again next time)."""
        tasks = list(tasks)
        results = await asyncio.gather(*(self._commit_task(t, listeners) for t in tasks),
                                       return_exceptions=True)
        fenced, error, committed = [], None, {}
        for task, result in zip(tasks, results):
            if isinstance(result, ProducerFenced):
                fenced.append(task.id)
            elif isinstance(result, BaseException):
                error = error or result
            else:
                committed.update(result)
        self.counters["fenced"] += len(fenced)
        if error is not None:
            raise error
        return fenced, committed

    async def _commit_task(self, task: Any, listeners: Sequence[CommitListener]
                           ) -> dict[TopicPartition, int]:
        """The task's transaction; returns the input offsets it committed."""
        commit = Commit(self.topology, [task])
        outbox = self.outboxes[task.id]
        offsets = commit.offsets
        if not (commit.changelogs or outbox.count or offsets):
            return {}
        producer = self.producers[task.id]
        queued = outbox.queued()  # what goes into the next transaction if this one aborts
        try:
            await producer.begin_transaction()
            last = await outbox.flush(commit.changelogs)
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.group_id)
            await producer.commit_transaction()
        except ProducerFenced:
            raise
        except BaseException as exc:
            self.counters["aborted"] += 1
            if not await self._abort(task.id):
                # A fenced producer does not always say so: the other sends of its
                # transaction fail first ("not in transaction"), and it can no longer
                # abort. Whether fenced or broken, the task is given up as if fenced;
                # replacing the producer here could fence the task's new owner and commit
                # this worker's stale work over its.
                raise ProducerFenced() from exc
            # The aborted transaction took the queued records with it, also when they had
            # all been sent: queue them again, or the next commit would leave them out.
            outbox.requeue(queued)
            if isinstance(exc, ProductionFailed):
                raise  # the production-error policy decides, not another try
            if isinstance(exc, Exception) and not isinstance(exc, KafkaError):
                # Aborted: the commit is tried again, like one a broker failed.
                raise KafkaError(f"the transaction of task {task.id} failed: {exc!r}") from exc
            raise
        self.counters["transactions"] += 1
        commit.written(last, listeners)
        commit.done()
        return offsets

    async def _abort(self, tid: TaskId) -> bool:
        """Abort the task's open transaction; False if its producer cannot."""
        try:
            await self.producers[tid].abort_transaction()
            return True
        except Exception as exc:
            log.warning("could not abort the transaction of task %s: %r", tid, exc)
            return False


async def require_transactions(clients: Clients, probe_id: str) -> None:
    """Fail now, and say why, if the broker cannot run transactions: exactly-once never
    falls back to at-least-once."""
    producer = clients.producer(transactional_id=probe_id)
    try:
        await asyncio.wait_for(producer.start(), CHECK_TIMEOUT_S)
    except (KafkaError, asyncio.TimeoutError, OSError) as exc:
        raise ConfigError(
            f"STREAMKIT_PROCESSING_GUARANTEE=exactly_once needs a broker with "
            f"transactions (Apache Kafka); {clients.settings.broker} could not start "
            f"a transactional producer: {exc!r}") from exc
    finally:
        await stop_quietly(producer)


async def stop_quietly(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except Exception as exc:  # a fenced producer may fail its last requests
        log.debug("producer stop: %r", exc)
