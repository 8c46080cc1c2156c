"""Faust's idioms on a streamkit.App: the agent a Faust user writes first (value_type=dict,
a Table of counts), a windowed table relative to the stream, agent.ask through a page, a
timer on the leader; beside them a batched agent counting into an agent table."""
import os

import streamkit

APP_ID = os.environ["IDIOMS_APP_ID"]
# As Faust's RPC example does: the reply topic is made and read from the start, so the
# first ask does not wait for Faust's consumer to subscribe to it.
app = streamkit.App(APP_ID, reply_create_topic=True, topic_partitions=4)

topic = app.topic(f"{APP_ID}-events", value_type=dict)
counts = app.Table("counts", default=int)
per_window = app.Table("per-window", default=int).tumbling(10.0, expires=3600.0).relative_to_stream()


@app.agent(topic)
async def count(stream):
    async for ev in stream:
        counts[ev["user"]] += 1
        per_window[ev["user"]] += 1


@app.agent(app.topic(f"{APP_ID}-double", value_type=int))
async def double(stream):
    async for n in stream:
        yield n * 2


@app.page("/double/{n}")
async def ask_double(web, request, n):
    return web.json({"n": int(n), "doubled": await double.ask(value=int(n))})


ticks = app.topic(f"{APP_ID}-ticks", value_type=int)
sent = []


@app.timer(0.2, on_leader=True)
async def tick():
    if len(sent) < 3:
        sent.append(len(sent) + 1)
        await ticks.send(value=sent[-1])


fast = app.agent_table("fast-counts", default=int)


@app.batched_agent(f"{APP_ID}-fast")
async def fast_count(stream):
    async for ev in stream:
        fast[ev["user"]] += ev["n"]
