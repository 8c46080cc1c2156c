"""The stream-stream windowed join: two co-partitioned streams, each record joined with the
other stream's records of the same key whose event time lies in its join window.

    left.join_window(right, JoinWindows(before_ms=5_000, after_ms=5_000, grace_ms=1_000),
                     lambda l, r: {**l, **r}, how="inner", name="orders-payments")

A left record at t joins the right records with time in [t - before_ms, t + after_ms] (a
right record at t, the left records in [t - after_ms, t + before_ms]); the result is
joiner(left value, right value), keyed by the common key, at the later of the two times.

State. Each input's records are buffered in a window store of their own (a changelog table
of the topology, `<name>-left` and `<name>-right`, the layout of streamkit.windows.codec:
buffered-record entries and, for an input whose records may have null results, their
expiry index; the other inputs' buffers are swept, see ClockedBuffer), with the stream
time that closes their windows: the other input's.

Stream time, per input. Each input has its own stream time (per partition): the largest
event time of its records that reached the join. A record more than grace_ms behind its
own input's stream time is late (streamkit.windows.late). A left record's window closes
once the right input's stream time passes t + after_ms + grace_ms: every right record
that could still join it would be late by then. The left record is then dropped from its
buffer and, with how="left" or "outer", emitted as joiner(left, None) if it never joined
(symmetrically for right records with how="outer", at t + before_ms + grace_ms). So no
null result is ever followed by a match, and a record's buffer time is at most
before_ms + after_ms + grace_ms of stream time.

Judging each record against its own input's stream time (Kafka Streams keeps one stream
time for both) makes the result independent of how the two topics' records interleave:
the runner processes fetched batches one partition at a time, and a replay after a crash
interleaves them differently. Only the order within each topic partition matters, and
that never changes.

Across crashes (at-least-once, as the windowed aggregation; docs/windows.md):
- a stream time entry (codec.Clock) records the stream time and first input offsets of
  its commit period: a task that resumes at those offsets restarts the stream time from
  the start of the period, so each replayed record is judged late or on time as before.
  A restarted task learns where an input resumed only from that input's first record, so
  until then the clock keeps its stored entry untouched, and uses its lower bound;
- a closed record is deleted only in the commit period after the one that closed it (and
  emitted its null result): a record replayed from the closing period still finds it;
- each buffered record remembers whether it has joined (for the null results), in the
  same entry; a record replayed finds again every record it joined the first time.
So a crash can repeat results, never lose or invent one: the pairs of input offsets are
exactly those of a run without the crash.

This is the default semantics; join_window(..., semantics="kafka") gives Kafka Streams'
records instead (streamkit.joins.shared_time), on the same buffers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..processing.nodes import Node, SourceNode
from ..processing.topology import TableSpec
from ..serde import Serde
from ..state.keys import KeyCodec, codec_for
from ..state.store import TOMBSTONE, PartitionStore
from ..windows.codec import RECORD, STREAM_TIME, Buffered, WindowKeys
from ..windows.late import report_late
from ..windows.specs import _check_int, _non_negative
from ..windows.state import NEVER, NO_TIME, WindowState
from .held import HeldRecords

Joiner = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class JoinWindows:
    """Which records of two streams join, and for how long out-of-order records are taken.

    A left record at t joins the right records with time in [t - before_ms, t + after_ms]
    (both bounds inclusive). Either bound may be negative (a window entirely after or
    before the left record) as long as the window is not empty: before_ms + after_ms >= 0.
    grace_ms has no default: records more than grace_ms behind their stream's stream time
    are late, and non-matched left/outer results wait for their window end + grace_ms.
    """

    before_ms: int
    after_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        _check_int("before_ms", self.before_ms)
        _check_int("after_ms", self.after_ms)
        _non_negative("grace_ms", self.grace_ms)
        if self.before_ms + self.after_ms < 0:
            raise ValueError(f"the join window [t - {self.before_ms}, t + {self.after_ms}] is "
                             f"empty: before_ms + after_ms must be >= 0")

    @classmethod
    def of(cls, difference_ms: int, grace_ms: int) -> "JoinWindows":
        """Records at most difference_ms apart join (before_ms = after_ms = difference_ms)."""
        return cls(difference_ms, difference_ms, grace_ms)

    @property
    def retention_ms(self) -> int:
        """The longest a record stays buffered, in stream time of the other input."""
        return self.before_ms + self.after_ms + self.grace_ms


class Flagged:
    """A buffered record's value, with whether it has joined yet (one byte in front of the
    input's serialization)."""

    def __init__(self, inner: Serde) -> None:
        self.inner = inner
        self.name = f"join-buffer:{inner.name}"

    def encode(self, v: tuple[bool, Any]) -> bytes:
        return self.wrap(v[0], self.inner.encode(v[1]))

    @staticmethod
    def wrap(joined: bool, encoded: bytes) -> bytes:
        """The encoding of (joined, value) from the value's own encoding."""
        return (b"\x01" if joined else b"\x00") + encoded

    def decode(self, data: bytes) -> tuple[bool, Any]:
        return data[:1] == b"\x01", self.inner.decode(data[1:])


