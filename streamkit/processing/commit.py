"""The commit sequence of the batched path, in one place for the runner and the test driver.

1. Every table partition's pending updates become changelog records (each changed key
   once), which go out together with the queued output records; every acknowledgement
   is awaited.
2. RocksDB takes each partition's updates with the changelog position they reached, in
   one WriteBatch; the commit listeners (waiters of ?wait_for=) hear of them.
3. The input offsets are committed.

An input offset is therefore committed only after every state update it caused is in the
changelog, and RocksDB never holds an update the changelog lacks. The runner awaits its
outbox in step 1 and the consumer group in step 3; the test driver writes to in-memory
topics, so its crash tests cut the real sequence.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

from aiokafka import TopicPartition

from ..state.store import PartitionStore
from .topology import Topology

Item = tuple[bytes, bytes | None]
# What a changelog record is to the writer: key, value, timestamp, headers.
Pending = tuple[bytes | None, bytes | None, int | None, Any]
CommitListener = Callable[[str, int, list[Item]], None]


class Commit:
    """One commit of a set of tasks: what goes to the changelogs, then what follows."""

    def __init__(self, topology: Topology, tasks: Iterable[Any]) -> None:
        self.tasks = list(tasks)
        self.changelogs: dict[tuple[str, int], list[Pending]] = {}
        self._stores: list[tuple[str, int, PartitionStore, list[Item], tuple[str, int]]] = []
        for task in self.tasks:
            task.before_commit()
            for name, store in task.stores.items():
                if store.dirty:
                    items = store.encode_dirty()
                    ctp = (topology.tables[name].changelog, task.partition)
                    self.changelogs[ctp] = [(kb, vb, None, None) for kb, vb in items]
                    self._stores.append((name, task.partition, store, items, ctp))

    def written(self, last: dict[tuple[str, int], int],
                listeners: Iterable[CommitListener] = ()) -> None:
        """Step 2: the changelogs hold everything up to `last` (per changelog partition,
        the offset of its last record): move the updates into RocksDB."""
        for name, partition, store, items, ctp in self._stores:
            store.write(items, last[ctp] + 1)
            store.settle()
            for listener in listeners:
                listener(name, partition, items)

    @property
    def offsets(self) -> dict[TopicPartition, int]:
        """Step 3: the input offsets to commit."""
        return {tp: off for task in self.tasks for tp, off in task.offsets.items()}

    def done(self) -> None:
        """The input offsets are committed."""
        for task in self.tasks:
            task.offsets.clear()
