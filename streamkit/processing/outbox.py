"""Records waiting to be produced, sent as whole batches at commit time.

Sending through BatchBuilder rather than producer.send() avoids a future and a
metadata look-up per record; the commit waits for every batch to be acknowledged
before it commits input offsets. A batch the broker refuses for what its records are
goes to the production-error policy (production.py).
"""
from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from typing import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ..errors import ProductionFailed
from .production import ProductionErrors, Record, refused_batch, rejects

Header = tuple[str, bytes]
_Pending = Record


class Outbox:
    """Per topic-partition queues of encoded records.

    errors: the production-error policy, under which each record of a refused batch is
    sent again on its own. Without it (a transaction: a refused batch leaves a gap in the
    producer's sequence numbers, so nothing more can be sent in it), a refused batch
    raises ProductionFailed."""

    def __init__(self, producer: AIOKafkaProducer, sent: Counter[str] | None = None,
                 errors: ProductionErrors | None = None) -> None:
        self.producer = producer
        self.errors = errors
        self.pending: dict[tuple[str, int], list[_Pending]] = defaultdict(list)
        self.count = 0
        # Records acknowledged, per topic (one counter may serve several outboxes).
        self.sent: Counter[str] = Counter() if sent is None else sent

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None, headers: Sequence[Header] | None = None) -> None:
        self.pending[(topic, partition)].append((key, value, timestamp_ms, headers))
        self.count += 1

    def queued(self) -> dict[tuple[str, int], list[_Pending]]:
        """A copy of what is queued, to queue again after an aborted transaction."""
        return {tp: list(recs) for tp, recs in self.pending.items() if recs}

    def requeue(self, queued: dict[tuple[str, int], list[_Pending]]) -> None:
        """Queue exactly `queued` (a copy from queued()): the records of an aborted
        transaction, whatever a failed flush put back meanwhile."""
        self.pending = defaultdict(list, {tp: list(recs) for tp, recs in queued.items()})
        self.count = sum(len(recs) for recs in queued.values())

    def discard(self) -> None:
        """Drop every queued record (their input records will be processed again)."""
        self.pending, self.count = defaultdict(list), 0

    async def flush(self, changelogs: dict[tuple[str, int], list[_Pending]] | None = None
                    ) -> dict[tuple[str, int], int]:
        """Send everything queued, and the changelog records given; return the last offset
        written per topic-partition once every record is acknowledged (or, for records the
        broker refused, dead-lettered).

        If a send fails, the queued records are queued again (they go out with the next
        flush; some may then be written twice, which at-least-once allows) and the error
        is raised (ProductionFailed first, if any); changelog records are not kept: the
        caller rebuilds them from the state it has not yet marked as written."""
        pending, self.pending, self.count = self.pending, defaultdict(list), 0
        batches: dict[tuple[str, int], list[_Pending]] = {tp: list(r) for tp, r in pending.items()}
        for tp, recs in (changelogs or {}).items():
            batches.setdefault(tp, []).extend(recs)
        if not batches:
            return {}
        logged = set(changelogs or ())
        results = await asyncio.gather(*(self._send(tp, recs, tp in logged)
                                         for tp, recs in batches.items()), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            for tp, recs in pending.items():
                self.pending[tp][:0] = recs
                self.count += len(recs)
            raise next((e for e in errors if isinstance(e, ProductionFailed)), errors[0])
        return dict(zip(batches, results))  # type: ignore[arg-type]

    async def _send(self, tp: tuple[str, int], records: list[_Pending], changelog: bool) -> int:
        topic, partition = tp
        futures, parts = [], []
        batch, start = self.producer.create_batch(), 0
        for i, (key, value, ts, headers) in enumerate(records):
            if batch.append(key=key, value=value, timestamp=ts, headers=headers or []) is None:
                batch.close()
                futures.append(await self.producer.send_batch(batch, topic, partition=partition))
                parts.append(records[start:i])
                batch, start = self.producer.create_batch(), i
                # An empty batch takes any record, however large.
                batch.append(key=key, value=value, timestamp=ts, headers=headers or [])
        batch.close()
        futures.append(await self.producer.send_batch(batch, topic, partition=partition))
        parts.append(records[start:])
        last = -1
        for part, result in zip(parts, await asyncio.gather(*futures, return_exceptions=True)):
            if not isinstance(result, BaseException):
                # A batch's metadata carries its base offset: its last record is base + n - 1.
                last = max(last, result.offset + len(part) - 1)
                self.sent[topic] += len(part)
            elif rejects(result):
                last = max(last, await self._settle(tp, part, result, changelog))
            else:
                raise result
        return last

    async def _settle(self, tp: tuple[str, int], records: list[_Pending], exc: BaseException,
                      changelog: bool) -> int:
        """A batch the broker refused: each record again on its own; those refused on
        their own go to the production-error policy. (The records of the partition's later
        batches, if it had several, may be written before these.)"""
        topic, partition = tp
        if self.errors is None or changelog:
            if self.errors is not None:
                self.errors.rejected[topic] += len(records)
            raise refused_batch(topic, partition, records, exc, changelog)
        last = -1
        for record in records:
            try:
                last = await self._send_alone(topic, partition, record)
                continue
            except KafkaError as refused:
                if not rejects(refused):
                    raise
                letters, error = self.errors.letters(topic, partition, record, refused), refused
            for letter in letters:
                try:
                    await self._send_alone(*letter)
                    break
                except KafkaError as again:
                    if not rejects(again):
                        raise
                    error = again
            else:
                raise self.errors.refused_letter(letters[-1], error) from error
        return last

    async def _send_alone(self, topic: str, partition: int, record: _Pending) -> int:
        """Send one record in a batch of its own and return its offset."""
        key, value, ts, headers = record
        batch = self.producer.create_batch()
        batch.append(key=key, value=value, timestamp=ts, headers=headers or [])
        batch.close()
        meta = await (await self.producer.send_batch(batch, topic, partition=partition))
        self.sent[topic] += 1
        return meta.offset
