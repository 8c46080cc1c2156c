"""A producer for the request path: aiokafka's producer's connections and metadata, with
produce requests built and answered here (protocol.py).

Records wait per partition. A broker with no produce request of ours in flight gets one at
once with everything waiting for the partitions it leads (one record batch per partition);
what arrives meanwhile goes in the next, so batches grow with the load without a linger
window. A partition is in at most one request at a time and a retried batch goes back to the
front of its queue, so records keep their order per partition. Retriable errors (a leader
moved, a broker gone, a timeout) are retried after a metadata refresh until the record's
delivery deadline; acks=all, not idempotent: a retry after a lost answer may write a record
twice (at least once, as aiokafka's producer without idempotence).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import random
import time
from typing import Any, Iterable

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    ProducerClosed,
    RecordListTooLargeError,
    for_code,
)
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata

from ..clients import CLOSE_TIMEOUT_S, stop_client
from ..partitioner import partition_for
from .metadata import RETRY_BACKOFF_S, MetadataRefresh
from .protocol import produce_request

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1 << 20  # aiokafka's max_request_size, and the broker's default
TOO_LARGE = (MessageSizeTooLargeError, RecordListTooLargeError)


class _Record:
    __slots__ = ("key", "value", "headers", "timestamp", "future", "deadline")

    def __init__(self, key: bytes | None, value: bytes | None, headers: list, timestamp: int,
                 future: asyncio.Future, deadline: float) -> None:
        self.key, self.value, self.headers = key, value, headers
        self.timestamp, self.future, self.deadline = timestamp, future, deadline


class RequestProducer:
    """send() as AIOKafkaProducer's (a future of the record's RecordMetadata), for records
    outside transactions; start() and stop() start and stop the aiokafka producer too."""

    def __init__(self, producer: AIOKafkaProducer, delivery_timeout_ms: int = 40_000,
                 request_timeout_ms: int = 30_000, close_timeout_s: float = CLOSE_TIMEOUT_S
                 ) -> None:
        self.producer = producer
        self.delivery_s = delivery_timeout_ms / 1000
        self.close_timeout_s = close_timeout_s
        self.request_timeout_ms = request_timeout_ms
        self._waiting: dict[TopicPartition, collections.deque[_Record]] = {}
        self._in_request: set[TopicPartition] = set()
        self._busy: set[int] = set()  # brokers with a request of ours in flight
        self._tasks: set[asyncio.Task] = set()
        self._refresh = MetadataRefresh(lambda: self.producer.client, self._after_refresh,
                                        lambda: self._closed)
        self._closed = False
        # A partition's batch size after the broker refused a batch as too large.
        self._batch_cap: dict[TopicPartition, int] = {}
        self.requests = 0  # produce requests sent

    async def start(self) -> None:
        await self.producer.start()

    async def stop(self) -> None:
        """Wait (up to the delivery timeout, and the close timeout) for what was sent, then
        stop the producer; what is still unacknowledged then fails with ProducerClosed."""
        deadline = time.monotonic() + min(self.delivery_s, self.close_timeout_s)
        while (self._tasks or self._in_request or any(self._waiting.values())) \
                and time.monotonic() < deadline:
            await asyncio.wait(self._tasks or [asyncio.ensure_future(asyncio.sleep(0.05))],
                               timeout=0.05)
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for queue in self._waiting.values():
            self._fail(queue, ProducerClosed("the producer stopped before the broker "
                                             "acknowledged the record"))
        await stop_client(self.producer, self.close_timeout_s)

    async def partitions_for(self, topic: str) -> set[int]:
        return await self.producer.partitions_for(topic)

    async def send_and_wait(self, topic: str, value: bytes | None = None,
                            key: bytes | None = None, **kw: Any) -> RecordMetadata:
        return await (await self.send(topic, value, key, **kw))

    async def send(self, topic: str, value: bytes | None = None, key: bytes | None = None,
                   partition: int | None = None, timestamp_ms: int | None = None,
                   headers: list | None = None) -> asyncio.Future:
        if self._closed:
            raise ProducerClosed("the producer has stopped")
        if value is None and key is None:
            raise ValueError("a record needs a key or a value")
        for name, raw in (("key", key), ("value", value)):
            if raw is not None and not isinstance(raw, (bytes, bytearray)):
                raise TypeError(f"a record's {name} is bytes or None, not {type(raw).__name__}")
        if timestamp_ms is not None and (type(timestamp_ms) is not int
                                         or not 0 <= timestamp_ms < 1 << 63):
            raise ValueError(f"a record's timestamp is milliseconds since the epoch, an int "
                             f"from 0 to 2**63 - 1, not {timestamp_ms!r}")
        headers = headers or []
        if not all(isinstance(h, tuple) and len(h) == 2 and isinstance(h[0], str)
                   and (h[1] is None or isinstance(h[1], (bytes, bytearray))) for h in headers):
            raise TypeError("a record's headers are (str, bytes or None) pairs")
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
        if size > MAX_REQUEST_BYTES:
            raise MessageSizeTooLargeError(f"the record is {size} bytes, more than "
                                           f"{MAX_REQUEST_BYTES}")
        # As the metadata says now (aiokafka refreshes it every few minutes): partitions
        # added to a topic are used, as aiokafka's partitioner does.
        partitions = self.producer.client.cluster.partitions_for_topic(topic)
        if partitions is None:
            partitions = await self.producer.partitions_for(topic)
        count = len(partitions)
        if partition is None:
            partition = partition_for(key, count) if key is not None else random.randrange(count)
        elif not 0 <= partition < count:
            raise ValueError(f"{topic} has no partition {partition}")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        now = time.time()
        ts = timestamp_ms if timestamp_ms is not None else int(now * 1000)
        tp = TopicPartition(topic, partition)
        queue = self._waiting.get(tp)
        if queue is None:
            queue = self._waiting[tp] = collections.deque()
        queue.append(_Record(key, value, headers, ts, future, time.monotonic() + self.delivery_s))
        if tp not in self._in_request:
            self._to_leader(tp)
        return future

    # sending ---------------------------------------------------------------------------
    def _to_leader(self, tp: TopicPartition) -> None:
        node = self.producer.client.cluster.leader_for_partition(tp)
        if node is None or node < 0:
            self._refresh()
        elif node not in self._busy:
            self._busy.add(node)
            task = asyncio.get_running_loop().create_task(self._drain(node))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _after_refresh(self) -> None:
        """Fail what has waited past its deadline and send the rest to its leaders."""
        now = time.monotonic()
        for tp, queue in self._waiting.items():
            if queue and tp not in self._in_request:
                self._expire(tp, queue, now)
                if queue:
                    self._to_leader(tp)

    def _expire(self, tp: TopicPartition, queue: collections.deque[_Record], now: float
                ) -> None:
        """Drop from the front of a partition's queue what was given up on or is late."""
        while queue and (queue[0].future.done() or queue[0].deadline < now):
            rec = queue.popleft()
            if not rec.future.done():
                rec.future.set_exception(KafkaTimeoutError(
                    f"{tp.topic}[{tp.partition}]: not acknowledged within {self.delivery_s} s"))

    @staticmethod
    def _fail(records: Iterable[_Record], exc: BaseException) -> None:
        for rec in records:
            if not rec.future.done():
                rec.future.set_exception(exc)

    async def _drain(self, node: int) -> None:
        try:
            while True:
                batches = self._collect(node)
                if not batches:
                    return
                await self._send(node, batches)
        finally:
            self._busy.discard(node)

    def _collect(self, node: int) -> dict[TopicPartition, tuple[bytes, list[_Record]]]:
        """One batch per waiting partition that node leads, as much as fits a request."""
        cluster, now = self.producer.client.cluster, time.monotonic()
        out: dict[TopicPartition, tuple[bytes, list[_Record]]] = {}
        room = MAX_REQUEST_BYTES - 1024
        for tp, queue in self._waiting.items():
            if not queue or tp in self._in_request:
                continue
            leader = cluster.leader_for_partition(tp)
            if leader != node:
                if leader is None or leader < 0:
                    self._refresh()
                elif leader not in self._busy:
                    self._to_leader(tp)
                continue
            if room <= 0:
                break
            size = min(room, self._batch_cap.get(tp, room))
            builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, size)
            taken: list[_Record] = []
            while queue:
                self._expire(tp, queue, now)
                if not queue:
                    break
                rec = queue[0]
                try:
                    appended = builder.append(len(taken), rec.timestamp, rec.key, rec.value,
                                              rec.headers)
                except Exception as exc:  # send() checks what it can; this record alone fails
                    queue.popleft()
                    self._fail((rec,), exc)
                    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, -1, size)
                    for i, r in enumerate(taken):  # what the failed append may have left
                        builder.append(i, r.timestamp, r.key, r.value, r.headers)
                    continue
                if appended is None:
                    break
                taken.append(queue.popleft())
            if taken:
                data = builder.build()
                room -= len(data)
                out[tp] = (data, taken)
                self._in_request.add(tp)
        return out

    async def _send(self, node: int, batches: dict[TopicPartition, tuple[bytes, list[_Record]]]
                    ) -> None:
        request = produce_request(((tp.topic, tp.partition, data)
                                   for tp, (data, _) in batches.items()), self.request_timeout_ms)
        self.requests += 1
        try:
            answer = await self.producer.client.send(node, request)
        except (KafkaError, OSError, asyncio.TimeoutError) as exc:
            log.info("produce request to broker %d failed, retrying: %r", node, exc)
            self._again(batches)
            return
        except asyncio.CancelledError:  # stop() gave up waiting for the answer
            for _, records in batches.values():
                self._fail(records, ProducerClosed("the producer stopped before the broker "
                                                   "acknowledged the record"))
            raise
        retry = {}
        for topic, parts in answer.items():
            for p in parts:
                tp = TopicPartition(topic, p.partition)
                if tp not in batches:
                    continue
                data, records = batches.pop(tp)
                error = for_code(p.error) if p.error else None
                if error in TOO_LARGE and len(records) > 1:
                    # The topic takes smaller batches than one request (its
                    # max.message.bytes): the records go again in batches of half the size.
                    self._batch_cap[tp] = max(len(data) // 2, 1)
                    retry[tp] = (b"", records)
                    continue
                if error is not None and getattr(error, "retriable", False):
                    retry[tp] = (b"", records)  # still the partition's request in flight
                    continue
                self._in_request.discard(tp)
                if error is not None:
                    self._fail(records, error(p.message or f"{topic}[{p.partition}]"))
                    continue
                # LogAppendTime topics give the broker's time; CreateTime ones -1.
                appended = p.log_append_time >= 0
                for i, rec in enumerate(records):
                    if not rec.future.done():
                        rec.future.set_result(RecordMetadata(
                            topic, p.partition, tp, p.base_offset + i,
                            p.log_append_time if appended else rec.timestamp, int(appended),
                            p.log_start_offset))
        retry.update(batches)  # a partition the answer left out
        if retry:
            self._again(retry)

    def _again(self, batches: dict[TopicPartition, tuple[bytes, list[_Record]]]) -> None:
        """Put the records back at the front of their queues, in order, and send them once
        the metadata has been read again and a backoff has passed. Until then each of
        these partitions still counts as in a request, so that no other broker's drain
        sends its later records first; this broker's drain goes on with the others."""
        for tp, (_, records) in batches.items():
            self._waiting[tp].extendleft(reversed(records))
        self._refresh()

        def release() -> None:
            for tp in batches:
                self._in_request.discard(tp)
            if not self._closed:
                for tp in batches:
                    self._to_leader(tp)

        asyncio.get_running_loop().call_later(RETRY_BACKOFF_S, release)
