"""The stream-stream join with Kafka Streams' semantics: `join_window(...,
semantics="kafka")`, for topologies that must give the records Kafka Streams gives.

What Kafka Streams does (KStreamKStreamJoin, with its fix against spurious results):

- One stream time for both inputs: the largest event time of their records so far.
- Each input buffers its records for `before + after + grace` (the retention), measured on
  that input's own largest event time: an older record is neither buffered nor seen by the
  other input's records. There are no late records: a record behind the stream time still
  joins what the other input has buffered.
- A record joins every buffered record of the other input in its window (bounds clamped at
  0), at the later of the two times.
- A record that joins nothing, of a side whose non-matched results are wanted (left for
  left and outer joins, right for outer): if its window ends before the stream time, its
  null result comes at once; otherwise it waits in a third buffer (`<name>-outer`) until the
  stream time passes `t + after + grace` (left) or `t + before + grace` (right), unless a
  record of the other input joins it first. The waiting results that are due are emitted
  oldest first (right before left at the same time, then by key), before the join results
  of a record that is not out of order; an out-of-order record emits none.

So a null result can come before a match of the same record (an out-of-order record of
the other input, within the retention, joins it after its window closed), and the results
depend on how the two inputs interleave, which a replay after a crash may change: with this
semantics the join is at least once, not exact (docs/joins.md).
"""
from __future__ import annotations

from typing import Any

from ..serde import Serde
from ..windows.codec import Buffered
from ..windows.late import report_late
from ..windows.state import WindowState
from .windowed import ClockedBuffer, JoinInput, WindowedJoin, check_join_record, due_records


class Sided:
    """Values of either input in one buffer: a side byte (1 for left), then the value in
    its input's serialization."""

    def __init__(self, left: Serde, right: Serde) -> None:
        self.left, self.right = left, right
        self.name = f"join-sides:{left.name}:{right.name}"

    def encode(self, v: tuple[bool, Any]) -> bytes:
        return b"\x01" + self.left.encode(v[1]) if v[0] else b"\x00" + self.right.encode(v[1])

    def decode(self, data: bytes) -> tuple[bool, Any]:
        if data[:1] == b"\x01":
            return True, self.left.decode(data[1:])
        return False, self.right.decode(data[1:])


class SharedTimeJoinNode(JoinInput):
    """One input of a stream-stream join with Kafka Streams' semantics (module docstring).

    Each input's buffer is clocked on that input's own largest event time (Kafka Streams'
    window store time, which decides what is still buffered; its records' joined flag is
    not used); the stream time is the larger of the two; the outer buffer, clocked on the
    stream time, holds the waiting results."""

    __slots__ = ("retention",)

    def __init__(self, join: WindowedJoin, is_left: bool) -> None:
        super().__init__(join, is_left)
        self.retention = join.windows.retention_ms

    def _outer(self, task: Any) -> WindowState | None:
        name = self.join.outer
        if name is None:
            return None
        ws = task.operator_state.get(name)
        if ws is None:
            ws = task.operator_state[name] = WindowState(task.stores[name], True, {}, None,
                                                         task.offsets)
        return ws

    def process(self, key, value, ts):
        check_join_record(self.join.name, key, value)
        rec = self.ctx.record
        topic, offset = rec.topic, rec.offset
        task = self.ctx.task
        mine = self._state(task, self.this)     # this input's records and time
        theirs = self._state(task, self.other)  # the other input's records and time
        outer = self._outer(task)
        for ws in (mine, theirs, outer):
            if ws is not None:
                ws.sync()
        # Both clocks note the first offset of every input in their commit period, so that
        # a record of either input settles both after a restart (the stream time needs
        # both; one input's clock has no record of its own yet).
        for ws in (mine, theirs):
            ws.resolve(topic, task.resumed_at)
            if topic not in ws.period_from:
                ws.period_from[topic] = offset
        try:
            before = max(mine.stream_time, theirs.stream_time)
            stream_time = max(before, ts)
            if ts > mine.stream_time:
                mine.stream_time = ts
            if outer is not None:
                outer.stream_time = stream_time
                if ts >= before and stream_time >= outer.next_close:
                    self._emit_closed(outer)
            self._join(mine, theirs, outer, key, value, ts, topic, offset, stream_time)
            if mine.stream_time >= mine.next_close:
                due_records(mine)  # past retention: deleted in the next commit period
        finally:
            mine.finish()
            if outer is not None:
                outer.finish()
            if theirs.store.dirty:
                theirs.written = True  # so that its next sync() notices the commit

    def _join(self, mine: ClockedBuffer, theirs: ClockedBuffer, outer: WindowState | None,
              key: Any, value: Any, ts: int, topic: str, offset: int, stream_time: int) -> None:
        start, end = max(0, ts + self.lo), max(0, ts + self.hi)
        # What the other input still buffers: its retention, on its own time.
        start = max(start, theirs.stream_time - self.retention + 1)
        matches = theirs.records_of(key, start, end) if start <= end else []
        joiner = self.join.joiner
        # Every joiner call first: one that raises sends the record to dead letters before
        # anything is buffered or settled.
        if self.is_left:
            out = [(joiner(value, m[3][1]), m[0] if m[0] > ts else ts) for m in matches]
        else:
            out = [(joiner(m[3][1], value), m[0] if m[0] > ts else ts) for m in matches]
        if self.emit_this and not matches:
            if end < stream_time or outer is None:
                out.append((joiner(value, None) if self.is_left else joiner(None, value), ts))
            else:
                outer.add_index(("y", ts + self.hi + self.grace + 1, key, ts, topic, offset))
                outer.put_last(("r", key, ts, topic, offset), Buffered((self.is_left, value)),
                               key)
        if outer is not None:
            for t in sorted({m[0] for m in matches}):
                self._settle(outer, key, t)
        if ts + self.retention > mine.stream_time:
            mine.add_index(("y", ts + self.retention, key, ts, topic, offset))
            mine.put_last(("r", key, ts, topic, offset), Buffered((False, value)), key)
        else:
            # Kafka Streams drops it from its window store (the record still joined what
            # the other input buffers): report that later records will not see it.
            report_late(self.ctx, self.this, self.join.late_topic, ts, mine.stream_time,
                        [(ts + self.lo, ts + self.hi)])
        for v, t in out:
            self.forward(key, v, t)

    def _settle(self, outer: WindowState, key: Any, t: int) -> None:
        """The other input's records of key at time t have joined: none of them waits for
        a null result any more (Kafka Streams drops them from its outer store by key and
        time)."""
        for rts, rtopic, roffset, (is_left, _v) in outer.records_of(key, t, t):
            if is_left != self.is_left:
                # Its index entry: the other input's window ends -lo after its record.
                outer.put_last(("r", key, rts, rtopic, roffset), None, key)
                outer.put_last(("y", rts - self.lo + self.grace + 1, key, rts, rtopic, roffset),
                               None, key)

    def _emit_closed(self, outer: WindowState) -> None:
        """Emit the waiting null results whose window the stream time has passed, oldest
        first, right before left at one time, then by key (Kafka Streams' outer store
        order); they are deleted in the next commit period, so that a crash can repeat
        them, never lose them."""
        key_bytes = outer.keys.inner.encode
        rows = sorted(due_records(outer), key=lambda r: (r[0][2], r[1][0], key_bytes(r[0][1]),
                                                          r[0][3], r[0][4]))
        joiner = self.join.joiner
        for rk, (is_left, v) in rows:
            self.forward(rk[1], joiner(v, None) if is_left else joiner(None, v), rk[2])
