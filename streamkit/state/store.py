"""One partition of a table: a RocksDB database (rocksdict), a write-back cache of the
updates since the last commit, and the changelog offset the database reflects.

The checkpoint (next changelog offset to read on recovery) is written in the same
WriteBatch as the data it covers, so the database and its checkpoint never disagree.
"""
from __future__ import annotations

import gc
import logging
import shutil
import struct
from pathlib import Path
from typing import Any, Iterable, Iterator, cast

from rocksdict import Options, Rdict, ReadOptions, WriteBatch

from ..serde import Serde
from .keys import KeyCodec

log = logging.getLogger(__name__)

_META_CF = "streamkit-meta"
_CHECKPOINT = b"changelog-offset"
_OFFSET = struct.Struct(">q")
MISSING = object()
TOMBSTONE = object()
READ_CACHE_ENTRIES = 10_000  # per store, unless STREAMKIT_READ_CACHE_ENTRIES says otherwise


class ReadCache:
    """The bound of the stores' read caches and how their lookups went: one per worker,
    shared by its stores (active, standby and global), so that /metrics can show them."""

    __slots__ = ("entries", "hits", "misses")

    def __init__(self, entries: int = READ_CACHE_ENTRIES) -> None:
        if entries < 0:
            raise ValueError(f"a read cache holds 0 entries or more, not {entries}")
        self.entries, self.hits, self.misses = entries, 0, 0


def _options() -> Options:
    opts = Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    # Small memtables: a worker holds one database per table partition, and the
    # changelog (not the memtable) is what makes the data durable.
    opts.set_write_buffer_size(8 << 20)
    opts.set_max_write_buffer_number(2)
    # The write-ahead log stays (Kafka Streams drops it and flushes every store at each
    # commit): with it, a process that dies leaves each store as of its last commit. As of
    # its last flush instead, a quiet store could restart days behind, and restore from a
    # checkpoint older than the changelog's compacted-away tombstones, keeping deleted keys.
    return opts


def scan_start(start: bytes | None, prefix: bytes | None) -> bytes | None:
    """The first key a scan from start, of keys with prefix, may return."""
    return start if prefix is None else max(start or b"", prefix)


def scan_end(end: bytes | None, prefix: bytes | None) -> bytes | None:
    """The first key past a scan to end, of keys with prefix (None: the end of the store)."""
    past = prefix_end(prefix) if prefix is not None else None
    if end is None or past is None:
        return end if past is None else past
    return min(end, past)


def prefix_end(prefix: bytes) -> bytes | None:
    """The first key greater than every key that starts with prefix (None when there is
    none: prefix is all 0xff)."""
    stripped = prefix.rstrip(b"\xff")
    return stripped[:-1] + bytes([stripped[-1] + 1]) if stripped else None


def _holding(items: Iterator[tuple[bytes, bytes]], options: Any) -> Iterator[tuple[bytes, bytes]]:
    """items, with `options` kept alive until they are read: a rocksdict iterator reads its
    bounds from the ReadOptions it was made with (freed, the bound is garbage and the scan
    ends early)."""
    yield from items


def key_range(items: Iterable[tuple[bytes, bytes]], lower: bytes | None, end: bytes | None,
              prefix: bytes | None) -> Iterator[tuple[bytes, bytes]]:
    """The entries of key-ordered items from lower (inclusive) to end (exclusive) whose
    keys start with prefix."""
    for kb, vb in items:
        if lower is not None and kb < lower:
            continue
        if end is not None and kb >= end:
            return
        if prefix is not None and not kb.startswith(prefix):
            return
        yield kb, vb