@dataclass
class JoinBufferSpec(TableSpec):
    """One input's buffer of a stream-stream join: a window store (not exposed to queries)."""

    join_windows: JoinWindows | None = None

    @property
    def key_codec(self) -> KeyCodec:
        return WindowKeys(codec_for(self.keys))


# A swept buffer is swept once its oldest record has been closed for this long (or its
# close_after, if longer): each sweep reads about twice the records it deletes.
MIN_SWEEP_MS = 1_000
# A swept buffer of one task holds its records in memory as well while it has at most this
# many (their decoded values: about 20 MB for records of a few hundred bytes); past it,
# its reads go to RocksDB alone. The bound leaves room for one input running ahead of the
# other by a fetch or two (the other's stream time, which closes the records, lags then).
HELD_RECORDS = 50_000


class ClockedBuffer(WindowState):
    """A join buffer's WindowState whose stream time (the other input's; with Kafka
    Streams' semantics, its own input's) is settled only once that input's first record
    after a (re)start says where the input resumed.

    Until then `stream_time` is a lower bound (the start of the stored clock's commit
    period), used only to tell whether a record's window is already closed, and the stored
    clock is left as it is: writing the lower bound would lose the real stream time.

    Swept buffers. The records of an input whose non-matched results nobody asked for
    (both inputs of an inner join, the right input of a left join) need not leave at the
    moment their window closes: a closed record can join no record that is not late (the
    module docstring). Such a buffer (close_after given: the distance from a record's time
    to its window's close) keeps no expiry index; at the start of a commit period it
    deletes, in one pass over its records, those whose window had closed when the period
    began, once the oldest has been closed for a while (MIN_SWEEP_MS). A record costs one
    changelog entry and one deletion, where an indexed record costs four.

    Held records. A swept buffer is written only by buffer() (its records are never marked
    joined: that is for inputs with non-matched results) and by its sweeps, so it can keep
    every record in memory as well, by key (`held`), and find a key's records there instead
    of in a RocksDB scan, and sweep there. It does while it has at most HELD_RECORDS: it
    starts so when its store is empty, drops them past that bound, and takes them again
    from the store at a sweep that leaves at most half of it (so after a restart too)."""

    __slots__ = ("loaded", "resolved", "close_after", "sweep_delay", "sweep_at", "held")

    def __init__(self, store: PartitionStore, uncommitted: dict[Any, int],
                 close_after: int | None = None) -> None:
        super().__init__(store, True, {}, None, uncommitted)
        self.loaded = store.get(STREAM_TIME)
        self.resolved = self.loaded is None
        if self.loaded is not None:
            self.stream_time = self.period_stream_time = self.loaded.period_stream_time
        self.close_after = close_after
        # From a record's time to the sweep that deletes it, at the earliest.
        self.sweep_delay = 0 if close_after is None else (
            close_after + max(close_after, MIN_SWEEP_MS))
        # A restored buffer's oldest record is not known: the first new period sweeps.
        self.sweep_at = NO_TIME
        self.held: HeldRecords | None = None  # see the class docstring
        if close_after is not None and next(store.raw_items(prefix=RECORD), None) is None:
            self.held = HeldRecords()

    def sync(self) -> bool:
        if not super().sync():
            return False
        if self.close_after is not None and self.period_stream_time >= self.sweep_at:
            self._sweep()
        return True

    def buffer(self, rk: tuple, value: Buffered, key: Any, raw: bytes | None = None) -> None:
        """Buffer a record of a swept buffer; raw: the input record's value bytes, when
        they stand for its value (WindowedJoinNode._takes_source_bytes)."""
        due = rk[2] + self.sweep_delay
        if due < self.sweep_at:
            self.sweep_at = due
        held = self.held
        if held is None:
            self.put(rk, value, key)
        elif held.count < HELD_RECORDS:
            # Read from the held records alone: the store's reads need not know which
            # of its uncommitted entries are this key's (`touched`). Put encoded (the
            # commit takes such entries as they are: WindowKeys.takes_encoded): its
            # deletion reuses the key's bytes, and an input's bytes are not encoded again.
            kb = self.keys.encode(rk)
            flagged = value.value
            self.store.dirty[kb] = self.values.encode(value) if raw is None else \
                self.values.record_bytes(Flagged.wrap(flagged[0], raw))
            held.add(key, (rk[2], rk[3], rk[4], flagged, kb))
        else:
            self.held = None
            self._decode_dirty()
            for k in self.store.dirty:  # what the store's reads of this period need
                if len(k) == 5 and k[0] == "r":
                    self.touched.setdefault(k[1], set()).add(k)
            self.put(rk, value, key)

    def _decode_dirty(self) -> None:
        """The write-back cache's encoded entries (of held records and their deletions)
        under their keys, for the store's reads once the records are no longer held."""
        store = self.store
        dirty = store.dirty
        for kb in [k for k in dirty if type(k) is bytes]:
            key, value = store.decoded(kb, dirty.pop(kb))
            dirty[key] = value

    def records_of(self, key: Any, ts_from: int, ts_to: int) -> list[Any]:
        """As WindowState.records_of: (ts, topic, offset, value) per record, and the held
        records' further fields after these (held.Entry)."""
        if self.held is None:
            return super().records_of(key, ts_from, ts_to)
        return self.held.between(key, ts_from, ts_to)

    def _sweep(self) -> None:
        """Delete the records whose window closed before this commit period began: no
        record from now on can join them, nor one replayed after a crash (its input's stream
        time restarts at the start of this period), and none of them has a result to wait
        for. The deletions reach the changelog with this period's commit."""
        assert self.close_after is not None
        limit = self.period_stream_time - self.close_after  # a record at ts <= limit closed
        oldest = self._sweep_held(limit) if self.held is not None else self._sweep_store(limit)
        self.sweep_at = NEVER if oldest == NEVER else oldest + self.sweep_delay

    def _sweep_held(self, limit: int) -> int:
        """Sweep the held records (and the store with them); the oldest left."""
        assert self.held is not None
        oldest, dropped = self.held.drop_until(limit)
        dirty = self.store.dirty  # the deletions, written with this period's commit
        for _key, entries in dropped:
            for entry in entries:
                dirty[entry[4]] = TOMBSTONE  # the bytes of the record's key
        return NEVER if oldest is None else oldest

    def _sweep_store(self, limit: int) -> int:
        """Sweep the store; hold what is left if it is at most half of HELD_RECORDS. The
        oldest left."""
        oldest, keep = NEVER, HELD_RECORDS // 2
        left: list[tuple[bytes, bytes]] | None = []
        record_time, decode, delete = self.keys.record_time, self.keys.decode, self.store.delete
        for kb, vb in self.store.raw_items(prefix=RECORD):
            ts = record_time(kb)
            if ts <= limit:
                delete(decode(kb))
                continue
            if ts < oldest:
                oldest = ts
            if left is not None:
                if len(left) < keep:
                    left.append((kb, vb))
                else:
                    left = None
        if left is not None:
            held = HeldRecords()
            for kb, vb in left:
                rk = decode(kb)
                held.add(rk[1], (rk[2], rk[3], rk[4], self.values.decode(vb).value, kb))
            self.held = held
        return oldest

    def resolve(self, topic: str, resumed_at: dict[str, int]) -> None:
        """Settle the stream time at the first record of its input (from `topic`)."""
        if self.resolved:
            return
        clock = self.loaded
        period = clock.period_from
        if topic in period:
            incomplete = period[topic] == resumed_at.get(topic)
        else:  # the period had no record of this topic: ask the topics it had
            known = [t for t in period if t in resumed_at]
            incomplete = bool(known) and all(period[t] == resumed_at[t] for t in known)
        # The commit that wrote the clock did not complete: its records are replayed from
        # the start of its period, so the stream time starts there again.
        self.stream_time = clock.period_stream_time if incomplete else clock.stream_time
        self.period_stream_time = self.stream_time
        self.period_from = {}
        self.resolved = True

    def finish(self) -> None:
        if self.resolved:
            super().finish()
        elif self.store.dirty:
            self.written = True


