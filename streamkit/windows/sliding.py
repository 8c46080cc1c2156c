"""Sliding windows (Kafka Streams' SlidingWindows): a window for every distinct set of
records at most difference_ms apart.

A record at t updates the windows that contain it, and may bring up to three new ones:
its own [t - d, t], the window right after it [t + 1, t + 1 + d] when a later record
falls there, and the window right after its predecessor p, [p + 1, p + 1 + d], which it
is the first to fill. A new window's aggregate is folded from the records it holds, so
the records of each key are buffered (in the same store, changelogged) for as long as a
window holding them can still appear: until t + d + grace < stream time.

The cost of a record is one fold over the records of its key within about 2 d of it
(when it opens a window) plus one update per window containing it.
"""
from __future__ import annotations

from typing import Any, cast

from .aggregate import WindowedAggregate
from .codec import Agg, Buffered, WindowedKey
from .late import report_late
from .specs import Sliding


class SlidingAggregate(WindowedAggregate):
    __slots__ = ()
    track_keys = True

    def apply(self, ws, key, value, ts, topic, offset):
        d, grace = cast(Sliding, self.windows).difference_ms, self.grace
        rk = ("r", key, ts, topic, offset)
        if ts + grace < ws.stream_time:
            # Replay judges lateness as the first run did (see WindowState): this record
            # was late then too, and was applied nowhere.
            report_late(self.ctx, self.table, self.late_topic, ts, ws.stream_time, [(ts - d, ts)])
            return
        ws.put(rk, Buffered(value), key)
        ws.add_index(("y", ts + d + grace + 1, key, ts, topic, offset))
        windows = ws.windows_of(key, ts - d, ts + 1)
        records = ws.records_of(key, ts - d - 1, ts + d + 1)
        changed: list[tuple[tuple, Agg]] = []
        for dk, agg in windows.items():
            if not dk[1] <= ts <= dk[2]:
                continue
            if self.replayed(agg, topic, offset):
                self.resend(dk, agg, offset, topic, ts)
                continue
            if agg.closed:  # closed later in a replayed period, with this record in it
                continue
            agg.value = self.add(agg.value, value)
            agg.offsets[topic] = offset
            ws.put(dk, agg, key)
            changed.append((dk, agg))
        for start in self._new_starts(ts, d, records):
            dk = (key, start, start + d)
            if dk in windows:
                if not start <= ts <= start + d:  # created by this record before a crash
                    self.resend(dk, windows[dk], offset, topic, ts)
                continue
            agg = self._fold(records, start, start + d, topic, offset)
            ws.new_window(dk, agg, start + d + grace + 1)
            windows[dk] = agg
            changed.append((dk, agg))
        if not self.emit_final:
            for dk, agg in changed:
                self.forward(WindowedKey(dk[0], dk[1], dk[2]), agg.value, ts)

    @staticmethod
    def _new_starts(ts: int, d: int, records: list[tuple[int, str, int, Any]]) -> list[int]:
        starts = [ts - d]
        if any(ts < r[0] <= ts + 1 + d for r in records):
            starts.append(ts + 1)
        before = [r[0] for r in records if r[0] < ts]
        if before:
            starts.append(max(before) + 1)
        return starts

    def _fold(self, records: list[tuple[int, str, int, Any]], start: int, end: int,
              topic: str, offset: int) -> Agg:
        # The window holds every record in its range up to the creating record's offset
        # (those were all buffered), even when that record lies outside it.
        acc, offsets = self.initial(), {topic: offset}
        for rts, topic, offset, value in records:
            if start <= rts <= end:
                acc = self.add(acc, value)
                if offset > offsets.get(topic, -1):
                    offsets[topic] = offset
        return Agg(acc, offsets)
