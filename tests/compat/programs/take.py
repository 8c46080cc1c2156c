"""stream.take(n, within=...): an agent groups numbers into batches of up to ten, and sends
each batch's sum and length on (one partition, so the batches are the input's order)."""
from tests.compat.programs._flavor import make_app, name

app = make_app(topic_partitions=1)
numbers_topic = app.topic(name("numbers"), value_type=int)
batches_topic = app.topic(name("batches"))


@app.agent(numbers_topic)
async def batcher(stream):
    async for batch in stream.take(10, within=1.0):
        await batches_topic.send(value={"numbers": batch, "sum": sum(batch)})
