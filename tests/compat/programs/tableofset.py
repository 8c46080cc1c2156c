"""After Faust's examples/tableofset.py: a SetTable of people per location, one agent adding
the names that join a location, another discarding the names that leave."""
from tests.compat.programs._flavor import make_app, name

app = make_app(topic_partitions=4, version=2)
table = app.SetTable("people", value_type=str)
joining_topic = app.topic(name("people_joining2"), key_type=str, value_type=str)
leaving_topic = app.topic(name("people_leaving2"), key_type=str, value_type=str)
handled = {"join": 0, "leave": 0}


@app.agent(joining_topic)
async def join(stream):
    async for key, person in stream.items():
        table[key].add(person)
        handled["join"] += 1


@app.agent(leaving_topic)
async def leave(stream):
    async for key, person in stream.items():
        table[key].discard(person)
        handled["leave"] += 1


@app.page("/people/")
async def people(web, request):
    return web.json({"handled": handled,
                     "table": {key: sorted(members) for key, members in table.items()}})
