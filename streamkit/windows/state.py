"""What a windowed operation keeps in memory for one task's window store.

The store is the truth: stream time, every window, the expiry index and buffered
records are store entries, so they reach the changelog and come back after a crash, a
lost disk or a rebalance. This object only holds what makes the hot path cheap, and
is rebuilt from the store whenever a task is created:

- the expiry index entries written since the last commit (a heap), while the committed
  ones are read from RocksDB from a cursor that only moves forward;
- the windows closed since the last commit, which are deleted in the next commit
  period: a window's final result and its closing are sent in one commit, and only
  once that commit is complete may the window disappear;
- per key, the store keys written since the last commit, so that a key's windows can be
  listed without scanning the whole write-back cache;
- the stream time and input offsets at the start of the current commit period, written
  with the stream time (codec.Clock) so that a replay starts from them.

A commit is noticed as an empty write-back cache at the next record: the runner clears
it only after the changelog and the outputs were acknowledged. Only a commit of the input
offsets starts a new commit period. A state made durable without them (at once, for a
`?wait_for=` read; or by a commit whose offsets the group refused) belongs to the period
it was processed in: a crash replays the records since the last commit of offsets, which
must meet the stream time and the windows that commit left, as after a commit cut short.
"""
from __future__ import annotations

import heapq
import itertools
from typing import Any, Iterator, cast

from ..state.store import TOMBSTONE, PartitionStore
from .codec import (
    INDEX,
    RECORD_INDEX,
    STREAM_TIME,
    Agg,
    Buffered,
    Clock,
    WindowKeys,
    WindowValues,
    time_bytes,
)

NO_TIME = -(1 << 62)
NEVER = 1 << 62
_T = slice(1, 9)  # the close time in an index key's bytes