class WindowedJoin:
    """What both inputs' nodes share: the buffers are `<name>-left` and `<name>-right`,
    and, with Kafka Streams' semantics, `<name>-outer` for the null results that wait."""

    __slots__ = ("name", "windows", "joiner", "how", "late_topic", "stores", "outer", "swept")

    def __init__(self, name: str, windows: JoinWindows, joiner: Joiner, how: str,
                 late_topic: str, semantics: str) -> None:
        self.name, self.windows, self.joiner, self.how = name, windows, joiner, how
        self.late_topic = late_topic
        self.stores = (f"{name}-left", f"{name}-right")
        self.outer = f"{name}-outer" if semantics == "kafka" and how != "inner" else None
        # The swept buffers (ClockedBuffer) and their records' close_after: with this
        # semantics, those of the inputs without non-matched results.
        self.swept: dict[str, int] = {}
        if semantics != "kafka":
            left, right = self.stores
            if how not in ("left", "outer"):
                self.swept[left] = close_after(windows, True)
            if how != "outer":
                self.swept[right] = close_after(windows, False)


def close_after(windows: JoinWindows, left: bool) -> int:
    """How far past a record's time the other input's stream time must be for the
    record's window to have closed (left: a left record's window)."""
    return (windows.after_ms if left else windows.before_ms) + windows.grace_ms + 1


