"""How a window store lays out its entries in one RocksDB database (and its changelog).

Python keys (what the processing code puts in the store) and their bytes:

    (key, start, end)                        b"w" len key start end     a window's aggregate
    ("x", close, key, start, end)            b"x" close len key start end   expiry index
    ("r", key, ts, topic, offset)            b"r" len key ts len topic offset  a buffered record
    ("y", close, key, ts, topic, offset)     b"y" close len key ts ...     its expiry index
    ("t",)                                   b"t"                        stream time (a Clock)

Times are 8 bytes big-endian with the sign bit flipped, so byte order is time order: the
windows of one key come out by start, and the expiry index by close time. Keys are
length-prefixed, so that the prefix of key "a" never matches key "ab". Window entries
start with the record key, so a key's windows are one prefix scan; the expiry index
starts with the close time, so the windows to close are one scan from its beginning,
which is how expiry works after a restart with nothing in memory.
"""
from __future__ import annotations

import struct
from typing import Any, NamedTuple

import orjson

from ..serde import Serde, dumps
from ..state.keys import KeyCodec

_SIGN = 1 << 63
_MASK = (1 << 64) - 1
_LEN = struct.Struct(">I")
_T1 = struct.Struct(">Q")
_T2 = struct.Struct(">QQ")
_T3 = struct.Struct(">QQQ")

STREAM_TIME = ("t",)
_AGG_TAGS = (b"A", b"C", b"a", b"c")
WINDOW, INDEX, RECORD, RECORD_INDEX, TIME = b"w", b"x", b"r", b"y", b"t"


def _ts(t: int) -> int:
    return (t + _SIGN) & _MASK


def _unts(u: int) -> int:
    return u - _SIGN


class WindowedKey(NamedTuple):
    """The key of a windowed result: the record key and its window's bounds (which bound
    is inclusive depends on the window kind; see streamkit.windows.specs)."""

    key: Any
    start: int
    end: int


class Agg:
    """A window's aggregate, the input offsets it has absorbed, the largest event time of
    its records, and whether it is closed.

    `offsets[topic]` is the offset of the last record of that input partition applied to
    the window: a record replayed after a crash with an offset at or below it is already
    in the aggregate, which is what keeps a window's result exact across restarts.
    `ts` is the largest event time among the window's records: the timestamp of its
    results, as in Kafka Streams (None for a window written before it was kept).
    `closed` is None while the window is open, then the (topic, offset) of the record
    that closed it (("", -1) when no record did), which tells a restarted task whether
    the commit that emitted its final result had completed.
    `born` is the (topic, offset) of the record that created a sliding window from the
    records it holds: a record replayed after a crash tells by it whether the window
    existed when it first came (None for other windows).
    """

    __slots__ = ("value", "offsets", "closed", "ts", "born")

    def __init__(self, value: Any, offsets: dict[str, int],
                 closed: tuple[str, int] | None = None, ts: int | None = None,
                 born: tuple[str, int] | None = None) -> None:
        self.value, self.offsets, self.closed, self.ts = value, offsets, closed, ts
        self.born = born

    def stamp(self, end: int) -> int:
        """The timestamp of the window's results (its end if its largest event time is
        unknown)."""
        return end if self.ts is None else self.ts

    def __repr__(self) -> str:
        return f"Agg({self.value!r}, {self.offsets!r}, closed={self.closed}, ts={self.ts})"


class Clock(NamedTuple):
    """Stream time, with the stream time and the first input offset per topic of the
    commit period it was written in: a task that resumes at that offset after a crash
    restarts stream time from there, and judges every replayed record as the first time."""

    stream_time: int
    period_stream_time: int
    period_from: dict[str, int]


class Buffered:
    """A record kept for sliding windows, which are built from the records they hold."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class WindowKeys:
    """KeyCodec of a window store, wrapping the codec of the record keys."""

    # A window store's keys are tuples, so an entry of its write-back cache under a bytes
    # key is one put already encoded, with its value (joins.windowed.ClockedBuffer.buffer):
    # PartitionStore takes it as it is (encode_dirty, decoded).
    takes_encoded = True

    def __init__(self, inner: KeyCodec) -> None:
        self.inner = inner

    def key_bytes(self, key: Any) -> bytes:
        kb = self.inner.encode(key)
        return _LEN.pack(len(kb)) + kb

    def window_prefix(self, key: Any) -> bytes:
        return WINDOW + self.key_bytes(key)

    def record_prefix(self, key: Any) -> bytes:
        return RECORD + self.key_bytes(key)

    def encode(self, k: tuple) -> bytes:
        if type(k) is not tuple:
            raise TypeError(f"a window store is keyed by (key, start, end), not {k!r}: read "
                            f"it with streamkit.windows.fetch_window / fetch_windows")
        n = len(k)
        if n == 5 and k[0] == "r":  # first: a join writes and deletes one per record
            kb = self.inner.encode(k[1])
            return b"".join((RECORD, _LEN.pack(len(kb)), kb, _record_tail(k[2], k[3], k[4])))
        if n == 3:
            kb = self.inner.encode(k[0])
            return WINDOW + _LEN.pack(len(kb)) + kb + _T2.pack(_ts(k[1]), _ts(k[2]))
        tag = k[0]
        if tag == "x":
            kb = self.inner.encode(k[2])
            return (INDEX + _T1.pack(_ts(k[1])) + _LEN.pack(len(kb)) + kb
                    + _T2.pack(_ts(k[3]), _ts(k[4])))
        if tag == "y":
            return (RECORD_INDEX + _T1.pack(_ts(k[1])) + self.key_bytes(k[2])
                    + _record_tail(k[3], k[4], k[5]))
        if tag == "t":
            return TIME
        raise ValueError(f"not a window store key: {k!r}")

    def decode(self, data: bytes) -> tuple:
        tag = data[:1]
        if tag == WINDOW:
            key, pos = self._key_at(data, 1)
            start, end = _T2.unpack_from(data, pos)
            return (key, _unts(start), _unts(end))
        if tag == INDEX:
            close = _unts(_T1.unpack_from(data, 1)[0])
            key, pos = self._key_at(data, 9)
            start, end = _T2.unpack_from(data, pos)
            return ("x", close, key, _unts(start), _unts(end))
        if tag == RECORD:
            key, pos = self._key_at(data, 1)
            return ("r", key, *_untail(data, pos))
        if tag == RECORD_INDEX:
            close = _unts(_T1.unpack_from(data, 1)[0])
            key, pos = self._key_at(data, 9)
            return ("y", close, key, *_untail(data, pos))
        if tag == TIME:
            return STREAM_TIME
        raise ValueError(f"not a window store key: {data[:16]!r}")

    @staticmethod
    def record_time(data: bytes) -> int:
        """The event time of a buffered record's key bytes, without decoding the key."""
        return _unts(_T1.unpack_from(data, 5 + _LEN.unpack_from(data, 1)[0])[0])

    def _key_at(self, data: bytes, pos: int) -> tuple[Any, int]:
        n = _LEN.unpack_from(data, pos)[0]
        pos += 4
        return self.inner.decode(data[pos:pos + n]), pos + n


