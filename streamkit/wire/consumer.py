"""A group member for the request path: aiokafka's consumer keeps the membership, the
committed offsets and the starting positions; the fetches are made here (protocol.py).

Every partition the group assigns stays paused in the aiokafka consumer, so that its own
fetcher sends nothing; this one fetches them from their leaders over the consumer's
connections, one fetch in flight per broker, and hands the records out through getmany()
with the aiokafka consumer's calls beside it (pause, resume, seek, commit, ...). As in
aiokafka, a broker is not fetched from again until everything fetched from it has been
taken, and a partition's position moves when its records are taken, not when they arrive.
With read_committed, records of aborted transactions are dropped from the answer's list
of aborted transactions, and control records are skipped.
"""
from __future__ import annotations

import asyncio
import logging
import struct
import time
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CorruptRecordException, KafkaError, OffsetOutOfRangeError, for_code
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord

from ..clients import CLOSE_TIMEOUT_S, stop_client
from .metadata import RETRY_BACKOFF_S, MetadataRefresh
from .protocol import fetch_request

log = logging.getLogger(__name__)

POLL_EVERY_S = 1.0  # how often the aiokafka consumer is polled (its max.poll.interval)
# The broker's wait for a fetch while some assigned partition is paused: a long wait on the
# others would hold a resumed partition's next records until it ended (one fetch in flight
# per broker, and a broker answers a connection's requests in order).
PAUSED_FETCH_WAIT_MS = 10
PARTITION_MAX_BYTES = 1 << 20
FETCH_MAX_BYTES = 50 << 20
_CONTROL_KEY = struct.Struct(">hh")  # version, type (0 abort, 1 commit)


class _Fetched:
    __slots__ = ("records", "next_offset")

    def __init__(self, records: list[ConsumerRecord], next_offset: int) -> None:
        self.records, self.next_offset = records, next_offset


