"""What an operator reaches while it processes a record."""
from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Sequence, cast

from aiokafka.structs import ConsumerRecord

Header = tuple[str, bytes]


class RecordContext(NamedTuple):
    """The input record an output comes from, as a topic extractor sees it (Kafka
    Streams' RecordContext): its topic, partition and offset (None, -1, -1 when no input
    record is in hand, as when the test driver advances stream time), the timestamp of
    the record being written, and the input's headers."""

    topic: str | None
    partition: int
    offset: int
    timestamp: int
    headers: tuple[Header, ...]


class RecordWriter(Protocol):
    """Where operators put the records they produce (the runner's outbox, or the test
    driver's in-memory topics)."""

    def add(self, topic: str, partition: int, key: bytes | None, value: bytes | None,
            timestamp_ms: int | None = None, headers: Sequence[Header] | None = None) -> None: ...


class ProcessorContext:
    """The task whose records are being processed (its stores, partition and operator
    state), the record in hand (topic, partition, offset and raw bytes, for operators that
    report or de-duplicate by source position), the writer of output records, and the
    partition count of every topic.

    One per topology, bound to each of its operators when the topology is finalized: the
    runner (or the test driver) of that topology fills it in before it hands a task its
    records, so two apps in one process never see each other's."""

    __slots__ = ("task", "record", "serial", "writer", "partitions", "agent")

    def __init__(self) -> None:
        # Filled in by the runner or the driver before any operator runs.
        self.task: Any = None
        self.record: ConsumerRecord = cast(ConsumerRecord, None)
        # Counts the records handed to operators: tells one record from the next even
        # when the same record is processed again.
        self.serial = 0
        self.writer: RecordWriter = cast(RecordWriter, None)
        self.partitions: dict[str, int] = {}
        # The batched agent whose body runs now (streamkit.dsl.agents), else None.
        self.agent: Any = None
