"""After Faust's examples/task_queue.py: a Celery-like queue. A faust.Record with a method
and a property describes a call of a registered task; Task.delay sends it to the agent's own
topic (agent.send), and the agent runs it. Here the agent also writes each result to a topic,
and a timer sends a fixed list of calls once (the example sends random ones every second)."""
from typing import Any, Awaitable, Callable, Mapping, MutableMapping, Sequence

import faust
from mode.utils.objects import qualname

from tests.compat.programs._flavor import make_app, name
from tests.compat.programs.data import TASKS


class Request(faust.Record):
    """Describes how tasks are serialized and sent to Kafka."""

    id: str
    name: str
    arguments: Sequence
    keyword_arguments: Mapping

    async def __call__(self) -> Any:
        return await self.handler(*self.arguments, **self.keyword_arguments)

    @property
    def handler(self) -> Callable[..., Awaitable]:
        return task_registry[self.name]


app = make_app(topic_partitions=4)
results_topic = app.topic(name("results"))
task_registry: MutableMapping[str, Callable[..., Awaitable]] = {}
state = {"sent": False}


@app.agent()
async def process_task(tasks: faust.Stream[Request]) -> None:
    async for task in tasks:
        result = await task()
        await results_topic.send(key=task.id, value={"id": task.id, "result": result})


class Task:
    def __init__(self, fun: Callable[..., Awaitable], *, name: str | None = None) -> None:
        self.fun = fun
        self.name = name or qualname(fun)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fun(*args, **kwargs)

    async def delay(self, *args: Any, **kwargs: Any) -> Any:
        return await self.apply_async(args, kwargs)

    async def apply_async(self, args: Sequence, kwargs: Mapping, id: str | None = None,
                          **options: Any) -> Any:
        id = id or faust.uuid()
        return await process_task.send(value=Request(
            id=id, name=self.name, arguments=args, keyword_arguments=kwargs))


def task(fun: Callable) -> Task:
    t = Task(fun)
    task_registry[t.name] = t
    return t


@task
async def add(x: int, y: int, z: int = 0) -> int:
    return x + y + z


@app.timer(0.5)
async def _send_tasks() -> None:
    if state["sent"]:
        return
    state["sent"] = True
    for id, x, y, z in TASKS:
        if z:
            await add.apply_async((x, y), {"z": z}, id=id)
        else:
            await add.apply_async((x, y), {}, id=id)