class RequestConsumer:
    """A group member with aiokafka's consumer calls, fetching on its own."""

    def __init__(self, consumer: AIOKafkaConsumer, fetch_wait_ms: int, read_committed: bool,
                 reset: str = "earliest", close_timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        self.consumer = consumer
        self.close_timeout_s = close_timeout_s
        self.fetch_wait_ms = fetch_wait_ms
        self.isolation = 1 if read_committed else 0
        self.reset = reset
        self._positions: dict[TopicPartition, int] = {}
        # The partitions a seek may move: those of the assignment in hand, none between a
        # revocation and the next assignment (a seek then would outlive it).
        self._assigned: set[TopicPartition] = set()
        self._paused: set[TopicPartition] = set()
        self._fetched: dict[TopicPartition, _Fetched] = {}
        self._fetching: dict[int, asyncio.Task] = {}  # broker -> its fetch loop
        self._arrived = asyncio.Event()
        self._generation = 0
        self._last_poll = 0.0
        # Leaders are read again from the new metadata, and the fetching goes on.
        self._refresh = MetadataRefresh(lambda: self.consumer._client, self._after_refresh,
                                        lambda: self._closed)
        self._leader: dict[TopicPartition, int] = {}  # as the metadata last said
        # A partition's error, raised by the next getmany() (as aiokafka's consumer does);
        # the partition is not fetched again until then.
        self._errors: dict[TopicPartition, Exception] = {}
        self._starting: set[asyncio.Task] = set()
        self._closed = False
        self.fetches = 0

    # aiokafka's calls --------------------------------------------------------------------
    async def start(self) -> None:
        await self.consumer.start()

    async def stop(self) -> None:
        self._closed = True
        self._stop_fetching()
        await stop_client(self.consumer, self.close_timeout_s)

    def subscribe(self, topics: list[str], listener: ConsumerRebalanceListener) -> None:
        self.consumer.subscribe(topics, listener=_Around(self, listener))

    def assignment(self) -> set[TopicPartition]:
        # aiokafka's, which still names the revoked partitions in the revocation's
        # callbacks: the callers commit them there.
        return self.consumer.assignment()

    def paused(self) -> set[TopicPartition]:
        return set(self._paused)

    def pause(self, *tps: TopicPartition) -> None:
        for tp in tps:
            self._paused.add(tp)
            self._fetched.pop(tp, None)  # its position is where its first one was
        self._kick()

    def resume(self, *tps: TopicPartition) -> None:
        self._paused.difference_update(tps)
        self._kick()

    def seek(self, tp: TopicPartition, offset: int) -> None:
        if tp not in self._assigned:
            return
        self._positions[tp] = offset
        self._fetched.pop(tp, None)
        self._kick()

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        await self.consumer.commit(offsets)

    async def position(self, tp: TopicPartition) -> int:
        """The offset of the next record getmany() hands out for tp."""
        if tp in self._positions:
            return self._positions[tp]
        return await self.consumer.position(tp)

    async def committed(self, tp: TopicPartition) -> int | None:
        return await self.consumer.committed(tp)

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None
                      ) -> dict[TopicPartition, list[ConsumerRecord]]:
        now = time.monotonic()
        if now - self._last_poll >= POLL_EVERY_S:
            # All its partitions are paused: this returns at once, raises what the group
            # coordinator met, and tells the consumer that its records are being taken.
            self._last_poll = now
            await self.consumer.getmany(timeout_ms=0)
        if not self._ready():
            self._arrived.clear()
            self._kick()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout_ms / 1000)
            except asyncio.TimeoutError:
                return {}
        if self._errors and not any(tp not in self._paused for tp in self._fetched):
            tp, exc = self._errors.popitem()
            self._kick()
            raise exc
        out, room = {}, max_records or 1 << 62
        for tp in list(self._fetched):
            if room <= 0:
                break
            if tp in self._paused:
                continue
            got = self._fetched[tp]
            taken = got.records[:room]
            out[tp] = taken
            room -= len(taken)
            if len(taken) == len(got.records):
                del self._fetched[tp]
                self._positions[tp] = got.next_offset
            else:
                got.records = got.records[len(taken):]
                self._positions[tp] = taken[-1].offset + 1
        if out:
            self._kick()
        return out

    def _ready(self) -> bool:
        return bool(self._errors) or any(tp not in self._paused for tp in self._fetched)

    # the group's assignment --------------------------------------------------------------
    def revoked(self) -> None:
        """Everything of the assignment ends with it; a new one starts unpaused, as in
        aiokafka."""
        self._generation += 1
        self._assigned.clear()
        self._positions.clear()
        self._leader.clear()
        self._fetched.clear()
        self._errors.clear()
        self._paused.clear()
        self._stop_fetching()

    async def assigned(self, tps: set[TopicPartition]) -> None:
        """Keep aiokafka's fetcher off them; start each at its position (the committed
        offset, or the reset policy's), unless a seek came first."""
        self.consumer.pause(*tps)
        self._assigned = set(tps)
        loop = asyncio.get_running_loop()
        for tp in tps:
            task = loop.create_task(self._start_at(tp, self._generation))
            self._starting.add(task)
            task.add_done_callback(self._starting.discard)

    async def _start_at(self, tp: TopicPartition, generation: int) -> None:
        """Each partition on its own, so that one whose leader is away holds up no other;
        retried until it is read or the assignment has moved on."""
        while generation == self._generation and not self._closed:
            try:
                offset = await self.consumer.position(tp)
            except KafkaError as exc:
                log.info("position of %s[%d] not read, retrying: %r", tp.topic, tp.partition,
                         exc)
                await asyncio.sleep(RETRY_BACKOFF_S)
                continue
            if generation == self._generation:
                self._positions.setdefault(tp, offset)
                self._kick()
            return

    # fetching ----------------------------------------------------------------------------
    def _stop_fetching(self) -> None:
        for task in (*self._fetching.values(), *self._starting):
            task.cancel()
        self._fetching.clear()

    def _leaders(self) -> dict[int, list[tuple[TopicPartition, int]]]:
        """The partitions to fetch and where they are, by broker. Positions are kept for
        assigned partitions only (revoked() clears them)."""
        leader, cluster = self._leader, self.consumer._client.cluster
        out: dict[int, list[tuple[TopicPartition, int]]] = {}
        for tp, offset in self._positions.items():
            if tp in self._paused or tp in self._errors:
                continue
            node = leader.get(tp)
            if node is None:
                node = cluster.leader_for_partition(tp)
                if node is None or node < 0:
                    self._refresh()
                    continue
                leader[tp] = node
            out.setdefault(node, []).append((tp, offset))
        return out

    def _kick(self) -> None:
        """A fetch loop for each broker that leads a partition to fetch and has none."""
        if self._closed:
            return
        for node in self._leaders():
            task = self._fetching.get(node)
            if task is None or task.done():
                self._fetching[node] = asyncio.get_running_loop().create_task(
                    self._fetch_from(node))

    async def _fetch_from(self, node: int) -> None:
        try:
            await self._fetch_loop(node)
        finally:
            # Gone from the map as the loop ends, not in a done callback a turn of the event
            # loop later: a getmany() in between would find it still there, start none,
            # and wait its whole timeout for records nobody fetches.
            if self._fetching.get(node) is asyncio.current_task():
                del self._fetching[node]

    def _after_refresh(self) -> None:
        self._leader.clear()
        self._kick()

    async def _fetch_loop(self, node: int) -> None:
        client = self.consumer._client
        while True:
            wanted = self._leaders().get(node)
            # Not while records it sent wait to be taken (getmany() starts this again).
            if not wanted or any(tp in self._fetched for tp, _ in wanted):
                return
            generation = self._generation
            wait = min(self.fetch_wait_ms, PAUSED_FETCH_WAIT_MS) if self._paused \
                else self.fetch_wait_ms
            request = fetch_request(((tp.topic, tp.partition, offset) for tp, offset in wanted),
                                    wait, 1, FETCH_MAX_BYTES, PARTITION_MAX_BYTES, self.isolation)
            self.fetches += 1
            try:
                error, answer = await client.send(node, request)
            except (KafkaError, OSError, asyncio.TimeoutError) as exc:
                log.info("fetch from broker %d failed, retrying: %r", node, exc)
                self._leader.clear()
                self._refresh()
                await asyncio.sleep(RETRY_BACKOFF_S)
                continue
            if generation != self._generation:
                return
            if error:
                log.info("fetch from broker %d answered %r", node, for_code(error))
                await asyncio.sleep(RETRY_BACKOFF_S)
                continue
            asked = dict(wanted)
            backoff, out_of_range = False, []
            for topic, parts in answer.items():
                for p in parts:
                    tp = TopicPartition(topic, p.partition)
                    offset = asked.get(tp)
                    if offset is None or self._positions.get(tp) != offset or tp in self._paused:
                        continue  # moved, paused or sought meanwhile
                    if p.error:
                        error = for_code(p.error)
                        if error is OffsetOutOfRangeError:
                            out_of_range.append((tp, offset))
                        elif getattr(error, "retriable", False) or \
                                getattr(error, "invalid_metadata", False):
                            self._leader.pop(tp, None)  # a leader moved, most likely
                            self._refresh()
                            backoff = True
                        else:
                            self._errors[tp] = error(f"fetch of {tp.topic}[{tp.partition}]")
                        continue
                    try:
                        records, next_offset = decode_records(tp, offset, p.records, p.aborted)
                    except KafkaError as exc:  # the batch at the position does not decode
                        self._errors[tp] = exc
                        continue
                    if records:
                        self._fetched[tp] = _Fetched(records, next_offset)
                    elif next_offset > offset:  # only control records or aborted ones
                        self._positions[tp] = next_offset
            # What came is handed out first; a partition's trouble then waits once.
            if self._ready():
                self._arrived.set()
            for tp, offset in out_of_range:
                await self._reset(tp, offset)
            if backoff:
                await asyncio.sleep(RETRY_BACKOFF_S)

    async def _reset(self, tp: TopicPartition, offset: int) -> None:
        """A position past the log's ends moves by the reset policy (or, with none, the
        error goes to the caller), unless a seek moved it meanwhile."""
        if self.reset not in ("earliest", "latest"):
            self._errors[tp] = OffsetOutOfRangeError(f"{tp.topic}[{tp.partition}]@{offset}")
            self._arrived.set()
            return
        try:
            ends = await (self.consumer.beginning_offsets([tp]) if self.reset == "earliest"
                          else self.consumer.end_offsets([tp]))
        except KafkaError as exc:
            log.info("offsets of %s[%d] not read, retrying: %r", tp.topic, tp.partition, exc)
            return
        if self._positions.get(tp) == offset:
            log.warning("%s[%d]: offset %d out of range, reset to %d", tp.topic, tp.partition,
                        offset, ends[tp])
            self._positions[tp] = ends[tp]