# A topic's name as a record key carries it (length, then UTF-8): a store's records come
# from a few topics, and a join encodes this for every record it buffers and deletes.
_TOPIC_BYTES: dict[str, bytes] = {}


def _topic_bytes(topic: str) -> bytes:
    tb = _TOPIC_BYTES.get(topic)
    if tb is None:
        raw = topic.encode()
        tb = _TOPIC_BYTES[topic] = _LEN.pack(len(raw)) + raw
    return tb


def _record_tail(ts: int, topic: str, offset: int) -> bytes:
    return b"".join((_T1.pack((ts + _SIGN) & _MASK), _topic_bytes(topic),
                     _T1.pack((offset + _SIGN) & _MASK)))


def _untail(data: bytes, pos: int) -> tuple[int, str, int]:
    ts = _unts(_T1.unpack_from(data, pos)[0])
    n = _LEN.unpack_from(data, pos + 8)[0]
    topic = data[pos + 12:pos + 12 + n].decode()
    offset = _unts(_T1.unpack_from(data, pos + 12 + n)[0])
    return ts, topic, offset


def _born(meta: list, at: int) -> tuple[str, int] | None:
    return (meta[at], meta[at + 1]) if len(meta) > at else None


def time_bytes(t: int) -> bytes:
    """A time as it sorts in store keys."""
    return _T1.pack(_ts(t))


class WindowValues:
    """Serde of a window store's values: aggregates (with the user's serde), buffered
    records (with the input's serde), stream time and index markers, told apart by a
    one-byte tag."""

    def __init__(self, aggregates: Serde, records: Serde) -> None:
        self.aggregates, self.records = aggregates, records
        self.name = f"window:{aggregates.name}"

    def encode(self, v: Any) -> bytes:
        t = type(v)
        if t is Agg:
            born = [] if v.born is None else list(v.born)
            if v.closed is None:
                meta, tag = orjson.dumps([v.offsets, v.ts, *born]), b"A"
            else:
                meta, tag = orjson.dumps([v.offsets, v.ts, v.closed[0], v.closed[1], *born]), b"C"
            return tag + _LEN.pack(len(meta)) + meta + self.aggregates.encode(v.value)
        if v is True:
            return b"i"
        if t is Clock:
            return b"t" + orjson.dumps([v[0], v[1], v[2]])
        if t is Buffered:
            return self.record_bytes(self.records.encode(v.value))
        raise TypeError(f"not a window store value: {v!r}")

    @staticmethod
    def record_bytes(encoded: bytes) -> bytes:
        """A buffered record's bytes, from its value's encoding by the records' serde."""
        return b"r" + encoded

    def decode(self, data: bytes) -> Any:
        tag = data[:1]
        if tag in _AGG_TAGS:
            n = _LEN.unpack_from(data, 1)[0]
            meta = orjson.loads(data[5:5 + n])
            value = self.aggregates.decode(data[5 + n:])
            if tag == b"A":
                return Agg(value, meta[0], None, meta[1], _born(meta, 2))
            if tag == b"C":
                return Agg(value, meta[0], (meta[2], meta[3]), meta[1], _born(meta, 4))
            # Written before windows kept their largest event time.
            if tag == b"a":
                return Agg(value, meta)
            return Agg(value, meta[0], (meta[1], meta[2]))
        if tag == b"i":
            return True
        if tag == b"t":
            return Clock(*orjson.loads(data[1:]))
        if tag == b"r":
            return Buffered(self.records.decode(data[1:]))
        raise ValueError(f"not a window store value: {data[:16]!r}")


class WindowedKeySerde:
    """A windowed key as the JSON object {"key": ..., "start": ..., "end": ...} (the record
    key as its JSON value: a string, a number, or an object for JSON and model keys)."""

    def __init__(self, inner: Serde) -> None:
        self.inner = inner
        self.name = f"windowed:{inner.name}"

    def encode(self, wk: WindowedKey) -> bytes:
        return dumps({"key": wk[0], "start": wk[1], "end": wk[2]})

    def decode(self, data: bytes) -> WindowedKey:
        d = orjson.loads(data)
        return WindowedKey(d["key"], d["start"], d["end"])
