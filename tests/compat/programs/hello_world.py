"""After Faust's examples/hello_world.py: a timer sends greetings to a topic once, and an
agent consumes them; here the agent passes each on to a topic the test reads, in place of
printing it."""
from tests.compat.programs._flavor import make_app, name
from tests.compat.programs.data import GREETINGS

app = make_app(topic_partitions=4)
greetings_topic = app.topic(name("greetings"), value_type=str)
printed_topic = app.topic(name("printed"), value_type=str)
state = {"sent": False}


@app.agent(greetings_topic)
async def print_greetings(greetings):
    async for greeting in greetings:
        await printed_topic.send(value=greeting)


@app.timer(0.5)
async def produce():
    if state["sent"]:
        return
    state["sent"] = True
    await greetings_topic.maybe_declare()
    await printed_topic.maybe_declare()
    for greeting in GREETINGS:
        await greetings_topic.send(value=greeting)