def check_join_record(name: str, key: Any, value: Any) -> None:
    """Reject what a join cannot take; the record goes to dead letters."""
    if key is None:
        raise ValueError(f"{name}: a stream-stream join needs a record key")
    if value is None:
        raise ValueError(f"{name}: a stream-stream join needs a record value "
                         f"(None would read as the missing side of a result)")


def due_records(ws: WindowState) -> list[tuple[tuple, Any]]:
    """The buffered records whose index entry the buffer's stream time has reached, as
    (record key, value), each marked for deletion in the next commit period
    (WindowState.sync): a record replayed from this period still finds them."""
    out = []
    key_bytes = ws.keys.inner.encode
    # Oldest first, then by key bytes, as Kafka Streams emits them (its outer store's order).
    due = sorted((ik for ik in ws.due() if ik[0] == "y"),
                 key=lambda ik: (ik[3], key_bytes(ik[2]), ik[4], ik[5]))
    for ik in due:
        rk = ("r", ik[2], ik[3], ik[4], ik[5])
        if rk in ws.pending:
            continue
        buffered = ws.get(rk)
        if buffered is None:  # its record never reached the changelog: a stale entry
            ws.store.delete(ik)
            continue
        ws.pending[rk] = ik
        out.append((rk, buffered.value))
    return out


class JoinInput(Node):
    """What the node of one input of a stream-stream join knows, in either semantics: its
    buffer and the other input's, and the bounds of a record's window relative to its time
    (a left record at t joins right times in [t - before, t + after]; a right record at t,
    left times in [t - after, t + before])."""

    __slots__ = ("join", "is_left", "this", "other", "lo", "hi", "grace", "emit_this",
                 "emit_other")

    def __init__(self, join: WindowedJoin, is_left: bool) -> None:
        super().__init__(f"join-window:{join.name}:{'left' if is_left else 'right'}")
        w, how = join.windows, join.how
        self.join, self.is_left, self.grace = join, is_left, w.grace_ms
        left_emits, right_emits = how in ("left", "outer"), how == "outer"
        if is_left:
            self.this, self.other = join.stores
            self.lo, self.hi = -w.before_ms, w.after_ms
            self.emit_this, self.emit_other = left_emits, right_emits
        else:
            self.other, self.this = join.stores
            self.lo, self.hi = -w.after_ms, w.before_ms
            self.emit_this, self.emit_other = right_emits, left_emits

    def _state(self, task: Any, name: str) -> ClockedBuffer:
        ws = task.operator_state.get(name)
        if ws is None:
            ws = task.operator_state[name] = ClockedBuffer(task.stores[name], task.offsets,
                                                           self.join.swept.get(name))
        return ws


