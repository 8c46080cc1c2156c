"""Correlation ids that hash to a response-topic partition owned by this gateway instance.

A service replies with key = correlation id and leaves the partition to Kafka's default
partitioner (murmur2 of the key's UTF-8 bytes), so choosing the id chooses the partition
the reply lands on: an id that hashes to one of our partitions comes back to us without
a hop. When we own nothing (mid-rebalance, or more instances than partitions) any id
will do: the reply names the parking instance and is handed over to it.
"""
from __future__ import annotations

import itertools
import secrets
from typing import Collection

from ..partitioner import kafka_partition as partition_of


class CorrelationIds:
    """Unique ids (a random per-process prefix and a counter) aimed at owned partitions.

    Ids that miss are skipped, not reused, so every id handed out is still unique; the
    expected number of tries is partitions / owned.
    """

    def __init__(self, partitions: int, prefix: str | None = None, max_tries: int | None = None
                 ) -> None:
        if partitions < 1:
            raise ValueError(f"partitions must be at least 1, got {partitions}")
        self.partitions = partitions
        self.prefix = prefix if prefix is not None else secrets.token_hex(6)
        self._counter = itertools.count(1)
        # Past this many misses the owned set is nearly empty or stale; a hand-off is
        # cheaper than searching on.
        self.max_tries = max_tries or 64 * partitions
        self.misses = 0

    def next(self, owned: Collection[int] = ()) -> str:
        """A new id whose bytes hash to a partition in `owned` (any partition if empty)."""
        targets = [p for p in owned if 0 <= p < self.partitions]
        if not targets:
            return self._make()
        if len(targets) == self.partitions:
            return self._make()
        wanted = frozenset(targets)
        for _ in range(self.max_tries):
            cid = self._make()
            if partition_of(cid.encode(), self.partitions) in wanted:
                return cid
        self.misses += 1
        return cid

    def _make(self) -> str:
        return f"{self.prefix}-{next(self._counter):x}"
