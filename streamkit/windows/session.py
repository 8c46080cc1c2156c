"""Session windows: per key, runs of records at most gap_ms apart, merged when a record
bridges two of them.

A session that grows or merges gets a new store key. The deletions of the sessions it
replaced are kept after it in the changelog order (all of the key's deletions of this
commit move behind its newest session), so a crash that cuts the changelog short never
keeps a deletion without the session that holds the deleted one's records: at worst it
keeps old sessions inside the range of the new one. Open sessions of a key are always
more than gap_ms apart, so such a leftover is recognised by lying within another
session, and dropped.
"""
from __future__ import annotations

from typing import Any, Callable

from .aggregate import WindowedAggregate
from .codec import Agg, WindowedKey
from .late import report_late
from .specs import Session
from .state import WindowState


class SessionAggregate(WindowedAggregate):
    __slots__ = ("merge", "gap")
    track_keys = True

    def __init__(self, table: str, windows: Session, initial: Any,
                 add: Callable[[Any, Any], Any], merge: Callable[[Any, Any], Any],
                 emit: str, late_topic: str) -> None:
        super().__init__(table, windows, initial, add, emit, late_topic)
        self.merge, self.gap = merge, windows.gap_ms

    def apply(self, ws, key, value, ts, topic, offset):
        gap = self.gap
        sessions = ws.windows_of(key)
        # An accepted record ends up in the session that contains its time: if that
        # session has absorbed this offset, this is a replay (the session may have
        # closed since, later in the replayed commit period).
        for dk, agg in sessions.items():
            if dk[1] <= ts <= dk[2] and self.replayed(agg, topic, offset):
                self.resend(dk, agg, offset, topic)
                return
        # A replayed record is judged against the sessions as they were when it first
        # came: a session that absorbed a later offset and does not hold this record is
        # from after it (a torn commit kept it), and it did not take this record then, so
        # the record was late or went elsewhere. (Never the case outside a replay: every
        # session holds earlier offsets only.)
        near = [(dk, agg) for dk, agg in sessions.items()
                if not agg.closed and dk[2] >= ts - gap and dk[1] <= ts + gap
                and agg.offsets.get(topic, -1) < offset]
        near = self._drop_leftovers(ws, near)
        near.sort(key=lambda item: item[0][1])
        start = min([ts] + [dk[1] for dk, _ in near])
        end = max([ts] + [dk[2] for dk, _ in near])
        close = self.windows.close_at(start, end)
        if close <= ws.stream_time:
            # As in Kafka Streams, a record is late when the session it would make is
            # closed already; one inside an open session is taken however old it is.
            # (Replay rebuilds the same sessions and stream time, so it decides alike.)
            report_late(self.ctx, self.table, self.late_topic, ts, ws.stream_time, [(start, end)])
            return
        # Kafka Streams' order: the merged session starts from the initializer, each
        # session it replaces is merged into it, then the record is added.
        acc, offsets = self.initial(), dict[str, int]()
        for _, agg in near:
            acc = self.merge(acc, agg.value)
            for t, o in agg.offsets.items():
                if o > offsets.get(t, -1):
                    offsets[t] = o
        acc = self.add(acc, value)
        offsets[topic] = offset
        merged = (key, start, end)
        old = [dk for dk, _ in near if dk != merged]
        if len(old) < len(near):  # the record fell inside a session: same key, same index
            ws.put_last(merged, Agg(acc, offsets, ts=end), key)
        else:
            ws.new_window(merged, Agg(acc, offsets, ts=end), close)
        for dk in old:
            ws.drop_window(dk, self.windows.close_at(dk[1], dk[2]))
        ws.tombstones_last(key)
        if not self.emit_final:
            # Every session the record touched is replaced, even by one with the same
            # bounds: each is forwarded as a tombstone first (Kafka Streams does so),
            # unless the record only repeated a single-record session's time. Updates
            # are stamped with the session's end.
            if near and (start, end) != (ts, ts):
                for dk, _ in near:
                    self.forward(WindowedKey(dk[0], dk[1], dk[2]), None, dk[2])
            self.forward(WindowedKey(key, start, end), acc, end)

    def _drop_leftovers(self, ws: WindowState, near: list[tuple[tuple, Agg]]
                        ) -> list[tuple[tuple, Agg]]:
        if len(near) < 2:
            return near
        keep = []
        for dk, agg in near:
            if any(o != dk and o[1] <= dk[1] and dk[2] <= o[2] for o, _ in near):
                ws.drop_window(dk, self.windows.close_at(dk[1], dk[2]))
                if not self.emit_final:
                    self.forward(WindowedKey(dk[0], dk[1], dk[2]), None, dk[2])
            else:
                keep.append((dk, agg))
        return keep

    def is_real(self, ws: WindowState, dk: tuple, agg: Agg) -> bool:
        # A session merged away was open when it was merged, so a crash can only leave an
        # open one behind; a closed session may lie within a later one (a record up to
        # gap + grace late can start a session next to one that has closed).
        return agg.closed is not None or not any(
            o != dk and o[1] <= dk[1] and dk[2] <= o[2] for o in ws.windows_of(dk[0]))
