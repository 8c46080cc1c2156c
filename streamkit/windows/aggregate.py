"""Windowed aggregation on the batched path: the part every window kind shares (stream
time, expiry, final emission), and tumbling and hopping windows.

Exactness across crashes. The runner's commits are at-least-once: after a crash, the
records since the last committed input offset are processed again, while the changelog
may already hold what they did. Each window therefore records, per input topic, the
offset of the last record it absorbed (`Agg.offsets`); a replayed record at or below it
is skipped for that window. One store entry holds both the aggregate and that offset,
so they reach the changelog together, and a window's result is the same whether or not
a crash happened. Closing follows the same rule: a window's final result is emitted and
the window marked closed in one commit, and it is deleted only in a later one, so a crash
can at worst emit a final result again, with the same value (see WindowState).
"""
from __future__ import annotations

import copy
from typing import Any, Callable

from ..processing.nodes import Node
from ..state.store import TOMBSTONE
from .codec import Agg, WindowedKey
from .late import report_late
from .specs import Hopping, Tumbling, WindowSpec
from .state import WindowState

_IMMUTABLE = (int, float, str, bytes, bool, tuple, frozenset, type(None))


def initializer(initial: Any) -> Callable[[], Any]:
    """A function returning a fresh initial aggregate for each window: a mutable initial
    value (a list, a dict) must not be shared by windows."""
    if callable(initial):
        return initial
    if isinstance(initial, _IMMUTABLE):
        return lambda: initial
    return lambda: copy.deepcopy(initial)


class WindowedAggregate(Node):
    """Folds each record into the windows of its key in a window store."""

    __slots__ = ("table", "windows", "initial", "add", "emit_final", "late_topic", "grace")
    track_keys = False  # whether the operator lists a key's windows (sessions, sliding)
    # apply(ws, key, value, ts, topic, offset) places a record in its windows: each kind
    # of window (time, sliding, session) defines it.
    apply: Callable[[WindowState, Any, Any, int, str, int], None]

    def __init__(self, table: str, windows: WindowSpec, initial: Any,
                 add: Callable[[Any, Any], Any], emit: str, late_topic: str) -> None:
        super().__init__(f"windowed:{table}")
        if emit not in ("update", "final"):
            raise ValueError(f"emit must be 'update' or 'final', not {emit!r}")
        self.table, self.windows, self.add = table, windows, add
        self.initial = initializer(initial)
        self.emit_final = emit == "final"
        self.late_topic = late_topic
        self.grace = windows.grace_ms

    def state(self, task: Any, topic: str | None) -> WindowState:
        ws = task.operator_state.get(self.table)
        if ws is None:
            ws = task.operator_state[self.table] = WindowState(
                task.stores[self.table], self.track_keys, task.resumed_at, topic,
                task.offsets)
        return ws

    def process(self, key, value, ts):
        if key is None:  # goes to dead letters: windows are per key
            raise ValueError(f"{self.table}: a windowed aggregation needs a record key")
        if ts < 0:  # goes to dead letters: windows start at 0, as in Kafka Streams
            raise ValueError(f"{self.table}: a windowed aggregation needs an event time >= 0, "
                             f"not {ts}")
        ctx = self.ctx
        rec = ctx.record
        topic, offset = rec.topic, rec.offset
        ws = self.state(ctx.task, topic)
        ws.sync()
        if topic not in ws.period_from:
            ws.period_from[topic] = offset
        if ts > ws.stream_time:
            ws.stream_time = ts
        try:
            self.apply(ws, key, value, ts, topic, offset)  # each kind of window has its own
            if ws.stream_time >= ws.next_close:
                self.expire(ws, (topic, offset))
        finally:  # a record whose add() raised goes to dead letters; keep the order
            ws.finish()

    def advance(self, task: Any, ts: int) -> None:
        """Move the stream time of task's partition to ts (if later), closing windows, as
        a record with that timestamp would; the test driver's advance_stream_time."""
        ws = self.state(task, None)
        ws.sync()
        if ts > ws.stream_time:
            ws.stream_time = ts
        if ws.stream_time >= ws.next_close:
            self.expire(ws, ("", -1))
        ws.finish()

    # Each window kind defines apply(ws, key, value, ts, topic, offset): fold one record
    # (not late unless stated) into its windows, or report it late.

    # expiry ---------------------------------------------------------------------------
    def expire(self, ws: WindowState, by: tuple[str, int]) -> None:
        due = ws.due()
        # Windows that close together come out by close time, then key bytes, then start,
        # as from Kafka Streams' time-ordered stores.
        key_bytes = ws.keys.inner.encode
        closing = sorted((ik for ik in due if ik[0] == "x"),
                         key=lambda ik: (ik[1], key_bytes(ik[2]), ik[3]))
        for ik in closing:
            self._close(ws, ik, by)
        # Buffered records go after the windows built from them, in changelog order too:
        # a record's windows all close no later than the record expires.
        for ik in due:
            if ik[0] == "y":
                ws.put_last(("r", ik[2], ik[3], ik[4], ik[5]), None, ik[2])
                ws.put_last(ik, None)

    def _close(self, ws: WindowState, ik: tuple, by: tuple[str, int]) -> None:
        dk = (ik[2], ik[3], ik[4])
        if dk in ws.pending:
            return
        agg = ws.get(dk)
        if agg is None:  # merged into another session, or purged: a stale entry
            ws.store.delete(ik)
            return
        if not self.is_real(ws, dk, agg):
            ws.drop_window(dk, ik[1])
            if not self.emit_final:
                self.forward(WindowedKey(dk[0], dk[1], dk[2]), None, dk[2])
            return
        # A window found closed here was closed before this task started; its final
        # result may not have reached the topic if the record that closed it was not
        # committed: then emit it again (same value).
        emit = self.emit_final and (agg.closed is None or _maybe_lost(self.ctx.task, agg.closed))
        ws.close_window(dk, agg, ik[1], by if agg.closed is None else agg.closed)
        if emit:  # stamped with its largest event time, as Kafka Streams' final results
            self.forward(WindowedKey(dk[0], dk[1], dk[2]), agg.value, agg.stamp(dk[2]))

    def is_real(self, ws: WindowState, dk: tuple, agg: Agg) -> bool:
        """False for a window that a crash left behind after it was merged away."""
        return True

    def replayed(self, agg: Agg | None, topic: str, offset: int) -> bool:
        return agg is not None and agg.offsets.get(topic, -1) >= offset

    def resend(self, dk: tuple, agg: Agg, offset: int, topic: str) -> None:
        # The last record a window absorbed before a crash is replayed: its update may
        # not have reached the output topic, so send the window's value once more.
        if not self.emit_final and agg.offsets.get(topic) == offset:
            self.forward(WindowedKey(dk[0], dk[1], dk[2]), agg.value, agg.stamp(dk[2]))


