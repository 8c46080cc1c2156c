"""The program of Faust's examples/windowing/tumbling.py and hopping.py, on a given window:
an agent counts events in a windowed table under one key and, for every event, writes what
the windowed value answers to now(), current(), value() and delta(30) (the example prints
them) to a topic."""
from datetime import timedelta

import faust

from tests.compat.programs._flavor import make_app, name


class Model(faust.Record, serializer="json"):
    random: float


def build(kind: str, window: tuple[float, ...]):
    # One partition: the table's single key is counted in one order, the input's.
    app = make_app(topic_partitions=1)
    events_topic = app.topic(name(f"{kind}_topic"), value_type=Model)
    answers_topic = app.topic(name(f"{kind}_answers"))
    table = app.Table(f"{kind}_table", default=int)
    if kind == "tumbling":
        table = table.tumbling(*window, expires=timedelta(minutes=10))
    else:
        table = table.hopping(*window, expires=timedelta(minutes=10))

    @app.agent(events_topic, name=f"print_windowed_events_{kind}")
    async def print_windowed_events(stream):
        async for event in stream:
            table["counter"] += 1
            value = table["counter"]
            await answers_topic.send(value={
                "event": event.random, "now": value.now(), "current": value.current(),
                "value": value.value(), "delta30": value.delta(30)})

    return app
