"""A task: partition p of one sub-topology, with its table partitions and input offsets."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Sequence

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

from ..errors import DecodeError, ProcessingStopped, SuppressBufferFull
from ..state.store import PartitionStore, ReadCache
from .topology import Topology

log = logging.getLogger(__name__)

DeadLetter = Callable[[ConsumerRecord, str, BaseException], None]


class Task:
    def __init__(self, topology: Topology, group: int, partition: int, state_dir: Path,
                 read_cache: ReadCache | None = None) -> None:
        self.group, self.partition = group, partition
        self.topology = topology
        self.stores: dict[str, PartitionStore] = {
            spec.name: PartitionStore(state_dir / spec.name / str(partition), spec.key_codec,
                                      spec.values, read_cache)
            for spec in topology.tables_of_group(group)
        }
        self.changelogs = {TopicPartition(self.topology.tables[name].changelog, partition): store
                           for name, store in self.stores.items()}
        self.offsets: dict[TopicPartition, int] = {}  # next input offset to commit
        self.processed = 0
        self.late_records = 0  # records too late for their window (streamkit.windows)
        # Operators' in-memory state for this task (e.g. a window store's expiry cursor),
        # rebuilt from the stores whenever the task is created.
        self.operator_state: dict[str, Any] = {}
        # The first offset processed per input topic: where this task resumed (the
        # committed offset), so that operators can tell what a crash may have lost.
        self.resumed_at: dict[str, int] = {}

    @property
    def id(self) -> tuple[int, int]:
        return (self.group, self.partition)

    def open(self) -> None:
        for store in self.stores.values():
            if not store.is_open:
                store.open()

    def close(self) -> None:
        for store in self.stores.values():
            store.close()

    def process(self, tp: TopicPartition, records: Sequence[ConsumerRecord],
                dead_letter: DeadLetter, default_on_error: str) -> None:
        """Push records through the graph; a failing record goes to dead letters."""
        source = self.topology.sources[tp.topic]
        kdec, vdec, ts_of = source.keys.decode, source.values.decode, source.timestamp
        # A source with one successor (the usual case) hands each record straight to it.
        children = source.children
        forward = children[0].process if len(children) == 1 else source.forward
        ctx = self.topology.context
        ctx.task = self
        if tp.topic not in self.resumed_at and records:
            self.resumed_at[tp.topic] = records[0].offset
        for rec in records:
            ctx.record = rec
            ctx.serial += 1
            try:
                try:
                    key = None if rec.key is None else kdec(rec.key)
                    value = None if rec.value is None else vdec(rec.value)
                    ts = rec.timestamp if ts_of is None else int(ts_of(value))
                except Exception as exc:
                    raise DecodeError(str(exc)) from exc
                forward(key, value, ts)
            except SuppressBufferFull:
                raise  # not the record's fault: the uncaught-error policy decides
            except Exception as exc:
                on_error = source.on_error or default_on_error
                stage = "decode" if isinstance(exc, DecodeError) else "process"
                if on_error == "stop":
                    raise ProcessingStopped(
                        f"{stage} failed at {tp.topic}[{tp.partition}]@{rec.offset}: {exc!r}") from exc
                dead_letter(rec, stage, exc)
        self.offsets[tp] = records[-1].offset + 1
        self.processed += len(records)

    def before_commit(self) -> None:
        """What operators write last in a commit (a window store's stream time): called by
        every commit before it encodes the stores' write-back caches."""
        for state in self.operator_state.values():
            hook = getattr(state, "before_commit", None)
            if hook is not None:
                hook()

    def dirty_count(self) -> int:
        return sum(len(s.dirty) for s in self.stores.values())
