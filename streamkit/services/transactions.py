"""Exactly-once replies (STREAMKIT_PROCESSING_GUARANTEE=exactly_once): the transactional
producer of each request partition a service worker handles.

A partition's requests are answered in transactions of its producer: the records the
handlers send, the dead letters, the replies, the record of those replies (replies.py) and
the partition's next offset (`send_offsets_to_transaction`) commit together or not at all.
A crash before the commit leaves nothing of it visible to read_committed readers (the
gateway's response consumer is one) and the requests are delivered again; after it, they
are not delivered again. Each producer's transactional id, `<app id>-services-<request
topic>_<partition>`, is the same on every worker, and a worker starts it before it
restores the partition's replies or reads its committed offset: that fences the previous
owner and settles its open transaction, as for the tasks of the processing path
(processing/transactions.py).
"""
from __future__ import annotations

import asyncio
from typing import Iterable

from aiokafka import AIOKafkaProducer, TopicPartition

from ..clients import Clients
from ..processing.transactions import require_transactions, stop_quietly


class PartitionProducers:
    """The transactional producers of the request partitions a worker holds."""

    def __init__(self, clients: Clients, app_id: str) -> None:
        self.clients, self.app_id = clients, app_id
        self.producers: dict[TopicPartition, AIOKafkaProducer] = {}

    def transactional_id(self, tp: TopicPartition) -> str:
        return f"{self.app_id}-services-{tp.topic}_{tp.partition}"

    async def check_broker(self) -> None:
        await require_transactions(self.clients, f"{self.app_id}-services-check")

    def __getitem__(self, tp: TopicPartition) -> AIOKafkaProducer:
        return self.producers[tp]

    async def open(self, tps: Iterable[TopicPartition]) -> None:
        """Start a fresh producer for each partition (fencing whoever held it before, this
        worker included: an assignment may follow a time out of the group)."""
        tps = list(tps)
        await self.close(tps)
        fresh = {tp: self.clients.producer(transactional_id=self.transactional_id(tp))
                 for tp in tps}
        self.producers.update(fresh)
        await asyncio.gather(*(p.start() for p in fresh.values()))

    async def close(self, tps: Iterable[TopicPartition] | None = None) -> None:
        """Stop the producers of tps (default: all). A transaction left open is aborted by
        the partition's next producer when it starts."""
        gone = list(self.producers) if tps is None else [tp for tp in tps if tp in self.producers]
        await asyncio.gather(*(stop_quietly(self.producers.pop(tp)) for tp in gone))
