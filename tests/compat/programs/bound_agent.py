"""After Faust's examples/bound_agent.py: agents made with the app.agent(...)(fn) form over
functools.partial functions bound to a dead-letter channel; three in-memory channels; a
stage's results go on through sink=[channel]; a leader timer made the same way generates
device actions. Here a stage fails by the device id (the example: by the wall clock), the
timer generates a fixed range once, and the last stage and the dead-letter agent sink to
topics the test reads."""
import logging
from functools import partial
from typing import AsyncIterator

import faust
from faust import ChannelT, StreamT

from tests.compat.programs._flavor import make_app, name
from tests.compat.programs.data import DEVICES

logger = logging.getLogger(__name__)


class DeviceAction(faust.Record):
    device_id: str


class DeadLetter(faust.Record):
    stage: str
    record: DeviceAction


app = make_app(topic_partitions=4)
processed_topic = app.topic(name("processed"), value_type=DeviceAction)
dead_letter_topic = app.topic(name("dead-letters"), value_type=DeadLetter)
state = {"sent": False}


async def stage1_agent(dead_letters: ChannelT,
                       stream: StreamT[DeviceAction]) -> AsyncIterator[DeviceAction]:
    async for action in stream:
        try:
            if int(action.device_id) % 3 == 0:
                raise Exception("!!!")
            yield action
        except Exception:
            await dead_letters.send(value=DeadLetter(stage="stage1", record=action))


async def stage2_agent(dead_letters: ChannelT,
                       stream: StreamT[DeviceAction]) -> AsyncIterator[DeviceAction]:
    async for action in stream:
        try:
            if int(action.device_id) % 5 == 1:
                raise Exception("!!!")
            yield action
        except Exception:
            await dead_letters.send(value=DeadLetter(stage="stage2", record=action))


async def deadletter_agent(stream: StreamT[DeadLetter]) -> AsyncIterator[DeadLetter]:
    async for dl in stream:
        yield dl


async def action_generator(device_actions: ChannelT) -> None:
    if state["sent"]:
        return
    state["sent"] = True
    for i in range(DEVICES):
        await device_actions.send(value=DeviceAction(device_id=str(i)))


channel_device_action = app.channel(value_type=DeviceAction)
channel_stage1_stage2 = app.channel(value_type=DeviceAction)
channel_deadletter = app.channel(value_type=DeadLetter)

app.timer(interval=0.5, on_leader=True)(partial(action_generator, channel_device_action))
app.agent(channel_deadletter, name="dead-letter-agent", sink=[dead_letter_topic])(
    deadletter_agent)
app.agent(channel_device_action, name="stage1-agent", sink=[channel_stage1_stage2])(
    partial(stage1_agent, channel_deadletter))
app.agent(channel_stage1_stage2, name="stage2-agent", sink=[processed_topic])(
    partial(stage2_agent, channel_deadletter))
