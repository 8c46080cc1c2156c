"""A Faust app with neither agents nor tables, after docs/userguide/streams.rst ("you can also
create stream objects manually at any point") and examples/leader.py: a task iterates
app.stream(topic) and writes each number doubled to a topic; a leader-only timer sends a
fixed list to another topic once."""
from tests.compat.programs._flavor import make_app, name
from tests.compat.programs.data import LEADER_GREETINGS

app = make_app(topic_partitions=4)
numbers_topic = app.topic(name("numbers"), value_type=int)
doubled_topic = app.topic(name("doubled"), value_type=int)
announced_topic = app.topic(name("announced"), value_type=str)
state = {"sent": False}


@app.task
async def doubler():
    async for number in app.stream(numbers_topic):
        await doubled_topic.send(value=number * 2)


@app.timer(0.5, on_leader=True)
async def announce():
    if state["sent"]:
        return
    state["sent"] = True
    for greeting in LEADER_GREETINGS:
        await announced_topic.send(value=greeting)
