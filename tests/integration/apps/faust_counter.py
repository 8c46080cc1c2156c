"""A plain Faust app (faust.App, not streamkit's): an agent sums "n" per user into a Faust
Table on RocksDB, and a page reads it. Faust's own producer batches the changelog writes
(producer_linger), which is what its recovery must read back exactly."""
import os

import faust

APP_ID = os.environ["FAUST_APP_ID"]
app = faust.App(APP_ID, broker=os.environ["STREAMKIT_BROKER"], store="rocksdb://",
                datadir=os.environ["STREAMKIT_DATA_DIR"], web_bind="127.0.0.1",
                web_port=int(os.environ["STREAMKIT_WEB_PORT"]), topic_partitions=4,
                producer_linger=0.05, broker_session_timeout=10,
                consumer_auto_offset_reset="earliest")
events = app.topic(f"{APP_ID}-events", value_serializer="json")
sums = app.Table("sums", default=int)


@app.agent(events)
async def add(stream):
    async for event in stream:
        sums[event["user"]] += event["n"]


@app.page("/sums")
async def all_sums(web, request):
    return web.json(dict(sums.items()))
