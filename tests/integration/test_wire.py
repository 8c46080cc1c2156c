"""The request path's clients (streamkit.wire) on the real broker: what RequestProducer sends
is where aiokafka's partitioner puts it, at the offsets the broker reports, as aiokafka's
consumer reads it back; RequestConsumer reads it in order as a group member, commits,
pauses, seeks, resets an offset out of range, and with read_committed leaves out aborted
transactions and the transactions' markers. Batches the broker compressed (a topic's
compression.type) are read; a topic that takes smaller batches than a request gets them;
a producer stopped while its broker does not answer fails what it had sent."""
from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import ProducerClosed
from aiokafka.partitioner import DefaultPartitioner

from streamkit import Settings, devbroker
from streamkit.clients import Clients, Rebalance
from streamkit.testing.kafka import create_topic, ensure_topic, read_topic_async
from streamkit.wire import RequestConsumer, RequestProducer

PARTITIONS = 3


def _clients(broker: str) -> Clients:
    url = broker if "://" in broker else f"kafka://{broker}"
    return Clients(Settings.from_env({**os.environ, "STREAMKIT_BROKER": url}))


async def _member(broker: str, group: str, topic: str, read_committed: bool = False
                  ) -> RequestConsumer:
    consumer = RequestConsumer(_clients(broker).member(group, 100), 100, read_committed)
    await consumer.start()
    consumer.subscribe([topic], listener=Rebalance(lambda: None, lambda tps: None))
    return consumer


async def _take(consumer: RequestConsumer, count: int, timeout_s: float = 30.0
                ) -> list[tuple[int, int, bytes | None, bytes | None]]:
    """(partition, offset, key, value) of the next `count` records, in the order taken."""
    out: list = []
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(out) < count:
        assert asyncio.get_running_loop().time() < deadline, f"{len(out)} of {count} read"
        for tp, recs in (await consumer.getmany(timeout_ms=200)).items():
            out += [(tp.partition, r.offset, r.key, r.value) for r in recs]
    return out


async def _nothing_more(consumer: RequestConsumer, wait_s: float = 1.5) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + wait_s
    while loop.time() < end:
        assert await consumer.getmany(timeout_ms=200) == {}


