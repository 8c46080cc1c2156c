"""Late records: never silent. Each one is counted on its task, logged with where it came
from, and sent (with its original key, value and timestamp) to `<app id>-late-events`,
through the outbox, so it is committed together with the input offset that skipped it.
"""
from __future__ import annotations

import logging
from typing import Sequence

import orjson

from ..processing.context import ProcessorContext
from ..processing.deadletters import send_aside

log = logging.getLogger(__name__)


def report_late(ctx: ProcessorContext, table: str, late_topic: str, ts: int, stream_time: int,
                missed: Sequence[tuple[int, int]]) -> None:
    """Record that the record in hand missed the windows `missed` of `table`."""
    rec = ctx.record
    ctx.task.late_records += 1
    lateness = stream_time - ts
    windows = orjson.dumps([list(w) for w in missed])
    log.warning("late record dropped: table=%s topic=%s partition=%s offset=%s timestamp=%s "
                "event_time=%s stream_time=%s lateness_ms=%s windows=%s", table, rec.topic,
                rec.partition, rec.offset, rec.timestamp, ts, stream_time, lateness,
                windows.decode())
    headers = [
        ("streamkit.table", table.encode()),
        ("streamkit.lateness_ms", str(lateness).encode()),
        ("streamkit.windows", windows),
        ("streamkit.stream_time", str(stream_time).encode()),
        ("streamkit.event_time", str(ts).encode()),
    ]
    send_aside(ctx.writer, late_topic, ctx.partitions[late_topic], rec, headers)
