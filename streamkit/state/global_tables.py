"""Global tables: every worker keeps the whole topic, one store per source partition, read
to the fetch high watermark before the worker is ready and tailed afterwards."""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from ..partitioner import partition_for
from ..serde import Serde
from .keys import codec_for
from .readable_ends import readable_ends
from .restore import readable_end, seek_to_checkpoints
from .store import PartitionStore, ReadCache

log = logging.getLogger(__name__)
# aiokafka logs every assignment at INFO; the probe is assigned again on each catch-up.
_ASSIGNMENT_LOG = logging.getLogger("aiokafka.consumer.subscription_state")
# The probe's fetches wait STREAMKIT_READ_TO_END_WAIT_MS at the broker (0 on Apache Kafka):
# its answer (with the high watermark) comes about a round trip later.
CATCH_UP_POLL_MS = 1
# A catch-up that has had no fetch answer for this long assigns its partitions again, once.
# aiokafka's fetch routine can be left asleep for its consumer_timeout_ms (200 ms) with
# the probe's new assignment positioned, unpaused and no fetch in flight: nothing it waits
# on wakes it, and a new assignment does. Seen in the checkout flow of bench/wait_for.py at
# 100/s: a few catch-ups of 205 ms per 30 s (30-50 ms otherwise), each holding up the
# worker's processing, and its buffered records past aiokafka's prefetch backoff (100 ms),
# so that its next fetch left their partitions out and waited its fetch wait (500 ms).
# Once: on a broker further away than this, a second assignment would cancel a fetch that
# was on its way.
REASSIGN_AFTER_S = 0.05


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

    def open(self, state_dir: Path, partitions: int, read_cache: ReadCache | None = None
             ) -> dict[TopicPartition, PartitionStore]:
        self.stores = [PartitionStore(state_dir / "global" / self.name / str(p),
                                      codec_for(self.spec.keys), self.spec.values,
                                      read_cache).open()
                       for p in range(partitions)]
        return {TopicPartition(self.spec.topic, p): s for p, s in enumerate(self.stores)}

    def close(self) -> None:
        for s in self.stores:
            s.close()
        self.stores = []

    def apply(self, store: PartitionStore, records) -> None:
        """Source records (serialized as the topic's keys) into the store's key encoding.
        Records below the store's checkpoint were applied already (two readers share the
        stores: the tail and the catch-up) and are skipped, so a store never goes back."""
        start = store.checkpoint or 0
        if records[-1].offset < start:
            return
        decode, encode = self.spec.keys.decode, store.keys.encode
        store.write(((encode(decode(r.key)), r.value) for r in records
                     if r.key is not None and r.offset >= start),
                    records[-1].offset + 1)


