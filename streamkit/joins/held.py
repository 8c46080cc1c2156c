"""A join buffer's records in memory, by key, in (time, topic, offset) order: what a swept
buffer (streamkit.joins.windowed.ClockedBuffer) reads instead of scanning RocksDB while it
has few records. The store stays the truth; this is a copy the buffer keeps exact."""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from operator import itemgetter
from typing import Any

# A buffered record: (ts, topic, offset, value, the bytes of its key in the store). Each
# key's list is kept in the order of its first three fields, which are unique (a record is
# buffered once), and the lists are the entries as reads return them: a read is a slice,
# with no tuple built per record.
Entry = tuple[int, str, int, Any, bytes]
_TIME = itemgetter(0)
_TAIL = itemgetter(0, 1, 2)


class HeldRecords:
    """Per key, the records' entries in order."""

    __slots__ = ("keys", "count")

    def __init__(self) -> None:
        self.keys: dict[Any, list[Entry]] = {}
        self.count = 0

    def add(self, key: Any, entry: Entry) -> None:
        entries = self.keys.get(key)
        if entries is None:
            self.keys[key] = [entry]
        elif entries[-1][0] < entry[0]:  # records mostly come in time order
            entries.append(entry)
        else:
            tail = entry[:3]
            at = bisect_left(entries, tail, key=_TAIL)
            if at < len(entries) and _TAIL(entries[at]) == tail:
                # The same record again: replayed after a crash, once a sweep has taken
                # it from the store (where the state made durable before the crash put it).
                entries[at] = entry
                return
            entries.insert(at, entry)
        self.count += 1

    def between(self, key: Any, ts_from: int, ts_to: int) -> list[Entry]:
        """The key's records with ts in [ts_from, ts_to]."""
        entries = self.keys.get(key)
        if entries is None:
            return []
        lo = bisect_left(entries, ts_from, key=_TIME)
        return entries[lo:bisect_right(entries, ts_to, lo, key=_TIME)]

    def drop_until(self, limit: int) -> tuple[int | None, list[tuple[Any, list[Entry]]]]:
        """Drop the records with ts <= limit: (the time of the oldest record left, None
        when none is left; the dropped records, by key)."""
        oldest: int | None = None
        dropped, emptied = [], []
        for key, entries in self.keys.items():
            if entries[0][0] <= limit:
                cut = bisect_right(entries, limit, key=_TIME)
                dropped.append((key, entries[:cut]))
                del entries[:cut]
                self.count -= cut
                if not entries:
                    emptied.append(key)
                    continue
            first = entries[0][0]
            if oldest is None or first < oldest:
                oldest = first
        for key in emptied:
            del self.keys[key]
        return oldest, dropped
