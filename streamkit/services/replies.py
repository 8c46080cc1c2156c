"""The service helper's record of the replies it gave, one changelogged store per request
partition.

A request redelivered after a crash (same correlation id), or retried by its client with
the same `request_id` (its Idempotency-Key), is answered with the reply it got before,
and its handler does not run again. The record is a RocksDB store whose changelog is the
compacted topic `<app id>-<request topic>-replies`, partition for partition with the
request topic (a request and its retries share a key, so they share a partition): it
survives a restart, a lost disk and a move of the partition to another worker.

Entries expire `retention_ms` after they were written. Two kinds of key live in one store:
    b"k" + dedupe key                 -> {"reply": <reply envelope>, "expires_ms": ...}
    b"t" + expiry (8 bytes) + key     -> b""      (time order, so expiry is a range scan)
"""
from __future__ import annotations

import struct
from pathlib import Path
from typing import Iterator

import orjson
from aiokafka import TopicPartition

from ..envelope import ReplyEnvelope
from ..errors import EnvelopeError
from ..serde import dumps, resolve
from ..state.keys import codec_for
from ..state.store import PartitionStore

DEFAULT_RETENTION_MS = 24 * 3600 * 1000
_EXPIRY = struct.Struct(">q")
_RAW = resolve("raw")

Item = tuple[bytes, bytes | None]


def replies_topic(app_id: str, request_topic: str) -> str:
    """The changelog of the replies given to requests of request_topic."""
    return f"{app_id}-{request_topic}-replies"


class ReplyLog:
    """Replies given to the requests of one request partition."""

    def __init__(self, path: Path, changelog: TopicPartition, retention_ms: int) -> None:
        self.changelog = changelog
        self.retention_ms = retention_ms
        self.store = PartitionStore(path, codec_for(_RAW), _RAW)

    def open(self) -> "ReplyLog":
        self.store.open()
        return self

    def close(self) -> None:
        self.store.close()

    def get(self, key: str, now_ms: int) -> ReplyEnvelope | None:
        """The reply recorded under key (recorded or still being written), unless expired."""
        raw = self.store.get(b"k" + key.encode())
        if raw is None:
            return None
        try:
            entry = orjson.loads(raw)
            if entry["expires_ms"] <= now_ms:
                return None
            return ReplyEnvelope.from_dict(entry["reply"])
        except (orjson.JSONDecodeError, KeyError, TypeError, EnvelopeError):
            return None  # an entry this version cannot read: run the handler

    def record(self, keys: list[str], reply: ReplyEnvelope, now_ms: int) -> list[Item]:
        """Record reply under each key; the encoded entries to write to the changelog.
        Readers see them at once; the database takes them in apply()."""
        expires = now_ms + self.retention_ms
        value = dumps({"reply": reply.to_dict(), "expires_ms": expires})
        items: list[Item] = []
        for key in keys:
            kb = key.encode()
            items += [(b"k" + kb, value), (b"t" + _EXPIRY.pack(expires) + kb, b"")]
        for kb, vb in items:
            self.store.put(kb, vb)
        return items

    def expired(self, now_ms: int, limit: int = 10_000) -> list[Item]:
        """Tombstones for entries whose time has passed (both of their keys)."""
        out: list[Item] = []
        for kb, _ in self._index(now_ms):
            out += [(b"k" + kb[9:], None), (kb, None)]
            self.store.delete(kb)
            self.store.delete(b"k" + kb[9:])
            if len(out) >= 2 * limit:
                break
        return out

    def _index(self, now_ms: int) -> Iterator[tuple[bytes, bytes]]:
        end = b"t" + _EXPIRY.pack(now_ms + 1)
        yield from self.store.raw_items(b"t", end, prefix=b"t")

    def apply(self, items: list[Item], checkpoint: int) -> None:
        """Write entries the changelog has acknowledged into the database, with the
        changelog position (recovery resumes there)."""
        self.store.write(items, checkpoint)
        for kb, _ in items:
            self.store.dirty.pop(kb, None)

    def discard(self) -> None:
        """Forget every entry recorded or expired since the last apply() (their
        transaction was aborted: they were never written)."""
        self.store.dirty.clear()
