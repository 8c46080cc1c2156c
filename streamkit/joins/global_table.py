"""Global tables: every worker keeps the whole topic, one store per source partition, read
to the fetch high watermark before the worker is ready and tailed afterwards."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..processing.outbox import partition_for
from ..serde import Serde
from ..state.keys import codec_for
from ..state.store import PartitionStore

log = logging.getLogger(__name__)


@dataclass
class GlobalSpec:
    name: str
    topic: str
    keys: Serde
    values: Serde
    exposed: bool = True

    @property
    def key_codec(self):
        return codec_for(self.keys)


class GlobalTable:
    """A global table as user code and join nodes see it."""

    def __init__(self, spec: GlobalSpec) -> None:
        self.spec = spec
        self.stores: list[PartitionStore] = []

    @property
    def name(self) -> str:
        return self.spec.name

    def get(self, key: Any) -> Any:
        """The value of key, or None (every worker holds every key)."""
        if not self.stores:
            return None
        kb = self.spec.keys.encode(key)
        return self.stores[partition_for(kb, len(self.stores))].get(key)

    def open(self, state_dir: Path, partitions: int) -> dict[TopicPartition, PartitionStore]:
        self.stores = [PartitionStore(state_dir / "global" / self.name / str(p),
                                      codec_for(self.spec.keys), self.spec.values).open()
                       for p in range(partitions)]
        return {TopicPartition(self.spec.topic, p): s for p, s in enumerate(self.stores)}

    def close(self) -> None:
        for s in self.stores:
            s.close()
        self.stores = []

    def apply(self, store: PartitionStore, records) -> None:
        """Source records (serialized as the topic's keys) into the store's key encoding."""
        decode, encode = self.spec.keys.decode, store.keys.encode
        store.write(((encode(decode(r.key)), r.value) for r in records if r.key is not None),
                    records[-1].offset + 1)


class GlobalTables:
    """Restores and tails every global table of a worker with one consumer (no group)."""

    def __init__(self, tables: list[GlobalTable], state_dir: Path) -> None:
        self.tables = tables
        self.state_dir = state_dir
        self.by_tp: dict[TopicPartition, tuple[GlobalTable, PartitionStore]] = {}

    async def start(self, consumer: AIOKafkaConsumer, partitions: dict[str, int]) -> int:
        """Open the stores and read every source partition to the high watermark of the
        fetch responses; return the number of records read."""
        for table in self.tables:
            for tp, store in table.open(self.state_dir, partitions[table.spec.topic]).items():
                self.by_tp[tp] = (table, store)
        consumer.assign(list(self.by_tp))
        for tp, (_, store) in self.by_tp.items():
            if store.checkpoint is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, store.checkpoint)
        pending, applied = set(self.by_tp), 0
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=200, max_records=20000)
            self.apply(batches)
            applied += sum(len(r) for r in batches.values())
            for tp in list(pending):
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    pending.discard(tp)
        return applied

    def apply(self, batches) -> None:
        for tp, records in batches.items():
            if records and tp in self.by_tp:
                table, store = self.by_tp[tp]
                table.apply(store, records)

    def close(self) -> None:
        for table in self.tables:
            table.close()
