"""After Faust's examples/windowed_aggregation.py: events are appended to a list in a
tumbling table relative to the events' date field; when Faust closes a window (its cleanup
timer, every table_cleanup_interval, finds it expired), on_window_close sends the window's
count and mean to a sink topic. The window is 2 s here (10 in the example) to keep the test
short; the test sends the events rather than a timer.

COMPAT_STORE picks the store: "memory://" on both flavors, or "" for no store option, as in
the example (each App class's default: Faust's is memory://, streamkit's rocksdb://). On
RocksDB the list comes back from the store as JSON, its RawModels as dicts, and
window_processor's `event.value` raises AttributeError in Faust's cleanup timer, which
crashes the worker."""
import os
from datetime import datetime, timedelta

import faust

from tests.compat.programs._flavor import make_app, name


class RawModel(faust.Record):
    date: datetime
    value: float


class AggModel(faust.Record):
    date: datetime
    count: int
    mean: float


CLEANUP_INTERVAL = 1.0
WINDOW = 2
WINDOW_EXPIRES = 1
PARTITIONS = 1

app = make_app(version=1, topic_partitions=1, store=os.environ["COMPAT_STORE"] or None)
app.conf.table_cleanup_interval = CLEANUP_INTERVAL
source = app.topic(name("raw-event"), value_type=RawModel)
sink = app.topic(name("agg-event"), value_type=AggModel)


def window_processor(key, events):
    timestamp = key[1][0]
    values = [event.value for event in events]
    count = len(values)
    mean = sum(values) / count
    sink.send_soon(value=AggModel(date=timestamp, count=count, mean=mean))


tumbling_table = (
    app.Table("tumbling_table", default=list, partitions=PARTITIONS,
              on_window_close=window_processor)
    .tumbling(WINDOW, expires=timedelta(seconds=WINDOW_EXPIRES))
    .relative_to_field(RawModel.date)
)


@app.agent(source)
async def print_windowed_events(stream):
    async for event in stream:
        value_list = tumbling_table["events"].value()
        value_list.append(event)
        tumbling_table["events"] = value_list