async def test_records_go_where_aiokafka_puts_them_and_come_back_in_order(broker, app_id):
    topic = f"{app_id}-wire"
    await ensure_topic(broker, topic, PARTITIONS)
    producer = RequestProducer(_clients(broker).producer())
    await producer.start()
    try:
        sent = []
        for i in range(300):
            key = f"k{i % 57}".encode()
            # Every fifth record names its partition; the rest go by key.
            partition = i % PARTITIONS if i % 5 == 0 else None
            future = await producer.send(topic, f"v{i}".encode(), key=key, partition=partition)
            sent.append((key, f"v{i}".encode(), partition, future))
        metas = await asyncio.gather(*(f for *_, f in sent))
    finally:
        await producer.stop()
    by_key = DefaultPartitioner()
    for (key, _, partition, _), meta in zip(sent, metas):
        want = partition if partition is not None else \
            by_key(key, list(range(PARTITIONS)), list(range(PARTITIONS)))
        assert (meta.topic, meta.partition) == (topic, want)
    # Offsets count up from 0 per partition in the order sent.
    for p in range(PARTITIONS):
        assert [m.offset for m in metas if m.partition == p] == \
            list(range(sum(m.partition == p for m in metas)))
    # aiokafka's consumer reads exactly that back.
    back = {(r.partition, r.offset): (r.key, r.value)
            for r in await read_topic_async(broker, topic)}
    assert back == {(m.partition, m.offset): (key, value)
                    for (key, value, _, _), m in zip(sent, metas)}

    consumer = await _member(broker, f"{app_id}-g", topic)
    try:
        got = await _take(consumer, 300)
        assert sorted(got) == sorted((m.partition, m.offset, k, v)
                                     for (k, v, _, _), m in zip(sent, metas))
        for p in range(PARTITIONS):  # in offset order within each partition
            offsets = [o for q, o, _, _ in got if q == p]
            assert offsets == sorted(offsets)
        await _nothing_more(consumer)
        # Half of each partition's records committed.
        half = {p: sum(m.partition == p for m in metas) // 2 for p in range(PARTITIONS)}
        await consumer.commit({TopicPartition(topic, p): half[p] for p in range(PARTITIONS)})
    finally:
        await consumer.stop()
    # A member of the same group starts at the committed offsets.
    again = await _member(broker, f"{app_id}-g", topic)
    try:
        after = sorted((m.partition, m.offset, k, v) for (k, v, _, _), m in zip(sent, metas)
                       if m.offset >= half[m.partition])
        assert sorted(await _take(again, len(after))) == after
        await _nothing_more(again)
    finally:
        await again.stop()


async def test_pause_resume_seek_and_an_offset_out_of_range(broker, app_id):
    topic = f"{app_id}-wire"
    await ensure_topic(broker, topic, 1)
    tp = TopicPartition(topic, 0)
    producer = RequestProducer(_clients(broker).producer())
    await producer.start()
    consumer = await _member(broker, f"{app_id}-g", topic)
    try:
        await producer.send_and_wait(topic, b"first", key=b"a")
        assert [v for *_, v in await _take(consumer, 1)] == [b"first"]
        consumer.pause(tp)
        await producer.send_and_wait(topic, b"second", key=b"a")
        await _nothing_more(consumer)  # paused: nothing is handed out
        consumer.resume(tp)
        assert [v for *_, v in await _take(consumer, 1)] == [b"second"]
        consumer.seek(tp, 0)
        assert [(o, v) for _, o, _, v in await _take(consumer, 2)] == [(0, b"first"),
                                                                     (1, b"second")]
        # Past the log's end: the member's reset policy (earliest) starts it again at 0.
        consumer.seek(tp, 1_000_000)
        assert [(o, v) for _, o, _, v in await _take(consumer, 2)] == [(0, b"first"),
                                                                     (1, b"second")]
        await _nothing_more(consumer)
    finally:
        await consumer.stop()
        await producer.stop()


async def test_read_committed_leaves_out_aborted_transactions_and_markers(broker, app_id):
    topic = f"{app_id}-wire"
    await ensure_topic(broker, topic, 1)
    tp = TopicPartition(topic, 0)
    txn = AIOKafkaProducer(bootstrap_servers=broker, transactional_id=f"{app_id}-txn")
    committed = await _member(broker, f"{app_id}-rc", topic, read_committed=True)
    everything = await _member(broker, f"{app_id}-ru", topic, read_committed=False)
    plain = RequestProducer(_clients(broker).producer())
    await txn.start()
    await plain.start()

    async def transaction(values: list[bytes], commit: bool) -> None:
        await txn.begin_transaction()
        for v in values:
            await txn.send_and_wait(topic, v, key=b"k")
        await (txn.commit_transaction() if commit else txn.abort_transaction())

    try:
        await transaction([b"a0", b"a1"], commit=True)  # offsets 0, 1, the marker 2
        assert [v for *_, v in await _take(committed, 2)] == [b"a0", b"a1"]
        await transaction([b"b0", b"b1"], commit=False)  # 3, 4, the marker 5
        # A fetch that finds only an aborted transaction hands out nothing, and moves the
        # position past it and its marker.
        await _nothing_more(committed)
        assert await committed.position(tp) == 6
        await transaction([b"c0"], commit=True)  # 6, the marker 7
        assert [v for *_, v in await _take(committed, 1)] == [b"c0"]
        assert [v for *_, v in await _take(everything, 5)] == [b"a0", b"a1", b"b0", b"b1",
                                                                b"c0"]
        await _nothing_more(committed)
        meta = await plain.send_and_wait(topic, b"d0", key=b"k")
        assert meta.offset == 8  # 5 records and 3 markers before it
        assert await _take(committed, 1) == [(0, 8, b"k", b"d0")]
        assert await _take(everything, 1) == [(0, 8, b"k", b"d0")]
    finally:
        for c in (committed, everything):
            await c.stop()
        await plain.stop()
        await txn.stop()


async def test_a_partition_resumed_during_a_long_fetch_wait_is_fetched_at_once(broker, app_id):
    # The broker may hold a fetch for the member's whole wait (a minute here) when its
    # partitions have nothing new; a partition resumed meanwhile must not wait for it.
    topic = f"{app_id}-wire"
    await ensure_topic(broker, topic, 2)
    busy = TopicPartition(topic, 0)
    consumer = RequestConsumer(_clients(broker).member(f"{app_id}-g", 60_000), 60_000, False)
    await consumer.start()
    consumer.subscribe([topic], listener=Rebalance(lambda: None, lambda tps: None))
    producer = RequestProducer(_clients(broker).producer())
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"r0", partition=0)
        assert [v for *_, v in await _take(consumer, 1)] == [b"r0"]
        consumer.pause(busy)
        await producer.send_and_wait(topic, b"r1", partition=0)
        await _nothing_more(consumer)
        consumer.resume(busy)
        assert await _take(consumer, 1, timeout_s=30) == [(0, 1, None, b"r1")]
    finally:
        await consumer.stop()
        await producer.stop()


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_batches_the_broker_compressed_are_read(broker, app_id, codec):
    # The broker writes every batch of such a topic compressed with the topic's codec, as a
    # producer with that compression.type would: the records come back as sent.
    topic = f"{app_id}-{codec}"
    await create_topic(broker, topic, **{"compression.type": codec})
    producer = RequestProducer(_clients(broker).producer())
    await producer.start()
    try:
        sent = [(f"k{i}".encode(), f"{codec}-{i}".encode() * 20) for i in range(50)]
        await asyncio.gather(*[await producer.send(topic, v, key=k, partition=0)
                               for k, v in sent])
    finally:
        await producer.stop()
    consumer = await _member(broker, f"{app_id}-g", topic)
    try:
        assert await _take(consumer, 50) == [(0, i, k, v) for i, (k, v) in enumerate(sent)]
    finally:
        await consumer.stop()


