"""Records waiting to be produced, sent as whole batches at commit time.

Sending through BatchBuilder rather than producer.send() avoids a future and a
metadata look-up per record; the commit waits for every batch to be acknowledged
before it commits input offsets.
"""
from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Sequence

from aiokafka import AIOKafkaProducer

Header = tuple[str, bytes]
_Pending = tuple[bytes | None, bytes | None, int | None, Sequence[Header] | None]


class Outbox:
    """Per topic-partition queues of encoded records."""

    def __init__(self, producer: AIOKafkaProducer, sent: Counter[str] | None = None) -> None:
        self.producer = producer
        self.pending: dict[tuple[str, int], list[_Pending]] = defaultdict(list)
        self.count = 0
        # Records acknowledged, per topic (one counter may serve several outboxes).
        self.sent: Counter[str] = Counter() if sent is None else sent

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None, headers: Sequence[Header] | None = None) -> None:
        self.pending[(topic, partition)].append((key, value, timestamp_ms, headers))
        self.count += 1

    async def flush(self, changelogs: dict[tuple[str, int], list[_Pending]] | None = None
                    ) -> dict[tuple[str, int], int]:
        """Send everything queued, and the changelog records given; return the last offset
        written per topic-partition once every record is acknowledged.

        If a send fails, the queued records are queued again (they go out with the next
        flush; some may then be written twice, which at-least-once allows) and the error
        is raised; changelog records are not kept: the caller rebuilds them from the state
        it has not yet marked as written."""
        pending, self.pending, self.count = self.pending, defaultdict(list), 0
        batches: dict[tuple[str, int], list[_Pending]] = {tp: list(r) for tp, r in pending.items()}
        for tp, recs in (changelogs or {}).items():
            batches.setdefault(tp, []).extend(recs)
        if not batches:
            return {}
        try:
            results = await asyncio.gather(*(self._send(tp, recs) for tp, recs in batches.items()))
        except BaseException:
            for tp, recs in pending.items():
                self.pending[tp][:0] = recs
                self.count += len(recs)
            raise
        for (topic, _), recs in batches.items():
            self.sent[topic] += len(recs)
        return dict(zip(batches, results))

    async def _send(self, tp: tuple[str, int], records: list[_Pending]) -> int:
        topic, partition = tp
        futures, counts = [], []
        batch, n = self.producer.create_batch(), 0
        for key, value, ts, headers in records:
            if batch.append(key=key, value=value, timestamp=ts, headers=headers or []) is None:
                batch.close()
                futures.append(await self.producer.send_batch(batch, topic, partition=partition))
                counts.append(n)
                batch, n = self.producer.create_batch(), 0
                if batch.append(key=key, value=value, timestamp=ts, headers=headers or []) is None:
                    raise ValueError(f"a record for {topic} is larger than the producer's batch size")
            n += 1
        batch.close()
        futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        counts.append(n)
        metas = await asyncio.gather(*futures)
        # A batch's metadata carries its base offset; its last record is base + count - 1.
        return metas[-1].offset + counts[-1] - 1
