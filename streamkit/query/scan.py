"""Range scans: each worker scans its own partitions in key order; the asking worker
merges the sorted pages of every owner (scatter-gather)."""
from __future__ import annotations

import heapq
import itertools
from typing import Any, Iterable

from ..state.store import PartitionStore

Item = tuple[bytes, Any, Any]  # (encoded key, key, value)


def local_scan(stores: Iterable[PartitionStore], start: bytes | None, end: bytes | None,
               prefix: bytes | None, after: bytes | None, limit: int) -> list[Item]:
    """Up to limit committed entries of these partitions in key order, start inclusive,
    end exclusive, strictly after the cursor `after`."""
    lower = start
    if after is not None:
        # The smallest key greater than `after` is `after` followed by a zero byte.
        lower = max(lower or b"", after + b"\x00")
    stores = list(stores)
    merged = heapq.merge(*(s.raw_items(lower, end, prefix) for s in stores), key=lambda kv: kv[0])
    if not stores:
        return []
    keys, values = stores[0].keys, stores[0].values
    return [(kb, keys.decode(kb), values.decode(vb))
            for kb, vb in itertools.islice(merged, limit)]


def merge_pages(pages: Iterable[list[Item]], limit: int) -> tuple[list[Item], bool]:
    """The first limit items of sorted pages, and whether more remain."""
    merged = list(itertools.islice(heapq.merge(*pages, key=lambda it: it[0]), limit + 1))
    return merged[:limit], len(merged) > limit


def local_count(stores: Iterable[PartitionStore]) -> int:
    return sum(s.count() for s in stores)
