"""After Faust's examples/tabletest.py: a timer sends 0, 1, 2, ... to every partition of a
topic, keyed by the partition number and with the partition given explicitly; an agent
iterating stream.events() checks that each partition's values come in order, one apart
(the example sleeps an hour on a gap; here gaps are recorded), and sums them per partition
in a Table read through a table_route page."""
from tests.compat.programs._flavor import make_app, name
from tests.compat.programs.data import TABLETEST_ITERATIONS, TABLETEST_PARTITIONS

app = make_app(store="rocksdb://", version=1, topic_partitions=TABLETEST_PARTITIONS,
               stream_buffer_maxsize=16368)
source_topic = app.topic(name("countstopic"), key_type=str, value_type=int)
counts = app.Table("counts", default=int)
seen: dict = {}
prev_offsets: dict = {}
gaps: list = []
placed: dict = {}     # key -> the partitions its events came from
state = {"sent": False}


@app.agent(source_topic)
async def count(stream):
    async for event in stream.events():
        partition = event.key
        count = event.value
        prev = seen.get(partition)
        prev_offset = prev_offsets.get(partition)
        if prev is not None and count != prev + 1:
            gaps.append({"partition": partition, "prev": prev, "now": count,
                         "offset": event.message.offset, "prev_offset": prev_offset})
        seen[partition] = count
        prev_offsets[partition] = event.message.offset
        placed.setdefault(partition, set()).add(event.message.partition)
        counts[str(partition)] += count


@app.page("/count/{partition}/")
@app.table_route(table=counts, match_info="partition")
async def get_count(web, request, partition):
    return web.json({partition: counts[str(partition)]})


@app.page("/state/")
async def get_state(web, request):
    return web.json({"seen": seen, "gaps": gaps,
                     "placed": {k: sorted(v) for k, v in placed.items()}})


@app.timer(0.5)
async def produce():
    if state["sent"]:
        return
    state["sent"] = True
    last_fut = None
    for i in range(TABLETEST_ITERATIONS):
        for j in range(TABLETEST_PARTITIONS):
            last_fut = await source_topic.send(key=str(j), value=i, partition=j)
        if not i % 50:
            await last_fut  # wait for the buffer to flush
    await last_fut