async def test_a_topic_that_takes_smaller_batches_gets_them_in_order(broker, app_id):
    # 200 records of 1 KiB sent together make one batch of about 200 KiB; the topic takes
    # at most 16 KiB a batch (its max.message.bytes).
    topic = f"{app_id}-small"
    await create_topic(broker, topic, **{"max.message.bytes": str(16 * 1024)})
    producer = RequestProducer(_clients(broker).producer())
    await producer.start()
    try:
        values = [f"{i:04d}".encode() * 256 for i in range(200)]
        metas = await asyncio.gather(*[await producer.send(topic, v, partition=0)
                                       for v in values])
    finally:
        await producer.stop()
    assert [m.offset for m in metas] == list(range(200))
    back = await read_topic_async(broker, topic)
    assert [(r.offset, r.value) for r in back] == list(enumerate(values))


async def test_a_record_the_producer_cannot_send_is_refused_and_the_others_go(broker, app_id):
    topic = f"{app_id}-wire"
    await ensure_topic(broker, topic, 1)
    producer = RequestProducer(_clients(broker).producer())
    await producer.start()
    try:
        first = await producer.send(topic, b"first", partition=0)
        with pytest.raises(ValueError, match="timestamp"):
            await producer.send(topic, b"late", partition=0, timestamp_ms=1 << 63)
        with pytest.raises(ValueError, match="timestamp"):
            await producer.send(topic, b"early", partition=0, timestamp_ms=-5)
        with pytest.raises(TypeError, match="headers"):
            await producer.send(topic, b"odd", partition=0, headers=[("h", "not bytes")])
        last = await producer.send(topic, b"last", partition=0, timestamp_ms=1234,
                                   headers=[("h", b"1")])
        metas = await asyncio.gather(first, last)
    finally:
        await producer.stop()
    assert [m.offset for m in metas] == [0, 1]
    back = await read_topic_async(broker, topic)
    assert [(r.value, list(r.headers)) for r in back] == [(b"first", []),
                                                          (b"last", [("h", b"1")])]
    assert back[1].timestamp == 1234


