"""Where Kafka's default partitioner puts a key: murmur2 of the key's bytes, positive, modulo
the partition count (as Kafka's Java client and aiokafka do). Sinks, the query layer and the
gateway's correlation ids all rely on this one function."""
from __future__ import annotations

from aiokafka.partitioner import murmur2


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner gives key among `partitions`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


class Partitioner:
    """kafka_partition with a bounded memo, for the per-record path where keys repeat."""

    def __init__(self, memo_size: int = 100_000) -> None:
        self._memo: dict[bytes, int] = {}
        self._memo_size = memo_size

    def __call__(self, key: bytes, partitions: int) -> int:
        h = self._memo.get(key)
        if h is None:
            if len(self._memo) >= self._memo_size:
                self._memo.clear()
            h = self._memo[key] = murmur2(key) & 0x7FFFFFFF
        return h % partitions


partition_for = Partitioner()
