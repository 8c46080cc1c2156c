"""Window specifications: which windows a record belongs to, and for how long a window
accepts records that arrive out of order.

Every time is an `int` of milliseconds of event time. Grace has no default: how late
data may arrive is a property of the data, and a hidden default (Kafka Streams' old
24 h) silently delays every final result or silently drops records.

Stream time is the largest event time a windowed operation has seen on its partition.
A window *closes* once stream time reaches its close time (below, per kind); a closed
window never changes again, its final result is emitted (with `emit="final"`) and it is
removed from the store.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Union


def _check_int(name: str, value: object) -> int:
    # bool is an int subclass, and a float of milliseconds usually means seconds were meant.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int of milliseconds, not {value!r}")
    return value


def _positive(name: str, value: object) -> None:
    if _check_int(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, got {value}")


def _non_negative(name: str, value: object) -> None:
    if _check_int(name, value) < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")


@dataclass(frozen=True)
class Tumbling:
    """Fixed-size windows that do not overlap: [start, start + size_ms), start inclusive,
    end exclusive, with start a multiple of size_ms (counted from the epoch).

    A record belongs to exactly one window (none for a negative time: windows start at 0,
    as in Kafka Streams). The window closes when stream time >= end + grace_ms; a record
    whose window is closed is late.
    """

    size_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        _positive("size_ms", self.size_ms)
        _non_negative("grace_ms", self.grace_ms)

    def windows_for(self, ts: int) -> list[tuple[int, int]]:
        """The (start, end) of the window that contains ts (none before 0)."""
        if ts < 0:
            return []
        start = ts - ts % self.size_ms
        return [(start, start + self.size_ms)]

    def close_at(self, start: int, end: int) -> int:
        """The stream time at which the window [start, end) closes."""
        return end + self.grace_ms


@dataclass(frozen=True)
class Hopping:
    """Fixed-size windows that overlap: [start, start + size_ms), start inclusive, end
    exclusive, one starting every advance_ms (starts are multiples of advance_ms, and
    never before 0: Kafka Streams' TimeWindows.windowsFor).

    A record belongs to every window that contains it and starts at 0 or later (so a
    record earlier than size_ms is in fewer windows). Each window closes when stream
    time >= end + grace_ms; a record is applied to those of its windows that are still
    open, and is reported late if it missed any.
    """

    size_ms: int
    advance_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        _positive("size_ms", self.size_ms)
        _positive("advance_ms", self.advance_ms)
        _non_negative("grace_ms", self.grace_ms)
        if self.advance_ms > self.size_ms:
            raise ValueError(f"advance_ms ({self.advance_ms}) must be <= size_ms "
                             f"({self.size_ms}): larger advances leave records in no window")

    def windows_for(self, ts: int) -> list[tuple[int, int]]:
        """The (start, end) of every window that contains ts and starts at 0 or later,
        oldest first."""
        size, advance = self.size_ms, self.advance_ms
        start = max(0, ts - size + advance) // advance * advance
        out = []
        while start <= ts:
            out.append((start, start + size))
            start += advance
        return out

    def close_at(self, start: int, end: int) -> int:
        """The stream time at which the window [start, end) closes."""
        return end + self.grace_ms


@dataclass(frozen=True)
class Sliding:
    """Windows of every distinct set of records whose timestamps lie at most
    difference_ms apart (Kafka Streams' SlidingWindows): [start, end] with both bounds
    inclusive and end - start == difference_ms.

    For each record at t there is its own window [t - difference_ms, t] (for a record
    earlier than difference_ms, [0, difference_ms]: windows never start before 0, as in
    Kafka Streams), and, when some record lies in (t, t + difference_ms + 1], the window
    [t + 1, t + 1 + difference_ms]. A window closes when stream time > end + grace_ms.
    As in Kafka Streams, lateness is judged per window: a record is applied to those of
    its windows that are open, and is late when its own window has closed.
    """

    difference_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        _positive("difference_ms", self.difference_ms)
        _non_negative("grace_ms", self.grace_ms)

    def close_at(self, start: int, end: int) -> int:
        """The stream time at which the window [start, end] closes."""
        return end + self.grace_ms + 1

    def own_window(self, ts: int) -> tuple[int, int]:
        """The window a record at ts opens: [ts - d, ts], or [0, d] for an early record."""
        d = self.difference_ms
        return (ts - d, ts) if ts >= d else (0, d)


@dataclass(frozen=True)
class Session:
    """Per key, runs of records separated by at most gap_ms: [start, end] with both bounds
    inclusive, start and end the timestamps of the session's first and last record.

    A record within gap_ms of a session joins it; a record within gap_ms of two sessions
    merges them. A session closes when stream time > end + gap_ms + grace_ms. As in
    Kafka Streams, a record is late when the session it would make (itself merged with
    the open sessions within gap_ms of it) would already be closed: a record inside an
    open session is taken however old it is.
    """

    gap_ms: int
    grace_ms: int

    def __post_init__(self) -> None:
        _positive("gap_ms", self.gap_ms)
        _non_negative("grace_ms", self.grace_ms)

    def close_at(self, start: int, end: int) -> int:
        """The stream time at which the session [start, end] closes."""
        return end + self.gap_ms + self.grace_ms + 1


WindowSpec = Union[Tumbling, Hopping, Sliding, Session]