async def _stopped(pid: int, timeout_s: float = 10.0) -> None:
    """Wait until every thread of pid is stopped by its signal (state T in /proc): kill()
    returns before a running thread has stopped, and may still answer meanwhile."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        states = set()
        for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
            # The state follows the command name, which is in parentheses.
            states.add(stat.read_text().rsplit(")", 1)[1].split()[0])
        if states == {"T"}:
            return
        assert loop.time() < deadline, f"process {pid} not stopped: {states}"
        await asyncio.sleep(0.01)


async def test_what_a_stopped_producer_had_sent_to_a_silent_broker_fails(app_id):
    # The broker of its own is frozen (SIGSTOP) with a produce request on its way; stop()
    # waits its delivery timeout, then fails that record instead of leaving it waiting.
    broker = devbroker.start()
    frozen = False
    try:
        topic = f"{app_id}-silent"
        await ensure_topic(broker.bootstrap, topic, 1)
        producer = RequestProducer(_clients(broker.bootstrap).producer(),
                                   delivery_timeout_ms=1000)
        await producer.start()
        await producer.send_and_wait(topic, b"before", partition=0)
        os.kill(broker.pid, signal.SIGSTOP)
        frozen = True
        await _stopped(broker.pid)
        future = await producer.send(topic, b"during", partition=0)
        await producer.stop()
        assert future.done()
        # (A record the broker acknowledged would show its metadata here.)
        assert isinstance(future.exception(), ProducerClosed), \
            future.exception() or future.result()
        with pytest.raises(ProducerClosed):
            await producer.send(topic, b"after", partition=0)
    finally:
        if frozen:
            os.kill(broker.pid, signal.SIGCONT)
        broker.stop()


async def test_a_seek_in_a_revocation_callback_is_ignored(broker, app_id):
    # A seek after the revocation (here in the user's callback, called after the member's
    # own) would otherwise outlive it: a partition assigned to the member again would start
    # there instead of at its committed offset. A second member joins: each keeps one of
    # the two partitions.
    topic = f"{app_id}-wire"
    await ensure_topic(broker, topic, 2)
    tps = [TopicPartition(topic, p) for p in range(2)]
    armed: list[bool] = []
    assignments: list[set[TopicPartition]] = []

    def revoked() -> None:
        for tp in tps if armed else ():
            consumer.seek(tp, 2)

    consumer = RequestConsumer(_clients(broker).member(f"{app_id}-g", 100), 100, False)
    await consumer.start()
    consumer.subscribe([topic], listener=Rebalance(revoked, assignments.append))
    producer = RequestProducer(_clients(broker).producer())
    await producer.start()
    second = None
    try:
        for p in range(2):
            for v in (b"r0", b"r1", b"r2"):
                await producer.send_and_wait(topic, v, partition=p)
        assert sorted((p, o) for p, o, _, _ in await _take(consumer, 6)) == \
            [(p, o) for p in range(2) for o in range(3)]
        await consumer.commit({tp: 1 for tp in tps})
        armed.append(True)
        second = await _member(broker, f"{app_id}-g", topic)
        before = len(assignments)
        got: list = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(assignments) == before or len(got) < 2:
            assert loop.time() < deadline, (assignments, got)
            for recs in (await consumer.getmany(timeout_ms=100)).values():
                got += [(r.partition, r.offset, r.value) for r in recs]
            await second.getmany(timeout_ms=10)
        (kept,) = assignments[-1]
        assert got == [(kept.partition, 1, b"r1"), (kept.partition, 2, b"r2")]
    finally:
        for c in (consumer, second):
            if c is not None:
                await c.stop()
        await producer.stop()
