"""Records the broker refuses: Kafka Streams' production exception handler (CONTINUE or
FAIL), chosen per topic.

A batch the broker refuses for what its records are (larger than the topic's
max.message.bytes, a timestamp out of its range) fails whole. The outbox then sends its
records again one at a time, so that the records at fault are known and the others are
written, and each record refused on its own goes by its topic's policy:

- `fail`: ProductionFailed. The commit stops before the input offsets, so nothing past the
  last commit is lost: once the cause is fixed, the records are processed again.
- `continue`: the record goes to `<app id>-dead-letters` with its key, value and headers,
  and headers that say the error and where it was going (`streamkit.stage: produce`,
  `streamkit.sink.topic`, `streamkit.sink.partition`, `streamkit.timestamp`); a record the
  dead-letter topic refuses too goes there without its value (`streamkit.value_bytes` says
  its size). The commit then goes on, input offsets included.

A changelog record is never skipped, whatever the policy: the store would keep an update
its changelog lacks, and lose it at the next restore. (Kafka Streams asks its handler for
changelog records too; continuing there loses the update from the changelog.)

Errors that are not the record's fault (a broker down, a timeout) are not handled here:
the commit is tried again.
"""
from __future__ import annotations

import logging
from collections import Counter
from typing import Mapping, Sequence

from aiokafka.errors import (
    InvalidTimestampError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)

from ..errors import ProductionFailed
from .context import Header
from .deadletters import ERROR_BYTES

log = logging.getLogger(__name__)

# The broker (or the producer, before sending) refuses the records themselves: sending
# them again can never succeed.
REJECTIONS = (MessageSizeTooLargeError, RecordListTooLargeError, InvalidTimestampError,
              RecordTooLargeError)
POLICIES = ("fail", "continue")
Record = tuple[bytes | None, bytes | None, int | None, Sequence[Header] | None]
# Where a record goes instead: topic, partition, record.
Diverted = tuple[str, int, Record]


def rejects(exc: BaseException) -> bool:
    """Whether exc refuses the records themselves (no retry can succeed)."""
    return isinstance(exc, REJECTIONS)


class ProductionErrors:
    """The production-error policy of each topic (`default` unless `per_topic` names
    one), and the dead letters of records refused under `continue`."""

    def __init__(self, default: str, per_topic: Mapping[str, str], dead_letters: str,
                 partitions: Mapping[str, int]) -> None:
        for policy in (default, *per_topic.values()):
            if policy not in POLICIES:
                raise ValueError(f"a production-error policy is 'fail' or 'continue', "
                                 f"not {policy!r}")
        self.default, self.per_topic = default, dict(per_topic)
        self.dead_letters, self.partitions = dead_letters, partitions
        self.rejected: Counter[str] = Counter()  # records refused, per topic meant for

    def policy(self, topic: str) -> str:
        return self.per_topic.get(topic, self.default)

    @property
    def continues(self) -> bool:
        """Whether any topic continues past a refused record."""
        return "continue" in (self.default, *self.per_topic.values())

    def letters(self, topic: str, partition: int, record: Record, exc: BaseException,
                changelog: bool = False) -> list[Diverted]:
        """The dead letters to try, in order, for a record the broker refused on its own
        (the whole record, then without its value); or ProductionFailed when its topic's
        policy is `fail` (or it is a changelog record)."""
        self.rejected[topic] += 1
        key, value, _ts, _headers = record
        what = f"{topic}[{partition}] refused a record (key {_show(key)}, {_size(value)} " \
               f"bytes): {exc!r}"
        if changelog or self.policy(topic) == "fail":
            why = ("a changelog never skips an update" if changelog
                   else f"the production-error policy of {topic} is 'fail'")
            raise ProductionFailed(f"{what}; {why}: the input offsets since the last commit "
                                   f"are not committed") from exc
        log.warning("%s; it goes to %s (the production-error policy of %s is 'continue')",
                    what, self.dead_letters, topic)
        bare = self._letter(topic, partition, record, exc, keep_value=False)
        if topic == self.dead_letters:
            return [bare]
        return [self._letter(topic, partition, record, exc, keep_value=True), bare]

    @staticmethod
    def refused_letter(letter: Diverted, exc: BaseException) -> ProductionFailed:
        """The error when even a dead letter without its value is refused."""
        topic, partition, (key, _value, _ts, _headers) = letter
        return ProductionFailed(f"{topic}[{partition}] refused the dead letter of a refused "
                                f"record (key {_show(key)}): {exc!r}")

    def _letter(self, topic: str, partition: int, record: Record, exc: BaseException,
                keep_value: bool) -> Diverted:
        key, value, ts, headers = record
        error = describe(exc).encode()[:ERROR_BYTES]
        about: list[Header] = [("streamkit.error", error), ("streamkit.stage", b"produce"),
                               ("streamkit.sink.topic", topic.encode()),
                               ("streamkit.sink.partition", str(partition).encode())]
        if ts is not None:
            about.append(("streamkit.timestamp", str(ts).encode()))
        if not keep_value:
            about.append(("streamkit.value_bytes", str(_size(value)).encode()))
            if key is not None and len(key) > ERROR_BYTES:
                about.append(("streamkit.key_bytes", str(len(key)).encode()))
                key = None
            value = None
        n = self.partitions.get(self.dead_letters, 1)
        # Stamped with the time it is set aside (None), as every dead letter: the topic's
        # retention counts from then.
        return self.dead_letters, partition % n, (key, value, None, [*about, *(headers or ())])


def refused_batch(topic: str, partition: int, records: Sequence[Record], exc: BaseException,
                  changelog: bool) -> ProductionFailed:
    """The error of a refused batch whose records cannot be tried one by one: changelog
    records (never skipped), or a transaction's (after a refused batch, its producer's
    sequence numbers have a gap: nothing more can be sent in it). Its largest record is
    named, the likely cause of a size error."""
    key, value, _ts, _headers = max(records, key=lambda r: _size(r[1]))
    what = "changelog records" if changelog else "records of a transaction"
    return ProductionFailed(
        f"{topic}[{partition}] refused a batch of {len(records)} {what} (the largest: key "
        f"{_show(key)}, {_size(value)} bytes): {exc!r}; the input offsets since the last "
        f"commit are not committed")


def describe(exc: BaseException) -> str:
    """The error's type and message (once: aiokafka's broker errors name their type)."""
    text, name = str(exc), type(exc).__name__
    return text if name in text else f"{name}: {text}"


def _size(value: bytes | None) -> int:
    return 0 if value is None else len(value)


def _show(key: bytes | None) -> str:
    return "None" if key is None else repr(key[:100]) + ("..." if len(key) > 100 else "")
