"""Rebuild table partitions from their changelog topics.

Reading stops at the end that each fetch response carries (the high watermark, or the
last stable offset when transactions are open), never at the offset ListOffsets(latest)
reports: some Kafka-protocol brokers answer that one wrongly for multi-record batches, and
the fetch response is what the log really holds. ListOffsets serves one purpose here: a
store that has applied nothing, whose changelog starts and ends at the same offset, has
nothing to read (a new app's tables), and is not fetched at all. The broker that answers
the end wrongly answers the last batch's first offset + 1, past the start whenever the log
holds a record.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Mapping

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import OffsetOutOfRangeError

from .readable_ends import end_of
from .store import PartitionStore

log = logging.getLogger(__name__)


@dataclass
class TableRestore:
    """One table's latest restore: the records applied, of the total, and the partitions
    still being read. The total is the records applied plus the changelog offsets between
    each partition's position and its high watermark (known from the partition's first
    fetch): compaction leaves gaps in the offsets, so it can shrink as the restore reads
    past them, and it equals the records applied once the restore is done."""

    restored: int = 0
    total: int = 0
    partitions_left: int = 0

    def __str__(self) -> str:
        return f"{self.restored}/{self.total}"


class RestoreProgress:
    """Restore progress by table, for /metrics and the log (one per worker)."""

    def __init__(self) -> None:
        self.tables: dict[str, TableRestore] = {}

    def describe(self, tables) -> str:
        """`name restored/total` for each of tables."""
        return ", ".join(f"{name} {self.tables[name]}" for name in sorted(tables))


async def restore(consumer: AIOKafkaConsumer, stores: Mapping[TopicPartition, PartitionStore],
                  progress_every_s: float = 5.0, progress: RestoreProgress | None = None,
                  table_of: Mapping[str, str] | None = None) -> int:
    """Read each changelog partition from its store's checkpoint up to the high watermark;
    return the number of records applied. The consumer must have no group, and a short
    fetch wait (it must not wait for records that are not there). With progress, each
    table's figures (table_of: changelog topic -> table name) are kept up to date there."""
    if not stores:
        return 0
    tps = list(stores)
    consumer.assign(tps)
    # A store that has applied nothing, of a changelog that ends where it starts, has
    # nothing to read (see above): its end is asked for beside the seeks.
    fresh = [tp for tp, store in stores.items() if store.checkpoint is None]
    _, ends = await asyncio.gather(seek_to_checkpoints(consumer, stores),
                                   consumer.end_offsets(fresh))
    pending = set(tps)
    for tp in fresh:
        if ends[tp] == await consumer.position(tp):
            pending.discard(tp)
    applied = 0
    by_tp = dict.fromkeys(tps, 0)                    # records applied per partition
    ahead: dict[TopicPartition, int | None] = dict.fromkeys(tps)  # offsets left to read
    names = {tp: (table_of or {}).get(tp.topic, tp.topic) for tp in tps}
    if progress is not None:
        for name in set(names.values()):
            progress.tables[name] = TableRestore()
    last_log = time.monotonic()
    while pending:
        try:
            # A short wait: a partition with nothing (more) to read has its high watermark as
            # soon as the broker answers, but getmany returns early only for records.
            batches = await consumer.getmany(*pending, timeout_ms=10, max_records=20000)
        except OffsetOutOfRangeError as exc:
            # The checkpoint points past the log (the topic was recreated): start over.
            for tp in exc.args[0] if exc.args and isinstance(exc.args[0], dict) else pending:
                log.warning("changelog %s is behind the local store; rebuilding it", tp)
                stores[tp].wipe()
                by_tp[tp] = 0
                await consumer.seek_to_beginning(tp)
            continue
        for tp, records in batches.items():
            stores[tp].write(((r.key, r.value) for r in records), records[-1].offset + 1)
            applied += len(records)
            by_tp[tp] += len(records)
        for tp in list(pending):
            hw = readable_end(consumer, tp)
            if hw is None:
                continue
            position = await consumer.position(tp)
            ahead[tp] = max(0, hw - position)
            if position >= hw:
                checkpoint = stores[tp].checkpoint
                if checkpoint is not None and checkpoint > hw:
                    log.warning("changelog %s ends at %s before the local checkpoint %s; rebuilding",
                                tp, hw, checkpoint)
                    stores[tp].wipe()
                    by_tp[tp] = 0
                    await consumer.seek_to_beginning(tp)
                    continue
                pending.discard(tp)
                consumer.pause(tp)  # with a fetch wait of 0 it would be fetched on and on
        if progress is not None:
            _tally(progress, names, by_tp, ahead, pending)
        if time.monotonic() - last_log >= progress_every_s:
            last_log = time.monotonic()
            figures = f"; {progress.describe(set(names.values()))}" if progress is not None else ""
            log.info("restoring: %d records applied, %d partitions left%s", applied, len(pending),
                     figures)
    # Paused, not unassigned: with no partitions the client's next metadata request would
    # ask for every topic of the cluster. The next restore assigns its own partitions.
    consumer.pause(*tps)
    return applied


def _tally(progress: RestoreProgress, names: Mapping[TopicPartition, str],
           by_tp: Mapping[TopicPartition, int], ahead: Mapping[TopicPartition, int | None],
           pending: set[TopicPartition]) -> None:
    """Each table's figures, summed over its partitions in this restore."""
    for name in set(names.values()):
        progress.tables[name] = TableRestore(0, 0, 0)
    for tp, name in names.items():
        figures = progress.tables[name]
        figures.restored += by_tp[tp]
        figures.total += by_tp[tp] + (0 if tp not in pending else ahead[tp] or 0)
        figures.partitions_left += tp in pending


def readable_end(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
    """Where reading tp ends for now, as its last fetch said (None before one): the high
    watermark, or the last stable offset if it is lower, since a read_committed consumer
    stops before the records of an open transaction."""
    hw = consumer.highwater(tp)
    return None if hw is None else end_of(hw, consumer.last_stable_offset(tp))


async def seek_to_checkpoints(consumer: AIOKafkaConsumer,
                              stores: Mapping[TopicPartition, PartitionStore]) -> None:
    """Position consumer at the first record each store has not applied (one request for
    the beginnings of all the stores that have applied nothing)."""
    fresh = [tp for tp, store in stores.items() if store.checkpoint is None]
    for tp, store in stores.items():
        if store.checkpoint is not None:
            consumer.seek(tp, store.checkpoint)
    if fresh:
        await consumer.seek_to_beginning(*fresh)
