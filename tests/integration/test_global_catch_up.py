"""A global table's catch-up on the real broker: every record acknowledged before it began is
in the table afterwards, whether or not the tail has read it, and a catch-up that finds
nothing new reads nothing (its one fetch request per leader is the whole of it), also after
a log that ends in a transaction's commit marker, which no store takes. The one request's
answer itself (readable_ends) is checked against the offsets the broker acknowledged, and
each answer it cannot use sends the catch-up the usual way."""
from __future__ import annotations

import asyncio
import os
import uuid

from aiokafka import AIOKafkaProducer, TopicPartition

from streamkit import Settings
from streamkit.clients import Clients, stop_client
from streamkit.serde import resolve
from streamkit.state.global_tables import GlobalSpec, GlobalTable, GlobalTables
from streamkit.state.readable_ends import readable_ends
from streamkit.testing.kafka import ensure_topic, produce_async

PARTITIONS = 3


async def open_tables(broker: str, topic: str, tmp_path):
    """(tables, probe, tail, settings): the worker's clients for one global table of topic,
    loaded. The tail is never polled here, so only catch-ups bring records in. broker:
    host:port, or STREAMKIT_BROKER's kafka://h:p,kafka://h:p for a cluster."""
    url = broker if "://" in broker else f"kafka://{broker}"
    # The session's profile, as its workers inherit it (the plugin sets it unless given).
    settings = Settings.from_env({**os.environ, "STREAMKIT_BROKER": url})
    clients = Clients(settings)
    tail = clients.reader(settings.global_fetch_wait_ms)
    probe = clients.reader(settings.read_to_end_wait_ms)
    for client in (tail, probe):
        await client.start()
    tables = GlobalTables([GlobalTable(GlobalSpec("customers", topic, resolve("str"),
                                                  resolve("json")))],
                          tmp_path, None, settings.read_to_end_wait_ms,
                          settings.isolation_level == "read_committed")
    return tables, probe, tail, settings