class GlobalTables:
    """Every global table of a worker: loaded before processing starts, then kept current
    by a tailing consumer, and caught up on demand.

    Catching up is what makes a lookup see every update written before the record that
    looks it up was fetched: the tail alone may be a fetch wait behind. A catch-up first
    asks each partition's leader for its readable end with one fetch request sent then
    (readable_ends.py): when no partition has anything the stores lack (a table that
    changes less often than its lookups), that is the whole catch-up. Otherwise it gives
    the probe consumer a new assignment (so every fetch response it counts comes from a
    request sent after the catch-up began, whose high watermark covers every record
    acknowledged before then) and reads each partition up to that high watermark. The high
    watermark of fetch responses is used, never ListOffsets, which some brokers answer
    wrongly.

    wait_ms: how long the probe's fetches may wait at the broker
    (STREAMKIT_READ_TO_END_WAIT_MS); read_committed: whether they stop at the last
    stable offset."""

    def __init__(self, tables: list[GlobalTable], state_dir: Path,
                 read_cache: ReadCache | None, wait_ms: int, read_committed: bool) -> None:
        self.tables = tables
        self.state_dir = state_dir
        self.read_cache = read_cache
        self.wait_ms, self.read_committed = wait_ms, read_committed
        self.by_tp: dict[TopicPartition, tuple[GlobalTable, PartitionStore]] = {}
        # Per partition, where the probe's last read stopped: past the last record applied
        # when the log ends in records no store takes (transaction markers, compacted away).
        self.read_to: dict[TopicPartition, int] = {}
        self.catch_ups = 0
        self.catch_ups_read = 0  # those that found something to read
        self.catch_up_timeouts = 0

    async def start(self, probe: AIOKafkaConsumer, tail: AIOKafkaConsumer,
                    partitions: dict[str, int]) -> int:
        """Open the stores, read every source partition to its end, and start the tail;
        return the number of records read."""
        self.read_to.clear()
        for table in self.tables:
            for tp, store in table.open(self.state_dir, partitions[table.spec.topic],
                                        self.read_cache).items():
                self.by_tp[tp] = (table, store)
        applied = await self._read_to_end(probe)
        tail.assign(list(self.by_tp))
        await seek_to_checkpoints(tail, self._stores())
        return applied

    async def catch_up(self, probe: AIOKafkaConsumer, tail: AIOKafkaConsumer,
                       timeout_s: float) -> bool:
        """Read every partition to the end the broker reports now; False if that took
        longer than timeout_s (the stores then hold what was read)."""
        self.catch_ups += 1
        before = {tp: store.checkpoint for tp, (_, store) in self.by_tp.items()}
        try:
            await asyncio.wait_for(self._catch_up(probe), timeout_s)
        except asyncio.TimeoutError:
            self.catch_up_timeouts += 1
            probe.pause(*self.by_tp)
            log.warning("global tables not caught up within %.1fs; records are processed "
                        "with what they hold", timeout_s)
            return False
        finally:
            for tp, (_, store) in self.by_tp.items():
                if store.checkpoint is not None and store.checkpoint != before[tp]:
                    tail.seek(tp, store.checkpoint)  # the tail need not read it again
        return True

    async def _catch_up(self, probe: AIOKafkaConsumer) -> None:
        if not await self._nothing_new(probe):
            self.catch_ups_read += 1
            await self._read_to_end(probe)

    async def _nothing_new(self, probe: AIOKafkaConsumer) -> bool:
        """Whether every partition's readable end, as its leader reports it in answer to a
        request sent now, is where the stores (or the probe's last read) already are."""
        held = {tp: max(self.read_to.get(tp, 0), store.checkpoint or 0)
                for tp, (_, store) in self.by_tp.items()}
        ends = await readable_ends(probe, held, self.wait_ms, self.read_committed)
        return ends is not None and all(ends[tp] <= held[tp] for tp in held)

    async def _assign(self, probe: AIOKafkaConsumer) -> float:
        """Assign the probe its partitions at the stores' checkpoints; when it was done."""
        quiet, _ASSIGNMENT_LOG.disabled = _ASSIGNMENT_LOG.disabled, True
        try:
            probe.assign(list(self.by_tp))
        finally:
            _ASSIGNMENT_LOG.disabled = quiet
        await seek_to_checkpoints(probe, self._stores())
        return time.monotonic()

    async def _read_to_end(self, probe: AIOKafkaConsumer) -> int:
        assigned_at = await self._assign(probe)
        pending, applied = set(self.by_tp), 0
        answered = reassigned = False
        while pending:
            # A short wait: a partition with nothing to read has its high watermark as soon
            # as the broker answers its fetch, but getmany returns early only for records.
            # Each record that looks a global table up waits for this loop, so it checks
            # every CATCH_UP_POLL_MS rather than waiting out a longer fixed step.
            batches = await probe.getmany(*pending, timeout_ms=CATCH_UP_POLL_MS,
                                          max_records=20000)
            self.apply(batches)
            applied += sum(len(r) for r in batches.values())
            for tp in list(pending):
                hw = readable_end(probe, tp)
                answered = answered or hw is not None
                if hw is not None and (position := await probe.position(tp)) >= hw:
                    self.read_to[tp] = position
                    pending.discard(tp)
                    probe.pause(tp)  # with a fetch wait of 0 it would be fetched on and on
            if not answered and not reassigned and time.monotonic() - assigned_at > REASSIGN_AFTER_S:
                # Nothing read yet, so the stores' checkpoints are where to start again.
                await self._assign(probe)
                reassigned = True
        # Paused, not unassigned: the next catch-up assigns the same partitions again, which
        # resets their fetch state without a metadata request. Unassigning would empty the
        # client's topic list, and its next metadata request would ask for every topic of
        # the cluster: on each batch that looks a global table up.
        probe.pause(*self.by_tp)
        return applied

    def _stores(self) -> dict[TopicPartition, PartitionStore]:
        return {tp: store for tp, (_, store) in self.by_tp.items()}

    def apply(self, batches) -> None:
        for tp, records in batches.items():
            if records and tp in self.by_tp:
                table, store = self.by_tp[tp]
                table.apply(store, records)

    def close(self) -> None:
        for table in self.tables:
            table.close()