class PartitionStore:
    """Key-value state of one table partition."""

    def __init__(self, path: Path, keys: KeyCodec, values: Serde,
                 read_cache: ReadCache | None = None) -> None:
        self.path = Path(path)
        self.keys = keys
        self.values = values
        self.dirty: dict[Any, Any] = {}
        # Whether the write-back cache may hold entries put already encoded: a bytes key
        # with a bytes value or a tombstone (a key codec that never takes bytes says so).
        self.takes_encoded: bool = getattr(keys, "takes_encoded", False)
        # The decoded values of the last commit's write-back cache, as the database now
        # holds them: a key updated in one commit period is mostly read again in the next
        # (a window, a running total), and this saves its RocksDB read and decoding. Any
        # other write to the database (restore, standby) drops it.
        self.recent: dict[Any, Any] = {}
        # Committed values that queries read, by encoded key (None for an absent key).
        # Every database write goes through write(), which drops the keys it writes.
        self._read_cache: dict[bytes, Any] = {}
        self.read_cache = read_cache if read_cache is not None else ReadCache()
        # Set by open(); every other method is called on an open store.
        self._db: Rdict = cast(Rdict, None)
        self._meta_handle: Any = None
        self.checkpoint: int | None = None

    # lifecycle -----------------------------------------------------------
    def open(self) -> "PartitionStore":
        self.path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = self._open_db()
        except Exception as exc:
            if "lock" not in str(exc):
                raise
            # This process closed the database before, and a reference cycle still holds
            # one of its objects, which keeps RocksDB's lock until the collector frees it.
            # Collected here, when it is needed, rather than at every close: a full pass
            # per store closed stalled a worker for tens of milliseconds each at every
            # rebalance and stop.
            gc.collect()
            self._db = self._open_db()
        self._meta_handle = self._db.get_column_family_handle(_META_CF)
        meta = self._db.get_column_family(_META_CF)
        raw = meta.get(_CHECKPOINT)
        del meta  # a live column-family object keeps the database lock after close
        self.checkpoint = _OFFSET.unpack(raw)[0] if raw is not None else None
        return self

    def _open_db(self) -> Rdict:
        return Rdict(str(self.path), options=_options(), column_families={_META_CF: _options()})

    def close(self) -> None:
        self._read_cache.clear()
        self.recent = {}
        if self._db is not None:
            self._meta_handle = None
            self._db.close()
            self._db = cast(Rdict, None)
        self.dirty.clear()

    def wipe(self) -> None:
        """Delete the local database (it will be rebuilt from the changelog)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self.checkpoint = None
        self.open()

    @property
    def is_open(self) -> bool:
        return self._db is not None

    # reads and writes ------------------------------------------------------
    def get(self, key: Any, default: Any = None) -> Any:
        value = self.dirty.get(key, MISSING)
        if value is MISSING:
            value = self.recent.get(key, MISSING)
            if value is MISSING:
                raw = self._db.get(self.keys.encode(key))
                return default if raw is None else self.values.decode(raw)
        return default if value is TOMBSTONE else value

    def read(self, key: Any, committed: bool = False) -> Any:
        """get() for interactive queries (committed=True: as of the last commit, skipping
        the uncommitted updates): the committed value comes from a bounded cache of decoded
        values, filled by reads and emptied of each key the database writes. Callers must
        not change the value they get."""
        if not committed:
            value = self.dirty.get(key, MISSING)
            if value is not MISSING:
                return None if value is TOMBSTONE else value
        kb = self.keys.encode(key)
        cache, stats = self._read_cache, self.read_cache
        value = cache.get(kb, MISSING)
        if value is not MISSING:
            stats.hits += 1
            return value
        stats.misses += 1
        raw = self._db.get(kb)
        value = None if raw is None else self.values.decode(raw)
        if stats.entries:
            if len(cache) >= stats.entries:
                del cache[next(iter(cache))]  # the oldest entry
            cache[kb] = value
        return value

    def uncommitted(self, kb: bytes) -> bytes | None:
        """The encoded value that the key encoded as kb awaits the next commit with; None
        when it awaits none, or its deletion. Encoded, so that whoever judges it sees what
        a reader of the committed value will."""
        if self.takes_encoded:
            value = self.dirty.get(kb, MISSING)
            if value is not MISSING:  # put encoded: taken as it is
                return None if value is TOMBSTONE else value
        try:
            value = self.dirty.get(self.keys.decode(kb), MISSING)
        except TypeError:  # a key no dict holds (a JSON list or object): never put
            return None
        return None if value is MISSING or value is TOMBSTONE else self.values.encode(value)

    def get_committed(self, key: Any) -> Any:
        """The value as of the last commit (not the uncommitted cache)."""
        raw = self._db.get(self.keys.encode(key))
        return None if raw is None else self.values.decode(raw)

    def put(self, key: Any, value: Any) -> None:
        self.dirty[key] = TOMBSTONE if value is None else value

    def delete(self, key: Any) -> None:
        self.dirty[key] = TOMBSTONE

    def items(self, start: Any = None, end: Any = None, prefix: bytes | None = None
              ) -> Iterator[tuple[Any, Any]]:
        """Committed entries in key order, start inclusive, end exclusive."""
        for kb, vb in self.raw_items(
                None if start is None else self.keys.encode(start),
                None if end is None else self.keys.encode(end), prefix):
            yield self.keys.decode(kb), self.values.decode(vb)

    def raw_items(self, start: bytes | None = None, end: bytes | None = None,
                  prefix: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        lower, upper = scan_start(start, prefix), scan_end(end, prefix)
        # RocksDB stops at the upper bound. Without one, the step past the last entry in
        # range walks over every deleted entry that follows it until the next live one:
        # window and join stores delete their expired entries, and a scan of one key's
        # records crossed all the deleted records of the next key (a join slowed to a
        # halt after a million records).
        opts = None
        if upper is not None:
            opts = ReadOptions()
            opts.set_iterate_upper_bound(upper)
        it = self._db.items(from_key=lower, read_opt=opts) if lower else \
            self._db.items(read_opt=opts)
        items = _holding(cast(Iterator[tuple[bytes, bytes]], it), opts)
        if upper is None and prefix is not None:
            # A prefix of 0xff bytes only: no key bounds it, so the scan checks it.
            return key_range(items, lower, end, prefix)
        # The seek starts it at lower and the bound ends it at end and past the prefix.
        return items

    def count(self) -> int:
        return sum(1 for _ in cast(Iterator[bytes], self._db.keys()))

    # commit protocol ------------------------------------------------------
    def settle(self) -> None:
        """The write-back cache is in the database (write()): keep its decoded values for
        the next reads (`recent`) and start an empty write-back cache. The values are the
        objects the processing code put: it must put a value again after changing it."""
        self.recent = self.dirty
        self.dirty = {}

    def encode_dirty(self) -> list[tuple[bytes, bytes | None]]:
        """The pending updates, encoded for the changelog and the database."""
        enc_k, enc_v = self.keys.encode, self.values.encode
        if self.takes_encoded:  # entries put already encoded are taken as they are
            return [(k, None if v is TOMBSTONE else v) if type(k) is bytes
                    else (enc_k(k), None if v is TOMBSTONE else enc_v(v))
                    for k, v in self.dirty.items()]
        return [(enc_k(k), None if v is TOMBSTONE else enc_v(v)) for k, v in self.dirty.items()]

    def decoded(self, key: Any, value: Any) -> tuple[Any, Any]:
        """A write-back cache entry as (key, value), decoded if it was put encoded."""
        if self.takes_encoded and type(key) is bytes:
            return self.keys.decode(key), value if value is TOMBSTONE else self.values.decode(value)
        return key, value

    def write(self, items: Iterable[tuple[bytes, bytes | None]], checkpoint: int | None) -> None:
        """Apply encoded updates and move the checkpoint, atomically."""
        if self.recent:
            self.recent = {}
        batch = WriteBatch(raw_mode=True)
        cache = self._read_cache
        for kb, vb in items:
            if cache:
                cache.pop(kb, None)
            if vb is None:
                batch.delete(kb)
            else:
                batch.put(kb, vb)
        if checkpoint is not None:
            batch.put(_CHECKPOINT, _OFFSET.pack(checkpoint), self._meta_handle)
            self.checkpoint = checkpoint
        self._db.write(batch)
