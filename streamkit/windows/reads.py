"""Windowed reads of a window store, for the query layer: one window of a key, and the
windows of a key in a time range.

They read the partition's store where it lives (the worker that owns the record key's
partition: `spec.keys` is the record key serde, so a key's partition is found as for
any table), through the uncommitted cache like `PartitionStore.get`, or from RocksDB
alone with committed=True. Only open windows are returned: a closed window is removed
(its final result went to the output topic with emit="final").
"""
from __future__ import annotations

from typing import Any, NamedTuple, cast

from ..state.store import TOMBSTONE, PartitionStore
from .codec import Agg, WindowKeys, time_bytes

_NO_TIME = -(1 << 62)
_NEVER = 1 << 62


class WindowRow(NamedTuple):
    start: int
    end: int
    value: Any


def fetch_windows(store: PartitionStore, key: Any, time_from: int = _NO_TIME,
                  time_to: int = _NEVER, committed: bool = False) -> list[WindowRow]:
    """The open windows of key whose start lies in [time_from, time_to], by start."""
    keys = cast(WindowKeys, store.keys)
    prefix = keys.window_prefix(key)
    n = len(prefix)
    found: dict[tuple, Any] = {}
    end = prefix + time_bytes(time_to + 1) if time_to < _NEVER else None
    for kb, vb in store.raw_items(start=prefix + time_bytes(time_from), end=end, prefix=prefix):
        start = _time(kb, n)
        found[(key, start, _time(kb, n + 8))] = vb
    decode = store.values.decode
    rows = {dk: decode(vb) for dk, vb in found.items()}
    if not committed:
        for k, v in store.dirty.items():
            if len(k) == 3 and k[0] == key and time_from <= k[1] <= time_to:
                rows[k] = None if v is TOMBSTONE else v
    out = [WindowRow(dk[1], dk[2], agg.value) for dk, agg in rows.items()
           if type(agg) is Agg and not agg.closed]
    out.sort()
    return out


def fetch_window(store: PartitionStore, key: Any, start: int, committed: bool = False) -> Any:
    """The value of key's open window that starts at start, or None."""
    rows = fetch_windows(store, key, start, start, committed)
    return rows[0].value if rows else None


def _time(kb: bytes, pos: int) -> int:
    return int.from_bytes(kb[pos:pos + 8], "big") - (1 << 63)
