"""After Faust's examples/crontab/tz_unaware.py and tz_aware.py: crontabs, one leader-only
every minute and one with a timezone, send a record each to a topic an agent consumes; here
each sends once (its first run) and the agent passes what it consumes on to a topic, with
whether it ran on the minute (the examples print the time). The timezone goes in as
`timezone=`: tz_aware.py's `tz=` is not an argument of Faust 0.15.3's app.crontab."""
from datetime import datetime

import faust
import pytz

from tests.compat.programs._flavor import make_app, name


class Model(faust.Record, serializer="json"):
    random: float
    cron: str
    on_the_minute: bool


app = make_app(topic_partitions=4)
cron_topic = app.topic(name("cron_topic"), value_type=Model)
consumed_topic = app.topic(name("consumed"), value_type=Model)
pacific = pytz.timezone("US/Pacific")
sent: set = set()


@app.agent(cron_topic)
async def consume(stream):
    async for record in stream:
        await consumed_topic.send(value=record)


async def send_once(label: str, random: float) -> None:
    if label in sent:
        return
    sent.add(label)
    second = datetime.now().second
    await cron_topic.send(value=Model(random=random, cron=label,
                                      on_the_minute=second < 5))


@app.crontab("*/1 * * * *", on_leader=True)
async def publish_every_minute():
    await send_once("every minute, on the leader", 0.25)


@app.crontab("* * * * *", timezone=pacific)
async def publish_every_pacific_minute():
    await send_once("every minute, US/Pacific", 0.5)
