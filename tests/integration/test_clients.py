"""A consumer stopped after its broker is gone. aiokafka's own stop() can raise the
CancelledError of a fetch that waits to retry, half way through, leaving its connections
open; streamkit's stop_client (what the workers, services and gateways stop their clients
with) ends it without raising, and still passes on a cancellation of its caller."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamkit import devbroker
from streamkit.clients import stop_client
from streamkit.testing.kafka import ensure_topic


async def consumer_after_its_broker_died() -> AIOKafkaConsumer:
    """A consumer that fetched a partition of a dev broker of its own, which was then stopped
    (by its PID); returned once the consumer has noticed (no connection left open) and
    fetched on."""
    broker = devbroker.start()
    try:
        await ensure_topic(broker.bootstrap, "events", 1)
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, fetch_max_wait_ms=100,
                                    enable_auto_commit=False)
        await consumer.start()
        consumer.assign([TopicPartition("events", 0)])
        await consumer.getmany(timeout_ms=300)
    finally:
        broker.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 15
    while any(conn.connected() for conn in consumer._client._conns.values()):
        assert loop.time() < deadline, "the consumer never noticed that its broker is gone"
        await consumer.getmany(timeout_ms=100)
    await consumer.getmany(timeout_ms=300)  # its fetches fail and wait to retry meanwhile
    return consumer


async def test_a_consumer_whose_broker_is_gone_stops_without_raising_and_closes_everything():
    consumer = await consumer_after_its_broker_died()
    await stop_client(consumer)
    assert consumer._closed
    assert consumer._client._conns == {}
    assert consumer._fetcher._fetch_task.done()
    assert all(task.done() for task in consumer._fetcher._pending_tasks)


async def test_a_cancelled_caller_of_stop_client_is_still_cancelled():
    consumer = await consumer_after_its_broker_died()
    stopping = asyncio.ensure_future(stop_client(consumer))
    await asyncio.sleep(0)  # stop() has begun
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await stop_client(consumer)  # a second stop is a no-op

