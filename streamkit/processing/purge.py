"""Deleting what repartition topics no longer need to hold.

Repartition topics (and a foreign-key join's subscription and response topics) are written
and read by the app's own tasks. They are created with `retention.ms=-1`: their records
carry event times, and Kafka deletes records by timestamp, so a time-based retention would
drop records older than it before they were processed. Instead, once the offsets of their
records are committed (the records are processed for good), those records are deleted
(DeleteRecords), at most every STREAMKIT_REPARTITION_PURGE_INTERVAL_MS, as Kafka Streams
purges its repartition topics.
"""
from __future__ import annotations

import logging
import time
from typing import Mapping

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.errors import KafkaError

from ..clients import Clients

log = logging.getLogger(__name__)


class Purger:
    """Remembers the committed offsets of purged topics; deletes the records before them."""

    def __init__(self, clients: Clients, topics: set[str], interval_ms: int) -> None:
        self.clients, self.topics = clients, topics
        self.interval_s = interval_ms / 1000
        self.pending: dict[TopicPartition, int] = {}
        self.purged = 0  # DeleteRecords requests that succeeded
        self._admin: AIOKafkaAdminClient | None = None
        self._last = time.monotonic()
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self.topics) and self.interval_s > 0

    def committed(self, offsets: Mapping[TopicPartition, int]) -> None:
        for tp, offset in offsets.items():
            if tp.topic in self.topics:
                self.pending[tp] = offset

    async def maybe_purge(self) -> None:
        """Delete the records before the committed offsets, if the interval has passed.
        A failure is logged and tried again next time: it costs disk, not correctness."""
        if not self.enabled or not self.pending or \
                time.monotonic() - self._last < self.interval_s:
            return
        self._last = time.monotonic()
        pending, self.pending = self.pending, {}
        try:
            if self._admin is None:
                self._admin = self.clients.admin()
                await self._admin.start()
            await self._admin.delete_records(
                {tp: RecordsToDelete(before_offset=off) for tp, off in pending.items()})
            self.purged += 1
        except (KafkaError, OSError) as exc:
            for tp, off in pending.items():
                self.pending.setdefault(tp, off)
            if not self._warned:
                log.warning("could not delete consumed records of repartition topics "
                            "(will retry): %r", exc)
                self._warned = True

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
