"""Standby replicas: copies of other workers' table partitions, kept current by tailing
their changelogs, so that a task that moves here replays only the tail past their
checkpoints."""
from __future__ import annotations

from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..state.restore import seek_to_checkpoints
from ..state.store import PartitionStore, ReadCache
from .assignor import TaskId
from .topology import Topology


class Standbys:
    """The standby stores of one worker, by task, and the consumer that tails them."""

    def __init__(self, topology: Topology, state_dir: Path, consumer: AIOKafkaConsumer,
                 read_cache: ReadCache | None = None) -> None:
        self.topology, self.state_dir, self.consumer = topology, state_dir, consumer
        self.read_cache = read_cache
        self.stores: dict[TaskId, dict[TopicPartition, PartitionStore]] = {}
        self._by_changelog: dict[TopicPartition, PartitionStore] = {}

    def __contains__(self, tid: object) -> bool:
        return tid in self.stores

    def __iter__(self):
        return iter(self.stores)

    def __len__(self) -> int:
        return len(self.stores)

    def store(self, tid: TaskId, changelog: TopicPartition) -> PartitionStore | None:
        """The standby store of a task's changelog partition, if open here."""
        store = self.stores.get(tid, {}).get(changelog)
        return store if store is not None and store.is_open else None

    async def open(self, new: set[TaskId]) -> None:
        """Open the stores of new standby tasks and tail every standby changelog from its
        store's checkpoint."""
        for g, p in new:
            self.stores[(g, p)] = {
                TopicPartition(spec.changelog, p): PartitionStore(
                    self.state_dir / spec.name / str(p), spec.key_codec, spec.values,
                    self.read_cache).open()
                for spec in self.topology.tables_of_group(g)}
            self._by_changelog.update(self.stores[(g, p)])
        # Nothing opened, nothing to move: assigning again would read again what was read,
        # and assigning nothing (no standbys, as at a worker's first start) would make the
        # consumer's next metadata request ask for every topic of the cluster. A store
        # opened again for a changelog the consumer still holds (its task ran here as an
        # active task meanwhile, while what was fetched for it was dropped) must be
        # sought to its checkpoint, so any opening assigns and seeks every store.
        if not new:
            return
        self.consumer.assign(list(self._by_changelog))
        await seek_to_checkpoints(self.consumer, self._by_changelog)

    def close(self, ids: set[TaskId]) -> None:
        for tid in ids:
            for tp, store in self.stores.pop(tid, {}).items():
                self._by_changelog.pop(tp, None)
                store.close()
        if not self.stores and self.consumer.assignment():
            self.consumer.assign([])

    async def poll(self) -> dict[TopicPartition, list]:
        """The next changelog records for the standby stores."""
        return await self.consumer.getmany(timeout_ms=200, max_records=20000)

    def apply(self, batches: dict[TopicPartition, list]) -> None:
        for tp, records in batches.items():
            store = self._by_changelog.get(tp)
            if store is not None and records:
                store.write(((r.key, r.value) for r in records), records[-1].offset + 1)