def _maybe_lost(task: Any, closed_by: tuple[str, int]) -> bool:
    # Offsets below where the task resumed were committed, and a commit completes only
    # once its outputs are acknowledged.
    resumed = task.resumed_at.get(closed_by[0])
    return resumed is None or closed_by[1] >= resumed


class TimeWindowAggregate(WindowedAggregate):
    """Tumbling and hopping windows: [start, end), closed at end + grace."""

    __slots__ = ("windows_for", "size")

    def __init__(self, table: str, windows: Tumbling | Hopping, initial: Any,
                 add: Callable[[Any, Any], Any], emit: str, late_topic: str) -> None:
        super().__init__(table, windows, initial, add, emit, late_topic)
        self.windows_for = windows.windows_for
        self.size = windows.size_ms if isinstance(windows, Tumbling) else 0

    def apply(self, ws, key, value, ts, topic, offset):
        st, grace, size = ws.stream_time, self.grace, self.size
        missed: list[tuple[int, int]] | None = None
        bounds: Any
        if size:
            start = ts - ts % size
            bounds = ((start, start + size),)
        else:
            bounds = self.windows_for(ts)
        store = ws.store
        dirty = store.dirty
        for start, end in bounds:
            dk = (key, start, end)
            # Most records find their window in the write-back cache, where an update in
            # place needs no put.
            agg = dirty.get(dk)
            cached = agg is not None and agg is not TOMBSTONE
            if not cached:
                agg = store.get(dk)
            if end + grace <= st or (agg is not None and agg.closed):
                if self.replayed(agg, topic, offset):
                    self.resend(dk, agg, offset, topic)
                else:
                    missed = missed or []
                    missed.append((start, end))
                continue
            if agg is None:
                agg = Agg(self.add(self.initial(), value), {topic: offset}, ts=ts)
                ws.new_window(dk, agg, end + grace)
            elif agg.offsets.get(topic, -1) >= offset:
                self.resend(dk, agg, offset, topic)
                continue
            else:
                agg.value = self.add(agg.value, value)
                agg.offsets[topic] = offset
                if agg.ts is None or ts > agg.ts:
                    agg.ts = ts
                if not cached:
                    store.put(dk, agg)
            if not self.emit_final:  # stamped with the window's largest event time
                self.forward(WindowedKey(key, start, end), agg.value, agg.ts)
        if missed:
            report_late(self.ctx, self.table, self.late_topic, ts, st, missed)