class WindowedJoinNode(JoinInput):
    """One input of a stream-stream windowed join (see the module docstring)."""

    __slots__ = ("close_after", "source", "source_values")

    def __init__(self, join: WindowedJoin, is_left: bool,
                 source: SourceNode | None = None) -> None:
        super().__init__(join, is_left)
        # A record's window closes when the other input's stream time reaches this.
        self.close_after = close_after(join.windows, is_left)
        # The source whose records this input is, as its serde decoded them (if so), and
        # whether their value bytes stand for the values (_takes_source_bytes; None: not
        # known before the first record, when the topology is complete).
        self.source = source
        self.source_values: bool | None = None

    def process(self, key, value, ts):
        check_join_record(self.join.name, key, value)
        rec = self.ctx.record
        topic, offset = rec.topic, rec.offset
        task = self.ctx.task
        mine = self._state(task, self.this)     # this input's records; the other's clock
        theirs = self._state(task, self.other)  # the other input's records; this clock
        # sync() has work only once a commit has emptied the write-back cache, or while a
        # period waits to begin: tested here, as it is per record and mostly has none.
        if mine.flushed or not mine.store.dirty:
            mine.sync()
        if theirs.flushed or not theirs.store.dirty:
            theirs.sync()
        if not theirs.resolved:
            theirs.resolve(topic, task.resumed_at)
        if topic not in theirs.period_from:
            theirs.period_from[topic] = offset
        try:
            if ts + self.grace < theirs.stream_time:
                report_late(self.ctx, self.this, self.join.late_topic, ts, theirs.stream_time,
                            [(ts + self.lo, ts + self.hi)])
                return
            if ts > theirs.stream_time:
                theirs.stream_time = ts
            # As in Kafka Streams, the non-matched results this record's time settles come
            # before its own join results (a record whose window has closed cannot match
            # this record, which is not late).
            if theirs.stream_time >= theirs.next_close:
                self._expire(theirs)
            self._join(mine, theirs, key, value, ts, topic, offset)
        finally:
            if theirs.clocked and theirs.resolved:
                theirs.written = True  # all that finish() has to do then, per record
            else:
                theirs.finish()
            if mine.store.dirty:
                mine.written = True  # so that its next sync() notices the commit

    def _join(self, mine: ClockedBuffer, theirs: ClockedBuffer, key: Any, value: Any,
              ts: int, topic: str, offset: int) -> None:
        matches = theirs.records_of(key, ts + self.lo, ts + self.hi)
        joiner = self.join.joiner
        # Every joiner call first: one that raises sends the record to dead letters
        # before it is buffered or marks anything joined.
        if self.is_left:
            out = [(joiner(value, m[3][1]), m[0] if m[0] > ts else ts) for m in matches]
        else:
            out = [(joiner(m[3][1], value), m[0] if m[0] > ts else ts) for m in matches]
        close = ts + self.close_after
        if close <= mine.stream_time:
            # The other input is past this record's window already: nothing can join it
            # later, so it is not buffered, and its null result (if any) is final now.
            if not matches:
                if self.emit_this:
                    out.append((joiner(value, None) if self.is_left else joiner(None, value),
                                ts))
            elif self.emit_this:
                rk = ("r", key, ts, topic, offset)
                if mine.get(rk) is not None:  # buffered before a crash: it has joined
                    mine.put(rk, Buffered((True, value)), key)
        elif mine.close_after is not None:
            as_read = self.source_values
            if as_read is None:
                as_read = self._takes_source_bytes()
            mine.buffer(("r", key, ts, topic, offset), Buffered((bool(matches), value)), key,
                        self.ctx.record.value if as_read else None)
        else:
            # Index before data: a changelog cut short between them leaves an index entry
            # that points at nothing (skipped), never a record that would not expire.
            mine.add_index(("y", close, key, ts, topic, offset))
            mine.put_last(("r", key, ts, topic, offset), Buffered((bool(matches), value)), key)
        if self.emit_other:
            for m in matches:  # [:4]: a held record has more fields (held.Entry)
                ots, otopic, ooff, (joined, ovalue) = m[:4]
                if not joined:
                    theirs.put(("r", key, ots, otopic, ooff), Buffered((True, ovalue)), key)
        for v, t in out:
            self.forward(key, v, t)

    def _takes_source_bytes(self) -> bool:
        """Whether each value reaching this node is its record's value as the source
        decoded it, untouched, so that the record's value bytes are its serialization (a
        swept buffer writes them instead of encoding the value again): the input is the
        source itself and no other operation of the source runs before this one (one that
        changed a value in place would leave the bytes behind)."""
        src = self.source
        self.source_values = src is not None and len(src.children) == 1 \
            and src.children[0] is self
        return self.source_values

    def _expire(self, ws: ClockedBuffer) -> None:
        """Close the other input's records whose window this input's stream time has
        passed: emit the null results of those that never joined, and delete them in the
        next commit period (see WindowState.sync)."""
        joiner, records_are_left = self.join.joiner, not self.is_left
        for rk, (joined, value) in due_records(ws):
            if self.emit_other and not joined:
                result = joiner(value, None) if records_are_left else joiner(None, value)
                self.forward(rk[1], result, rk[2])
