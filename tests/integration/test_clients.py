"""streamkit's consumers around their edges. Before subscribing, a consumer's metadata is
brought to list the topics (await_topics): a group formed while its metadata lacked a topic
just created would be assigned nothing of it for minutes. After its broker is gone, a
consumer stops to its end (stop_consumer): aiokafka's own stop() can raise the
CancelledError of a fetch that waits to retry, half way through, leaving its connections
open; a cancellation of the caller is still passed on."""
from __future__ import annotations

import asyncio

import logging
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from streamkit import devbroker
from streamkit.clients import await_topics, stop_consumer
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
    await stop_consumer(consumer)
    assert consumer._closed
    assert consumer._client._conns == {}
    assert consumer._fetcher._fetch_task.done()
    assert all(task.done() for task in consumer._fetcher._pending_tasks)


async def test_a_cancelled_caller_of_stop_consumer_is_still_cancelled():
    consumer = await consumer_after_its_broker_died()
    stopping = asyncio.ensure_future(stop_consumer(consumer))
    await asyncio.sleep(0)  # stop() has begun
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    await stop_consumer(consumer)  # a second stop is a no-op


async def test_a_consumer_started_before_its_topic_was_created_knows_it_before_subscribing(
        broker, app_id, caplog):
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, enable_auto_commit=False)
    await consumer.start()  # its metadata: the cluster before the topic
    try:
        topic = f"{app_id}-new"
        assert consumer.partitions_for_topic(topic) is None
        await ensure_topic(broker, topic, 3)
        await await_topics(consumer, [topic], "new topics")
        assert consumer.partitions_for_topic(topic) == {0, 1, 2}

        absent = f"{app_id}-never-{uuid.uuid4().hex[:6]}"
        with caplog.at_level(logging.WARNING, logger="streamkit.clients"):
            await await_topics(consumer, [topic, absent], "source topics", timeout_s=0.5)
        assert f"source topics not in the brokers' metadata after 0.5 s, subscribing anyway: " \
               f"['{absent}']" in caplog.text
    finally:
        await stop_consumer(consumer)
