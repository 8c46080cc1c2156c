"""After Faust's examples/leader.py: a timer that runs only on the leader sends greetings to
an agent; the app's value_serializer is 'raw'. Here the timer sends a fixed list once and the
agent passes each greeting on to a topic (the example prints it)."""
from tests.compat.programs._flavor import make_app, name
from tests.compat.programs.data import LEADER_GREETINGS

app = make_app(value_serializer="raw", topic_partitions=4)
said_topic = app.topic(name("said"))
state = {"sent": False, "runs_on_leader": []}


@app.timer(0.5, on_leader=True)
async def publish_greetings():
    state["runs_on_leader"].append(app.is_leader())
    if state["sent"]:
        return
    state["sent"] = True
    for greeting in LEADER_GREETINGS:
        await say.send(value=greeting)


@app.agent()
async def say(greetings):
    async for greeting in greetings:
        await said_topic.send(value=greeting)


@app.page("/leader/")
async def leader(web, request):
    return web.json({"is_leader": app.is_leader(),
                     "timer_ran_as_leader": all(state["runs_on_leader"]) and state["sent"]})
