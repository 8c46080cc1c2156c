"""Where partitions can be read to, as their leaders say now: one fetch request per leader,
sent when called.

A consumer's own fetches cannot say when they were sent, so a reader that needs an end
reported after a given moment must give it a new assignment and poll it until its fetches
answer (global_tables.py does). When all it needs is to learn that nothing new is there,
one request of its own does: its answer comes a round trip later, and its high watermark
covers every record acknowledged before it was sent. The high watermark of a fetch
response is used, never ListOffsets, which some brokers answer wrongly.

The request goes through the consumer's own client and connections (aiokafka has no public
call for it); a record found is not returned: the caller reads it the usual way.
"""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.protocol.fetch import FetchRequest

# Bytes asked for per partition: the answer carries the ends, not the records (a broker
# still sends the first batch of a partition that has one).
_NO_RECORDS = 1


async def readable_ends(consumer: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int],
                        wait_ms: int, read_committed: bool) -> dict[TopicPartition, int] | None:
    """Each partition's readable end (the high watermark, or the last stable offset if
    lower and read_committed), from fetches at offsets sent now; None if any partition
    has no known leader or is answered with an error (the caller then reads the usual
    way). wait_ms: how long the broker may wait for records (0 answers at once on Apache
    Kafka)."""
    client = consumer._client
    by_leader: dict[int, dict[str, list[tuple[int, int, int]]]] = defaultdict(lambda: defaultdict(list))
    for tp, offset in offsets.items():
        leader = client.cluster.leader_for_partition(tp)
        if leader is None or leader < 0:
            return None
        by_leader[leader][tp.topic].append((tp.partition, offset, _NO_RECORDS))
    # min_bytes 0: the broker answers at once whether or not records are there (wait_ms
    # only bounds the wait of a broker that holds fetches regardless).
    requests = [client.send(leader, FetchRequest(wait_ms, 0, _NO_RECORDS, int(read_committed),
                                                 list(topics.items())))
                for leader, topics in by_leader.items()]
    responses = await asyncio.gather(*requests, return_exceptions=True)
    ends: dict[TopicPartition, int] = {}
    for response in responses:
        if isinstance(response, BaseException):
            if isinstance(response, KafkaError):
                return None
            raise response
        if getattr(response, "error_code", 0):
            return None
        for topic, partitions in response.topics:
            for partition, error_code, highwater, *rest in partitions:
                if error_code:
                    return None
                # From version 4 on, the last stable offset follows the high watermark;
                # only a read_committed reader stops there.
                lso = rest[0] if read_committed and response.API_VERSION >= 4 else None
                ends[TopicPartition(topic, partition)] = end_of(highwater, lso)
    return ends if ends.keys() == offsets.keys() else None


def end_of(highwater: int, last_stable: int | None) -> int:
    """Where reading a partition ends for now: its high watermark, or its last stable offset
    if a broker gave one (-1: none) and it is lower, since a read_committed consumer stops
    before the records of an open transaction."""
    return highwater if last_stable is None or last_stable < 0 else min(highwater, last_stable)