class WindowState:
    __slots__ = ("store", "uncommitted", "keys", "values", "stream_time", "period_stream_time",
                 "period_from", "next_close", "heap", "pending", "touched", "track", "written",
                 "flushed", "clocked", "_cursor", "_rocks_next", "_seq")

    def __init__(self, store: PartitionStore, track: bool, resumed_at: dict[str, int],
                 topic: str | None, uncommitted: dict[Any, int]) -> None:
        self.store = store
        # The task's input offsets processed and not yet committed (Task.offsets): empty
        # after a commit of offsets, and only then.
        self.uncommitted = uncommitted
        self.keys = cast(WindowKeys, store.keys)      # a window store's codecs
        self.values = cast(WindowValues, store.values)
        clock = store.get(STREAM_TIME)
        self.stream_time: int = NO_TIME if clock is None else clock.stream_time
        if clock is not None and topic is not None and (
                clock.period_from.get(topic) == resumed_at.get(topic) is not None):
            # The commit of offsets that ends this clock's period did not complete (the
            # state may have been made durable in it, once or more): its records are
            # replayed from the start of the period, so stream time starts there again.
            self.stream_time = clock.period_stream_time
        self.period_stream_time = self.stream_time
        self.period_from: dict[str, int] = {}
        self.written = False
        self.flushed = False  # the write-back cache was written since the period began
        self.clocked = False  # the stream time is in the write-back cache (finish)
        self.heap: list[tuple[int, int, tuple]] = []
        self.pending: dict[tuple, tuple] = {}  # closed window -> its index key
        self.touched: dict[Any, set[tuple]] = {}
        self.track = track
        self._cursor = {INDEX: INDEX, RECORD_INDEX: RECORD_INDEX}
        self._rocks_next = {INDEX: self._peek(INDEX), RECORD_INDEX: self._peek(RECORD_INDEX)}
        self._seq = itertools.count()
        self.next_close = min(self._rocks_next.values())

    # commit detection and stream time -------------------------------------------------
    def sync(self) -> bool:
        """Call before each record: after a commit, start a new commit period (when the
        commit took the input offsets) and purge the windows the last one closed. Returns
        whether a new period started."""
        if self.written and not self.store.dirty:
            self.written = self.clocked = False
            self.flushed = True
            self._flushed()
        # Made durable without the input offsets, the period goes on; the commit of the
        # offsets that ends it may come when this store has nothing more to write.
        if not self.flushed or self.uncommitted:
            return False
        self.flushed = False
        self.period_stream_time = self.stream_time
        self.period_from = {}
        for dk, ik in self.pending.items():
            # Data before index: a lost index entry would only leave garbage behind,
            # a lost data deletion under a deleted index would never be purged.
            self.store.delete(dk)
            self.store.delete(ik)
        self.pending.clear()
        return True

    def _flushed(self) -> None:
        """What any write of the write-back cache to RocksDB moves on."""
        # The heap's entries are in RocksDB now, ahead of the cursors: make sure the next
        # pass scans far enough back to meet them. An entry already behind a cursor (one
        # due when it was added: a join's record waiting for its null result under Kafka
        # Streams' semantics) stays in the heap, which the scan would never meet.
        if self.heap:
            behind = []
            for entry in self.heap:
                close, _, ik = entry
                prefix = INDEX if ik[0] == "x" else RECORD_INDEX
                if self.keys.encode(ik) < self._cursor[prefix]:
                    behind.append(entry)
                elif close < self._rocks_next[prefix]:
                    self._rocks_next[prefix] = close
            heapq.heapify(behind)
            self.heap = behind
        self.touched.clear()

    def finish(self) -> None:
        """Call after each record. The stream time enters the write-back cache with the
        first record after each write of the cache (so that the cache is empty only once a
        commit has taken it) and goes to its end at the commit (before_commit)."""
        if not self.clocked:
            self.store.dirty[STREAM_TIME] = self._clock()
            self.clocked = True
        self.written = True

    def before_commit(self) -> None:
        """Called by the commit (Task.before_commit) before it encodes the write-back
        cache: stream time goes last in the changelog order, with its final value, so that
        a crash that cut a commit's changelog short restores the stream time the surviving
        entries were written under, and replay judges lateness as before. (Once per commit,
        not per record: moving an entry to the end of a large dict costs a slot each time.)"""
        if self.clocked:
            dirty = self.store.dirty
            dirty.pop(STREAM_TIME, None)
            dirty[STREAM_TIME] = self._clock()

    def _clock(self) -> Clock:
        return Clock(self.stream_time, self.period_stream_time, self.period_from)

    # reads and writes -----------------------------------------------------------------
    def get(self, k: tuple) -> Any:
        return self.store.get(k, None)

    def put(self, k: tuple, v: Any, key: Any = None) -> None:
        self.store.put(k, v)
        if self.track:
            self.touched.setdefault(key, set()).add(k)

    def put_last(self, k: tuple, v: Any, key: Any = None) -> None:
        """Put k at the end of the changelog order of this commit."""
        dirty = self.store.dirty
        dirty.pop(k, None)
        dirty[k] = TOMBSTONE if v is None else v
        if self.track and key is not None:
            self.touched.setdefault(key, set()).add(k)

    def tombstones_last(self, key: Any) -> None:
        """Move key's deletions of this commit to the end of the changelog order, data
        before index entries."""
        dirty = self.store.dirty
        gone = [k for k in self.touched.get(key, ()) if dirty.get(k) is TOMBSTONE]
        gone.sort(key=len)
        for k in gone:
            del dirty[k]
            dirty[k] = TOMBSTONE

    def add_index(self, ik: tuple) -> None:
        """Register an expiry index entry (("x" or "y", close, ...)), written last."""
        self.put_last(ik, True)
        heapq.heappush(self.heap, (ik[1], next(self._seq), ik))
        if ik[1] < self.next_close:
            self.next_close = ik[1]

    def new_window(self, dk: tuple, agg: Agg, close: int) -> None:
        # Index before data: a changelog cut short between them leaves an index entry
        # that points at nothing (skipped), never a window that would not expire.
        self.add_index(("x", close, dk[0], dk[1], dk[2]))
        self.put_last(dk, agg, dk[0])

    def close_window(self, dk: tuple, agg: Agg, close: int, by: tuple[str, int]) -> None:
        agg.closed = by
        self.put_last(dk, agg, dk[0])
        self.pending[dk] = ("x", close, dk[0], dk[1], dk[2])
        # A session merged and closed in one commit moves behind the deletions of the
        # sessions it replaced: move them behind it again.
        self.tombstones_last(dk[0])

    def drop_window(self, dk: tuple, close: int) -> None:
        self.put_last(dk, None, dk[0])
        self.put_last(("x", close, dk[0], dk[1], dk[2]), None, dk[0])

    # expiry ---------------------------------------------------------------------------
    def due(self) -> list[tuple]:
        """Index keys whose close time <= stream time, oldest first; moves the cursors."""
        st = self.stream_time
        out = []
        for prefix in (INDEX, RECORD_INDEX):
            out.extend(self._scan_due(prefix, st))
        heap = self.heap
        while heap and heap[0][0] <= st:
            out.append(heapq.heappop(heap)[2])
        self.next_close = min(heap[0][0] if heap else NEVER, *self._rocks_next.values())
        out.sort(key=lambda ik: ik[1])
        return out

    def _scan_due(self, prefix: bytes, st: int) -> list[tuple]:
        if self._rocks_next[prefix] > st:
            return []
        limit = time_bytes(st)
        out, last, nxt = [], None, NEVER
        for kb, _ in self.store.raw_items(start=self._cursor[prefix], prefix=prefix):
            if kb[_T] > limit:
                nxt = self.keys.decode(kb)[1]
                break
            out.append(self.keys.decode(kb))
            last = kb
        if last is not None:
            self._cursor[prefix] = last + b"\x00"
        self._rocks_next[prefix] = nxt
        return out

    def _peek(self, prefix: bytes) -> int:
        for kb, _ in self.store.raw_items(prefix=prefix):
            return self.keys.decode(kb)[1]
        return NEVER

    # a key's windows and records ------------------------------------------------------
    def windows_of(self, key: Any, start_from: int = NO_TIME, start_to: int = NEVER
                   ) -> dict[tuple, Agg]:
        """The windows of key with start in [start_from, start_to], uncommitted included."""
        prefix = self.keys.window_prefix(key)
        n = len(prefix)
        out = {}
        for kb, vb in self._rows(prefix, start_from, start_to):
            start = self._time(kb, n)
            dk = (key, start, self._time(kb, n + 8))
            v = self._current(dk, vb)
            if v is not None:
                out[dk] = v
        for k in self.touched.get(key, ()):
            if len(k) == 3 and start_from <= k[1] <= start_to and k not in out:
                v = self.store.dirty.get(k)
                if v is not None and v is not TOMBSTONE:
                    out[k] = v
        return out

    def records_of(self, key: Any, ts_from: int, ts_to: int) -> list[tuple[int, str, int, Any]]:
        """Buffered records of key with ts in [ts_from, ts_to] as (ts, topic, offset,
        value), in timestamp then offset order."""
        prefix = self.keys.record_prefix(key)
        seen: dict[tuple, Any] = {}
        for kb, vb in self._rows(prefix, ts_from, ts_to):
            rk = self.keys.decode(kb)
            v = self._current(rk, vb)
            if v is not None:
                seen[rk] = v
        for k in self.touched.get(key, ()):
            if len(k) == 5 and k[0] == "r" and ts_from <= k[2] <= ts_to and k not in seen:
                v = self.store.dirty.get(k)
                if v is not None and v is not TOMBSTONE:
                    seen[k] = v
        rows = [(k[2], k[3], k[4], v.value) for k, v in seen.items() if type(v) is Buffered]
        rows.sort(key=lambda r: (r[0], r[1], r[2]))
        return rows

    def _rows(self, prefix: bytes, t_from: int, t_to: int) -> Iterator[tuple[bytes, bytes]]:
        """The key's entries (under prefix) whose time is in [t_from, t_to]."""
        start = prefix + time_bytes(t_from) if t_from > NO_TIME else prefix
        end = prefix + time_bytes(t_to + 1) if t_to < NEVER else None
        return self.store.raw_items(start=start, end=end, prefix=prefix)

    def _current(self, k: tuple, vb: bytes) -> Any:
        v = self.store.dirty.get(k, vb)
        if v is vb:
            return self.values.decode(vb)
        return None if v is TOMBSTONE else v

    @staticmethod
    def _time(kb: bytes, pos: int) -> int:
        return int.from_bytes(kb[pos:pos + 8], "big") - (1 << 63)
