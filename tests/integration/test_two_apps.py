"""Two apps in one process share nothing: each topology's operators reach their own
runner's tasks, outbox and partition counts (its ProcessorContext), however the two
runners' batches interleave in the event loop."""
from __future__ import annotations

import asyncio

import orjson

import streamkit
from streamkit import Settings
from streamkit.testing.kafka import produce_async, read_topic_async

N = 400


def make_app(broker: str, app_id: str, name: str, factor: int, tmp_path) -> streamkit.App:
    settings = Settings.from_env({"STREAMKIT_BROKER": f"kafka://{broker}",
                                  "STREAMKIT_PROFILE": "dev",
                                  "STREAMKIT_DATA_DIR": str(tmp_path / name)})
    app = streamkit.App(f"{app_id}-{name}", settings=settings)
    source = app.source(f"{app_id}-{name}-in")
    source.map_values(lambda v: v * factor).to(f"{app_id}-{name}-out")
    source.group_by_key().aggregate("sums", initial=0, add=lambda s, v: s + v * factor)
    return app


async def test_two_apps_in_one_process_keep_their_outputs_and_state_apart(
        broker, app_id, tmp_path):
    apps = {"a": make_app(broker, app_id, "a", 1, tmp_path),
            "b": make_app(broker, app_id, "b", 1000, tmp_path)}
    for name in apps:
        await produce_async(broker, f"{app_id}-{name}-in", [(f"k{i % 7}", i) for i in range(N)])
    runners = [app.processors for app in apps.values()]
    try:
        await asyncio.gather(*(r.start() for r in runners))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        outputs = {}
        while loop.time() < deadline:
            outputs = {n: await read_topic_async(broker, f"{app_id}-{n}-out") for n in apps}
            if all(len(v) == N for v in outputs.values()):
                break
            await asyncio.sleep(0.2)
        assert {n: sorted(int(r.value) for r in v) for n, v in outputs.items()} == {
            "a": list(range(N)), "b": [i * 1000 for i in range(N)]}
        assert all(orjson.loads(r.value) == int(r.value) for v in outputs.values() for r in v)
        for name, app in apps.items():
            assert app.processors.counters["dead_letters"] == 0
            dead = await read_topic_async(broker, f"{app_id}-{name}-dead-letters")
            assert dead == []
            own = app.processors.ownership
            factor = 1 if name == "a" else 1000
            for k in range(7):
                partition, store = own.locate("sums", f"k{k}")
                assert store.get(f"k{k}") == sum(i * factor for i in range(N) if i % 7 == k)
    finally:
        await asyncio.gather(*(r.stop() for r in runners), return_exceptions=True)