async def catch_up_until(tables, probe, tail, done, timeout_s: float = 20.0) -> None:
    """Catch up again and again until done() holds."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        assert await tables.catch_up(probe, tail, 10.0)
        if done():
            return
        assert asyncio.get_running_loop().time() < deadline, "not caught up in time"


async def test_catch_up_reads_what_was_acknowledged_before_it_and_nothing_more(
        broker, app_id, tmp_path):
    topic = f"{app_id}-customers"
    await ensure_topic(broker, topic, PARTITIONS)
    await produce_async(broker, topic, [(f"c{i}", {"n": i}) for i in range(30)])
    tables, probe, tail, _ = await open_tables(broker, topic, tmp_path)
    table = tables.tables[0]
    try:
        assert await tables.start(probe, tail, {topic: PARTITIONS}) == 30
        for _ in range(5):
            assert await tables.catch_up(probe, tail, 10.0)
        assert (tables.catch_ups, tables.catch_ups_read) == (5, 0)
        assert [table.get(f"c{i}") for i in range(30)] == [{"n": i} for i in range(30)]

        # A new key, a changed one and a deleted one, acknowledged (acks=all) just before.
        await produce_async(broker, topic, [("c100", {"n": 100}), ("c1", {"n": -1}),
                                            ("c2", None)])
        assert await tables.catch_up(probe, tail, 10.0)
        assert tables.catch_ups_read == 1
        assert (table.get("c100"), table.get("c1"), table.get("c2")) == ({"n": 100}, {"n": -1}, None)
        assert table.get("c3") == {"n": 3}

        # Each record is found by the first catch-up after it, and only that one reads.
        for i in range(5):
            await produce_async(broker, topic, [(f"d{i}", {"n": i})])
            assert await tables.catch_up(probe, tail, 10.0)
            assert table.get(f"d{i}") == {"n": i}
            assert await tables.catch_up(probe, tail, 10.0)
        assert (tables.catch_ups, tables.catch_ups_read) == (16, 6)
    finally:
        for client in (tail, probe):
            await stop_client(client)
        tables.close()


async def test_catch_up_after_a_transaction_reads_once_then_finds_nothing_new(
        broker, app_id, tmp_path):
    """A transactional producer's records end the log with a commit marker: the stores'
    checkpoints stop at the last record, the probe's position past the marker. The next
    catch-up must not take the marker for something new."""
    topic = f"{app_id}-customers"
    await ensure_topic(broker, topic, PARTITIONS)
    tables, probe, tail, settings = await open_tables(broker, topic, tmp_path)
    assert settings.isolation_level == "read_committed"  # the profile of a broker with transactions
    table = tables.tables[0]
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all",
                                transactional_id=f"{app_id}-{uuid.uuid4().hex[:6]}")
    await producer.start()
    try:
        assert await tables.start(probe, tail, {topic: PARTITIONS}) == 0
        async with producer.transaction():
            for i in range(12):
                await producer.send(topic, b'{"n": %d}' % i, key=b"c%d" % i)
        # The broker writes a transaction's markers after its commit returns: until then
        # its records are not readable (read_committed), to a catch-up as to any reader.
        # (Each partition's marker in its own time: one catch-up or more read.)
        await catch_up_until(tables, probe, tail,
                             lambda: all(table.get(f"c{i}") is not None for i in range(12)))
        assert [table.get(f"c{i}") for i in range(12)] == [{"n": i} for i in range(12)]
        read = tables.catch_ups_read
        assert read >= 1
        for _ in range(3):
            assert await tables.catch_up(probe, tail, 10.0)
        assert tables.catch_ups_read == read

        # An aborted transaction's records are never applied and, once read past, are not
        # found again either.
        await producer.begin_transaction()
        await producer.send_and_wait(topic, b'{"n": -1}', key=b"aborted")
        await producer.abort_transaction()
        await catch_up_until(tables, probe, tail, lambda: tables.catch_ups_read == read + 1)
        for _ in range(3):
            assert await tables.catch_up(probe, tail, 10.0)
        assert tables.catch_ups_read == read + 1
        assert table.get("aborted") is None
    finally:
        await producer.stop()
        for client in (tail, probe):
            await stop_client(client)
        tables.close()


async def test_readable_ends_are_the_acknowledged_ends_or_none_for_an_answer_it_cannot_use(
        broker, app_id, tmp_path):
    topic = f"{app_id}-customers"
    await ensure_topic(broker, topic, PARTITIONS)
    tables, probe, tail, _ = await open_tables(broker, topic, tmp_path)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    producer = AIOKafkaProducer(bootstrap_servers=broker, acks="all")
    txn = AIOKafkaProducer(bootstrap_servers=broker, acks="all",
                           transactional_id=f"{app_id}-{uuid.uuid4().hex[:6]}")
    await producer.start()
    await txn.start()
    try:
        await tables.start(probe, tail, {topic: PARTITIONS})  # the probe knows the leaders
        # The end of a partition is the offset after the last record acknowledged there.
        ends = {tp: 0 for tp in tps}
        for p, n in ((1, 2), (2, 5)):
            for i in range(n):
                meta = await producer.send_and_wait(topic, b"{}", key=b"k%d" % i, partition=p)
                ends[tps[p]] = meta.offset + 1
        assert [ends[tp] for tp in tps] == [0, 2, 5]
        at_start = {tp: 0 for tp in tps}
        for committed in (True, False):
            assert await readable_ends(probe, at_start, 0, committed) == ends
        # Asked from anywhere up to the end, the answer is the same.
        assert await readable_ends(probe, {tps[0]: 0, tps[1]: 2, tps[2]: 3}, 0, True) == ends

        # An open transaction's records: a read_committed reader's end stays before them;
        # once committed, its end is past them and their commit marker (one offset more).
        await txn.begin_transaction()
        for i in range(3):
            await txn.send_and_wait(topic, b"{}", key=b"t%d" % i, partition=0)
        assert (await readable_ends(probe, at_start, 0, True))[tps[0]] == 0
        assert (await readable_ends(probe, at_start, 0, False))[tps[0]] == 3
        await txn.commit_transaction()
        # The broker writes the marker after the commit returns: wait for the end to move.
        deadline = asyncio.get_running_loop().time() + 20
        while (got := await readable_ends(probe, at_start, 0, True))[tps[0]] == 0:
            assert asyncio.get_running_loop().time() < deadline, got
        assert got == {**ends, tps[0]: 4}

        # Answers it cannot use give None, and the catch-up then reads the usual way: an
        # offset past the end (the broker answers with an error), a partition no broker
        # leads (it does not exist), a topic the probe has no metadata for.
        assert await readable_ends(probe, {**at_start, tps[2]: 9}, 0, True) is None
        assert await readable_ends(probe, {**at_start, TopicPartition(topic, 7): 0}, 0,
                                   True) is None
        assert await readable_ends(probe, {TopicPartition(f"{topic}-none", 0): 0}, 0,
                                   True) is None
    finally:
        await txn.stop()
        await producer.stop()
        for client in (tail, probe):
            await stop_client(client)
        tables.close()
