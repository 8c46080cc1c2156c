"""Sliding windows (Kafka Streams' SlidingWindows): a window for every distinct set of
records at most difference_ms apart.

A record at t updates the open windows that contain it, and may bring up to three new
ones: its own window [t - d, t] (or [0, d] for a record earlier than d: windows never
start before 0, as in Kafka Streams), the window right after it [t + 1, t + 1 + d] when
a later record falls there, and the window right after its predecessor p,
[p + 1, p + 1 + d], which it is the first to fill. As in Kafka Streams, lateness is
judged per window: closed windows are neither updated nor created, and a record is
reported late when its own window has closed (then it has missed every window closed
so far that holds it: the own window ends first).

A new window's aggregate is folded from the records it holds, in the order they arrived
(Kafka Streams copies it from a neighbouring window built in that order), so the
records of each key are buffered (in the same store, changelogged) for as long as a
window they decide can still appear: until t + 1 + d + grace < stream time (a record
is not in its right window, but tells that window's record it has a successor). Results are
stamped with the largest event time in the window.

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
        spec = cast(Sliding, self.windows)
        d, grace = spec.difference_ms, self.grace
        floor = ws.stream_time - grace  # a window is open while its end >= floor
        own = spec.own_window(ts)
        if own[1] < floor:
            # Replay restarts stream time where the first run had it (see WindowState),
            # so a record judged late then is judged late again.
            report_late(self.ctx, self.table, self.late_topic, ts, ws.stream_time, [own])
        if ts + d < floor:  # every window that holds it is closed
            return
        windows = ws.windows_of(key, ts - d, ts + 1)
        # A replay after a crash that kept later records of this input sees them as the
        # first run did not: leave them out.
        records = [r for r in ws.records_of(key, ts - d - 1, ts + d + 1)
                   if r[1] != topic or r[2] <= offset]
        rk = ("r", key, ts, topic, offset)
        if not any(r[1] == topic and r[2] == offset and r[0] == ts for r in records):
            records.append((ts, topic, offset, value))
        known = False  # whether the record reaches a window (or did before a crash)
        updates: list[tuple[tuple, Agg]] = []
        for dk, agg in windows.items():
            if not dk[1] <= ts <= dk[2]:
                # Its right window, created by this record before a crash: resend it
                # (the records that filled it may have expired since).
                if agg.born == (topic, offset):
                    self.resend(dk, agg, offset, topic)
                continue
            if self.replayed(agg, topic, offset):
                self.resend(dk, agg, offset, topic)
                # A window created after this record first came holds it only if the
                # record was known then: it does not tell.
                born = agg.born
                known = known or born is None or born[0] != topic or born[1] <= offset
            elif not agg.closed and dk[2] >= floor:
                updates.append((dk, agg))
        created: list[tuple] = []
        for start, end in self._new_windows(own, ts, d, records):
            dk = (key, start, end)
            # One closed before it was ever filled is skipped, as Kafka Streams does.
            if dk not in windows and end >= floor:
                created.append(dk)
        known = known or bool(updates) or any(dk[1] <= ts <= dk[2] for dk in created)
        if known:
            # Kafka Streams knows a record only through the windows it reached: one that
            # reached none is left out of the windows created later, here as there. The
            # record goes first in the changelog order: a crash that keeps the windows it
            # reached keeps it too.
            ws.put(rk, Buffered(value), key)
            # Kept while a window it decides can still be created: its predecessor's right
            # window [ts + 1, ts + 1 + d] is open until stream time > ts + 1 + d + grace.
            ws.add_index(("y", ts + d + grace + 2, key, ts, topic, offset))
        else:
            records = [r for r in records if r[1:3] != (topic, offset)]
        changed: list[tuple[tuple, Agg]] = []
        for dk, agg in updates:
            agg.value = self.add(agg.value, value)
            agg.offsets[topic] = offset
            if agg.ts is None or ts > agg.ts:
                agg.ts = ts
            ws.put_last(dk, agg, key)
            changed.append((dk, agg))
        for dk in created:
            agg = self._fold(records, dk[1], dk[2], topic, offset)
            ws.new_window(dk, agg, dk[2] + grace + 1)
            changed.append((dk, agg))
        if not self.emit_final:
            for dk, agg in changed:
                self.forward(WindowedKey(dk[0], dk[1], dk[2]), agg.value, agg.stamp(dk[2]))

    @staticmethod
    def _new_windows(own: tuple[int, int], ts: int, d: int,
                     records: list[tuple[int, str, int, Any]]) -> list[tuple[int, int]]:
        out = [own]
        if any(ts < r[0] <= ts + 1 + d for r in records):
            out.append((ts + 1, ts + 1 + d))
        before = [r[0] for r in records if r[0] < ts]
        if before:
            p = max(before)
            out.append((p + 1, p + 1 + d))
        return out

    def _fold(self, records: list[tuple[int, str, int, Any]], start: int, end: int,
              topic: str, offset: int) -> Agg:
        # The window holds every record in its range up to the creating record's offset
        # (the records apply() passes), even when that record lies outside it. They are
        # folded in arrival (offset) order, as Kafka Streams' windows are built.
        acc, offsets, top = self.initial(), {topic: offset}, None
        for rts, rtopic, roffset, value in sorted(records, key=lambda r: (r[2], r[1])):
            if start <= rts <= end:
                acc = self.add(acc, value)
                if roffset > offsets.get(rtopic, -1):
                    offsets[rtopic] = roffset
                top = rts if top is None or rts > top else top
        return Agg(acc, offsets, ts=top, born=(topic, offset))
