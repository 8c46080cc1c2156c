"""Kafka's Produce and Fetch requests, encoded and decoded with `struct` in one pass.

aiokafka builds every request and response as a tree of schema objects and walks it field by
field in Python; on the request path (a record per request, a produce and a fetch per hop)
that walk is a large part of a hop's CPU. These two requests are written here directly, for
the non-flexible versions every supported broker serves (Produce 3-8, Fetch 4-11: Kafka 4
removed the older ones; the flexible ones add nothing these paths use). They are sent over
aiokafka's own connections (`AIOKafkaClient.send`), which keep the security, the version
negotiation and the correlation of answers; `WireRequest` is what such a connection needs of
a request.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from aiokafka.errors import IncompatibleBrokerVersion

PRODUCE, FETCH = 0, 1
PRODUCE_VERSIONS = (3, 8)
FETCH_VERSIONS = (4, 11)

_i8, _i16, _i32, _i64 = (struct.Struct(f">{c}") for c in "bhiq")
_HEADER = struct.Struct(">hhih")
_I16_I32 = struct.Struct(">hi")
_PART_PRODUCED = struct.Struct(">ihqq")  # index, error, base offset, log append time
_PART_FETCHED = struct.Struct(">ihqq")  # index, error, high watermark, last stable offset
_ABORTED = struct.Struct(">qq")  # producer id, first offset


def _string(s: str) -> bytes:
    raw = s.encode()
    return _i16.pack(len(raw)) + raw


@dataclass(frozen=True)
class PartitionProduced:
    partition: int
    error: int
    base_offset: int
    log_append_time: int  # -1 unless the topic's timestamps are the broker's
    log_start_offset: int  # -1 before version 5
    message: str | None


@dataclass(frozen=True)
class PartitionFetched:
    partition: int
    error: int
    high_watermark: int
    last_stable_offset: int
    aborted: list[tuple[int, int]] | None  # (producer id, first offset), read_committed only
    records: bytes | None


class _Header:
    __slots__ = ("raw",)

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def encode(self) -> bytes:
        return self.raw


class _ResponseHeader:
    __slots__ = ("correlation_id",)

    def __init__(self, correlation_id: int) -> None:
        self.correlation_id = correlation_id


class _Decoder:
    __slots__ = ("_decode", "_version")

    def __init__(self, decode: Callable[[memoryview, int], Any], version: int) -> None:
        self._decode, self._version = decode, version

    def decode(self, buf: io.BytesIO) -> Any:
        view = buf.getbuffer()
        return self._decode(view[buf.tell():], self._version)


class WireRequest:
    """A request as aiokafka's connection sends it: prepare() picks the highest version both
    sides speak and encodes the body; the answer is decoded by `decode(view, version)`."""

    FLEXIBLE_VERSION = False

    def __init__(self, api_key: int, versions: tuple[int, int],
                 body: Callable[[int], bytes], decode: Callable[[memoryview, int], Any]) -> None:
        self.API_KEY = api_key
        self._ours, self._body, self._decode = versions, body, decode
        self.API_VERSION = -1
        self.RESPONSE_TYPE: _Decoder | None = None
        self._encoded = b""

    def prepare(self, versions: dict[int, tuple[int, int]]) -> "WireRequest":
        low, high = versions.get(self.API_KEY, (0, -1))
        version = min(high, self._ours[1])
        if version < max(low, self._ours[0]):
            raise IncompatibleBrokerVersion(
                f"the broker serves API {self.API_KEY} in versions {low}-{high}; "
                f"streamkit speaks {self._ours[0]}-{self._ours[1]}")
        self.API_VERSION = version
        self.RESPONSE_TYPE = _Decoder(self._decode, version)
        self._encoded = self._body(version)
        return self

    def build_request_header(self, correlation_id: int, client_id: str) -> _Header:
        cid = client_id.encode()
        return _Header(_HEADER.pack(self.API_KEY, self.API_VERSION, correlation_id, len(cid)) + cid)

    def encode(self) -> bytes:
        return self._encoded

    def parse_response_header(self, buf: io.BytesIO) -> _ResponseHeader:
        return _ResponseHeader(_i32.unpack(buf.read(4))[0])

    def __repr__(self) -> str:  # what aiokafka's debug log prints
        return f"WireRequest(api={self.API_KEY}, version={self.API_VERSION})"


# Produce --------------------------------------------------------------------------------

def produce_request(batches: Iterable[tuple[str, int, bytes]], timeout_ms: int,
                    acks: int = -1) -> WireRequest:
    """One record batch per (topic, partition, batch bytes); acks=-1 waits for every
    in-sync replica."""
    by_topic: dict[str, list[tuple[int, bytes]]] = {}
    for topic, partition, data in batches:
        by_topic.setdefault(topic, []).append((partition, data))
    parts = [_i16.pack(-1), _I16_I32.pack(acks, timeout_ms), _i32.pack(len(by_topic))]
    for topic, items in by_topic.items():
        parts.append(_string(topic))
        parts.append(_i32.pack(len(items)))
        for partition, data in items:
            parts.append(_i32.pack(partition) + _i32.pack(len(data)))
            parts.append(bytes(data))
    body = b"".join(parts)
    return WireRequest(PRODUCE, PRODUCE_VERSIONS, lambda version: body, decode_produce)


def decode_produce(view: memoryview, version: int) -> dict[str, list[PartitionProduced]]:
    pos, out = 4, {}  # type: tuple[int, dict[str, list[PartitionProduced]]]
    (n_topics,) = _i32.unpack_from(view, 0)
    for _ in range(n_topics):
        topic, pos = _name(view, pos)
        (n_parts,), pos = _i32.unpack_from(view, pos), pos + 4
        parts = out[topic] = []
        for _ in range(n_parts):
            index, error, base_offset, appended = _PART_PRODUCED.unpack_from(view, pos)
            pos += _PART_PRODUCED.size
            start = -1
            if version >= 5:
                (start,), pos = _i64.unpack_from(view, pos), pos + 8
            message = None
            if version >= 8:
                (n_errors,), pos = _i32.unpack_from(view, pos), pos + 4
                for _ in range(max(n_errors, 0)):
                    pos += 4
                    _, pos = _read_string(view, pos)
                message, pos = _read_string(view, pos)
            parts.append(PartitionProduced(index, error, base_offset, appended, start, message))
    return out


# Fetch ----------------------------------------------------------------------------------

def fetch_request(positions: Iterable[tuple[str, int, int]], max_wait_ms: int, min_bytes: int,
                  max_bytes: int, partition_max_bytes: int, isolation_level: int
                  ) -> WireRequest:
    """A fetch of each (topic, partition, offset); isolation_level 1 is read_committed."""
    by_topic: dict[str, list[tuple[int, int]]] = {}
    for topic, partition, offset in positions:
        by_topic.setdefault(topic, []).append((partition, offset))

    def body(version: int) -> bytes:
        parts = [struct.pack(">iiiib", -1, max_wait_ms, min_bytes, max_bytes, isolation_level)]
        if version >= 7:
            parts.append(struct.pack(">ii", 0, -1))  # no fetch session: every fetch is full
        parts.append(_i32.pack(len(by_topic)))
        for topic, items in by_topic.items():
            parts.append(_string(topic))
            parts.append(_i32.pack(len(items)))
            for partition, offset in items:
                parts.append(_i32.pack(partition))
                if version >= 9:
                    parts.append(_i32.pack(-1))  # current leader epoch: not checked
                parts.append(_i64.pack(offset))
                if version >= 5:
                    parts.append(_i64.pack(-1))  # log start offset: a follower's field
                parts.append(_i32.pack(partition_max_bytes))
        if version >= 7:
            parts.append(_i32.pack(0))  # forgotten topics
        if version >= 11:
            parts.append(_string(""))  # rack id
        return b"".join(parts)

    return WireRequest(FETCH, FETCH_VERSIONS, body, decode_fetch)


def decode_fetch(view: memoryview, version: int) -> tuple[int, dict[str, list[PartitionFetched]]]:
    """(the request's error code, the partitions' answers by topic)."""
    pos, error = 4, 0
    if version >= 7:
        (error,) = _i16.unpack_from(view, pos)
        pos += 6  # error code, session id
    (n_topics,), pos = _i32.unpack_from(view, pos), pos + 4
    out: dict[str, list[PartitionFetched]] = {}
    for _ in range(n_topics):
        topic, pos = _name(view, pos)
        (n_parts,), pos = _i32.unpack_from(view, pos), pos + 4
        parts = out.setdefault(topic, [])
        for _ in range(n_parts):
            index, perror, high, stable = _PART_FETCHED.unpack_from(view, pos)
            pos += _PART_FETCHED.size
            if version >= 5:
                pos += 8  # log start offset
            (n_aborted,), pos = _i32.unpack_from(view, pos), pos + 4
            aborted = None
            if n_aborted >= 0:
                aborted = [_ABORTED.unpack_from(view, pos + 16 * i) for i in range(n_aborted)]
                pos += 16 * n_aborted
            if version >= 11:
                pos += 4  # preferred read replica
            (size,), pos = _i32.unpack_from(view, pos), pos + 4
            records = None
            if size >= 0:
                records = bytes(view[pos:pos + size])
                pos += size
            parts.append(PartitionFetched(index, perror, high, stable, aborted, records))
    return error, out


def _read_string(view: memoryview, pos: int) -> tuple[str | None, int]:
    (n,) = _i16.unpack_from(view, pos)
    pos += 2
    if n < 0:
        return None, pos
    return bytes(view[pos:pos + n]).decode(), pos + n


def _name(view: memoryview, pos: int) -> tuple[str, int]:
    name, pos = _read_string(view, pos)
    return name or "", pos
