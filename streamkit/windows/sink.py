"""Writing windowed results to a topic.

A result goes to the partition of its record key (Kafka's default partitioner on the
key's own bytes), not of its whole window key: a consumer then reads each key's windows
in order from one partition, the output is co-partitioned with the input, and the
partitioner's memo of key hashes keeps working although every window key is new.
"""
from __future__ import annotations

from ..partitioner import partition_for
from ..processing.nodes import SinkNode
from ..serde import Serde
from .codec import WindowedKeySerde


class WindowedSink(SinkNode):
    __slots__ = ("record_keys",)

    def __init__(self, topic: str, keys: WindowedKeySerde, values: Serde) -> None:
        super().__init__(topic, keys, values)
        self.record_keys = keys.inner

    def process(self, key, value, ts):
        vb = None if value is None else self.values.encode(value)
        ctx = self.ctx
        n = ctx.partitions[self.topic]
        ctx.writer.add(self.topic, partition_for(self.record_keys.encode(key[0]), n),
                       self.keys.encode(key), vb, ts)