class _Around(ConsumerRebalanceListener):
    """The user's rebalance callbacks, with the fetching stopped before a revocation's and
    the new partitions paused in aiokafka before an assignment's."""

    def __init__(self, owner: RequestConsumer, inner: ConsumerRebalanceListener) -> None:
        self.owner, self.inner = owner, inner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.owner.revoked()
        await self.inner.on_partitions_revoked(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.owner.assigned(set(assigned))
        await self.inner.on_partitions_assigned(assigned)


def decode_records(tp: TopicPartition, position: int, data: bytes | None,
                   aborted: list[tuple[int, int]] | None) -> tuple[list[ConsumerRecord], int]:
    """The records of a fetch answer from position on, and the offset after its last whole
    batch; records of aborted transactions and control records left out.

    A batch that fails its CRC or does not decode (a codec missing, say) ends the answer
    there: what came before it is handed out, and the error is raised only when that batch
    is the first at the position, so that a caller gets every good record first."""
    out: list[ConsumerRecord] = []
    next_offset = position
    if not data:
        return out, next_offset
    pending = sorted(aborted or (), key=lambda a: a[1])
    aborting: set[int] = set()
    batches = MemoryRecords(data)
    while True:
        try:
            batch = batches.next_batch()
            if batch is None:
                break
            if not batch.validate_crc():
                raise CorruptRecordException(
                    f"{tp.topic}[{tp.partition}]: the batch at offset {batch.base_offset} "
                    f"fails its CRC")
            got = _batch_records(tp, position, batch, pending, aborting)
        except Exception as exc:
            if out or next_offset > position:
                return out, next_offset
            if isinstance(exc, KafkaError):
                raise
            raise CorruptRecordException(
                f"{tp.topic}[{tp.partition}]@{position}: {exc!r}") from exc
        out += got
        next_offset = max(next_offset, batch.next_offset)
    return out, next_offset


def _batch_records(tp: TopicPartition, position: int, batch: Any,
                   pending: list[tuple[int, int]], aborting: set[int]) -> list[ConsumerRecord]:
    """One batch's records for the caller; pending and aborting carry the aborted
    transactions' state from batch to batch."""
    last = batch.next_offset - 1
    while pending and pending[0][1] <= last:
        aborting.add(pending.pop(0)[0])
    if batch.is_control_batch:
        for rec in batch:
            if rec.key and len(rec.key) >= 4 and _CONTROL_KEY.unpack_from(rec.key)[1] == 0:
                aborting.discard(batch.producer_id)
        return []
    if batch.is_transactional and batch.producer_id in aborting:
        return []
    topic, partition, out = tp.topic, tp.partition, []
    for rec in batch:
        if rec.offset < position:
            continue
        key, value = rec.key, rec.value
        out.append(ConsumerRecord(topic, partition, rec.offset, rec.timestamp,
                                  rec.timestamp_type, key, value, None,
                                  len(key) if key is not None else -1,
                                  len(value) if value is not None else -1,
                                  tuple(rec.headers)))
    return out
