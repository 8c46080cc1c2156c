"""A join buffer's records in memory, by key, in (time, topic, offset) order: what a swept
buffer (streamkit.joins.windowed.ClockedBuffer) reads instead of scanning RocksDB while it
has few records. The store stays the truth; this is a copy the buffer keeps exact."""
from __future__ import annotations

from bisect import bisect_left
from typing import Any

Tail = tuple[int, str, int]  # a buffered record's (ts, topic, offset)


class HeldRecords:
    """Per key, the records' tails in order and their values in the same positions."""

    __slots__ = ("keys", "count")

    def __init__(self) -> None:
        self.keys: dict[Any, tuple[list[Tail], list[Any]]] = {}
        self.count = 0

    def add(self, key: Any, tail: Tail, value: Any) -> None:
        self.count += 1
        held = self.keys.get(key)
        if held is None:
            self.keys[key] = ([tail], [value])
            return
        tails, values = held
        if tails[-1] < tail:  # records mostly come in time order
            tails.append(tail)
            values.append(value)
            return
        # A record comes once: one replayed after a crash comes to a new task, whose held
        # records are taken from the store at its first sweep.
        at = bisect_left(tails, tail)
        tails.insert(at, tail)
        values.insert(at, value)

    def between(self, key: Any, ts_from: int, ts_to: int) -> list[tuple[int, str, int, Any]]:
        """The key's records with ts in [ts_from, ts_to] as (ts, topic, offset, value)."""
        held = self.keys.get(key)
        if held is None:
            return []
        tails, values = held
        # (t,) sorts before every tail at time t, (t + 1,) after them.
        lo, hi = bisect_left(tails, (ts_from,)), bisect_left(tails, (ts_to + 1,))
        return [(*tails[i], values[i]) for i in range(lo, hi)]

    def drop_until(self, limit: int) -> tuple[int | None, list[tuple[Any, list[Tail]]]]:
        """Drop the records with ts <= limit: (the time of the oldest record left, None
        when none is left; the dropped records' tails, by key)."""
        oldest: int | None = None
        dropped, emptied = [], []
        for key, (tails, values) in self.keys.items():
            if tails[0][0] <= limit:
                cut = bisect_left(tails, (limit + 1,))
                dropped.append((key, tails[:cut]))
                del tails[:cut]
                del values[:cut]
                self.count -= cut
                if not tails:
                    emptied.append(key)
                    continue
            first = tails[0][0]
            if oldest is None or first < oldest:
                oldest = first
        for key in emptied:
            del self.keys[key]
        return oldest, dropped
