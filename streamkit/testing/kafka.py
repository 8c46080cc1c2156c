"""Produce to and read from topics in tests (blocking helpers over aiokafka)."""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator, Iterable

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import ConsumerRecord

from ..config import Settings
from ..state.restore import readable_end
from ..topics import TopicAdmin, TopicSpec


def _bytes(x: Any) -> bytes | None:
    if x is None or isinstance(x, bytes):
        return x
    if isinstance(x, str):
        return x.encode()
    return orjson.dumps(x)


@contextlib.asynccontextmanager
async def admin_client(bootstrap: str) -> AsyncIterator[AIOKafkaAdminClient]:
    """An aiokafka admin client of the broker, closed on exit."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def topic_names(bootstrap: str) -> set[str]:
    """Every topic the broker has."""
    async with admin_client(bootstrap) as admin:
        return set(await admin.list_topics())


async def ensure_topic(bootstrap: str, topic: str, partitions: int = 4,
                       replication: int = 1) -> int:
    """Create topic unless it exists (brokers here never create topics on their own);
    return its partition count."""
    settings = Settings(broker=bootstrap, replication_factor=replication)
    async with TopicAdmin(settings) as admin:
        return (await admin.ensure([TopicSpec(topic, partitions)]))[topic]


async def create_topic(bootstrap: str, topic: str, partitions: int = 1, replication: int = 1,
                       **configs: str) -> None:
    """Create topic with the topic configs given (names with dots, as the broker spells
    them: `**{"compression.type": "zstd"}`)."""
    async with admin_client(bootstrap) as admin:
        await admin.create_topics([NewTopic(topic, partitions, replication,
                                            topic_configs=configs)])


async def produce_async(bootstrap: str, topic: str, records: Iterable[tuple[Any, ...]],
                        linger_ms: int = 5, partitions: int = 4, replication: int = 1,
                        idempotent: bool = False) -> int:
    """Send (key, value) pairs, or (key, value, timestamp_ms) triples (str keys as UTF-8,
    other values as JSON), to topic, creating it with `partitions` if it does not exist;
    return the count. `idempotent` keeps the producer's retries (a broker failing over)
    from writing a record twice; it needs a broker with idempotent producers (Apache Kafka
    has them, the dev broker does not)."""
    await ensure_topic(bootstrap, topic, partitions, replication)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms, acks="all",
                                enable_idempotence=idempotent)
    await producer.start()
    try:
        futures = [await producer.send(topic, _bytes(r[1]), key=_bytes(r[0]),
                                       timestamp_ms=r[2] if len(r) > 2 else None)
                   for r in records]
        await asyncio.gather(*futures)
        return len(futures)
    finally:
        await producer.stop()


def produce(bootstrap: str, topic: str, records: Iterable[tuple[Any, ...]],
            partitions: int = 4, replication: int = 1, idempotent: bool = False) -> int:
    return asyncio.run(produce_async(bootstrap, topic, records, partitions=partitions,
                                     replication=replication, idempotent=idempotent))


async def read_topic_async(bootstrap: str, topic: str, timeout: float = 10.0,
                           isolation_level: str = "read_uncommitted") -> list[ConsumerRecord]:
    """Every record of every partition, up to the end of each fetch (with
    isolation_level="read_committed": the committed records only)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100,
                                isolation_level=isolation_level)
    await consumer.start()
    try:
        parts = consumer.partitions_for_topic(topic)
        if parts is None:
            await consumer._client.force_metadata_update()  # the topic may be new
            parts = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in sorted(parts)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        out: list[ConsumerRecord] = []
        pending = set(tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while pending and loop.time() < deadline:
            batches = await consumer.getmany(*pending, timeout_ms=200)
            for recs in batches.values():
                out.extend(recs)
            for tp in list(pending):
                hw = readable_end(consumer, tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    pending.discard(tp)
        if pending:
            raise TimeoutError(f"could not read {sorted(pending)} to their end in {timeout}s")
        return out
    finally:
        await consumer.stop()


def read_topic(bootstrap: str, topic: str, timeout: float = 10.0,
               isolation_level: str = "read_uncommitted") -> list[ConsumerRecord]:
    return asyncio.run(read_topic_async(bootstrap, topic, timeout, isolation_level))


async def committed_and_end(bootstrap: str, group: str, topic: str
                            ) -> tuple[dict[int, int | None], dict[int, int]]:
    """A group's committed offset and the end offset of each partition of topic."""
    async with admin_client(bootstrap) as admin:
        (described,) = await admin.describe_topics([topic])
    tps = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        committed = {tp.partition: await consumer.committed(tp) for tp in tps}
        ends = await consumer.end_offsets(tps)
        return committed, {tp.partition: off for tp, off in ends.items()}
    finally:
        await consumer.stop()


def caught_up(bootstrap: str, group: str, topic: str) -> bool:
    """Whether the group has committed the end of every partition of topic."""
    committed, ends = asyncio.run(committed_and_end(bootstrap, group, topic))
    return all(committed.get(p) == end for p, end in ends.items())


async def group_members_async(bootstrap: str, group: str) -> int:
    """How many members the broker counts in a consumer group now."""
    async with admin_client(bootstrap) as admin:
        (response,) = await admin.describe_consumer_groups([group])
    (described,) = response.groups
    return len(described[5])  # error, group id, state, protocol type, protocol, members


def group_members(bootstrap: str, group: str) -> int:
    return asyncio.run(group_members_async(bootstrap, group))
