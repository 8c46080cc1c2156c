"""Records that go aside: a record that failed to decode or whose processing raised goes to
`<app id>-dead-letters`, a record too late for its window to `<app id>-late-events`, each
with its original key and value and with headers that say where it came from (its
timestamp among them).
Both go through the same writer as every output, so they are committed together with the
input offset that skipped them."""
from __future__ import annotations

from aiokafka.structs import ConsumerRecord

from .context import Header, RecordWriter

ERROR_BYTES = 2000  # an error message is cut to this, so a huge one cannot fill the topic


def source_headers(rec: ConsumerRecord) -> list[Header]:
    """Where a record came from: its topic, partition, offset and timestamp."""
    return [("streamkit.topic", rec.topic.encode()),
            ("streamkit.partition", str(rec.partition).encode()),
            ("streamkit.offset", str(rec.offset).encode()),
            ("streamkit.timestamp", str(rec.timestamp).encode())]


def send_aside(writer: RecordWriter, topic: str, partitions: int, rec: ConsumerRecord,
               headers: list[Header]) -> None:
    """Write rec's key and value to topic (in the partition of its source partition),
    stamped with the time it is set aside: Kafka deletes records older than a topic's
    retention by their timestamp, so a record whose own timestamp is days old would vanish
    at the broker's next retention check. Its own timestamp is in `streamkit.timestamp`."""
    writer.add(topic, rec.partition % partitions, rec.key, rec.value, None,
               headers + source_headers(rec))


def dead_letter(writer: RecordWriter, topic: str, partitions: int, rec: ConsumerRecord,
                stage: str, exc: BaseException) -> None:
    """Send rec to the dead-letter topic with the error and the stage (decode, process)."""
    error = f"{type(exc).__name__}: {exc}".encode()[:ERROR_BYTES]
    send_aside(writer, topic, partitions, rec,
               [("streamkit.error", error), ("streamkit.stage", stage.encode())])
