"""Which services a worker starts: Faust's consumer only for Faust agents, tables or tasks;
no processing and no services in Faust's client-only app; the state directory's lock only
for an app that keeps state."""
import asyncio

import pytest

import streamkit
from streamkit import Settings


def started(app) -> list:
    return list(app.on_init_dependencies())


def test_an_app_without_faust_agents_or_tables_starts_no_faust_consumer():
    app = streamkit.App("svc-plain", settings=Settings.from_env({}))
    app.source("events").group_by_key().count("n")
    services = started(app)
    assert app.processors in services
    assert app.consumer not in services and app.topics not in services
    assert app.producer in services


def test_a_faust_agent_brings_faust_consumer_back():
    app = streamkit.App("svc-agent", settings=Settings.from_env({}))

    @app.agent(app.topic("svc-agent-in"))
    async def handle(stream):
        async for _ in stream:
            pass

    services = started(app)
    assert app.consumer in services and app.processors in services


def test_a_task_or_a_leader_timer_brings_faust_consumer_back():
    # A task may iterate app.stream(topic), and a leader timer asks Faust's assignor who
    # leads: both need Faust's consumer.
    app = streamkit.App("svc-timer", settings=Settings.from_env({}))

    @app.timer(1.0, on_leader=True)
    async def tick():
        pass

    assert app.consumer in started(app)


def test_a_client_only_app_starts_neither_the_processing_nor_the_services():
    app = streamkit.App("svc-client", settings=Settings.from_env({}))
    app.source("events").group_by_key().count("n")

    @streamkit.service(app, "svc-client-requests")
    async def handle(req):
        return {}

    app.client_only = True  # what app.start_client() sets before the app starts
    assert app.processors not in started(app)
    gateway = streamkit.create_gateway("svc-gw", {"orders": "orders-requests"},
                                       settings=Settings.from_env({}))
    assert gateway.gateway in started(gateway)
    gateway.client_only = True
    assert gateway.gateway not in started(gateway) and gateway.processors not in started(gateway)
    runner = next(part for part in app.parts if part.keeps_state())
    asyncio.run(runner.on_start())  # no broker here: a start that made clients would fail
    assert (runner.producer, runner.consumer) == (None, None)


def test_only_an_app_that_keeps_state_locks_its_state_directory():
    def app_with(declare):
        app = streamkit.App("svc-state", settings=Settings.from_env({}))
        declare(app)
        return app.keeps_state

    assert not app_with(lambda app: app.source("events").to("out"))
    assert app_with(lambda app: app.source("events").group_by_key().count("n"))
    assert app_with(lambda app: app.global_table("g", "g-topic"))
    assert app_with(lambda app: app.Table("faust-counts", default=int))
    assert app_with(lambda app: streamkit.service(app, "reqs")(_echo))


async def _echo(req):
    return {}


def test_app_read_in_a_client_only_app_says_it_needs_a_worker():
    app = streamkit.App("svc-read", settings=Settings.from_env({}))
    app.source("events").group_by_key().count("n")
    app.client_only = True
    with pytest.raises(streamkit.NotAWorker, match=r"GET /tables/n/keys/<key> from a worker"):
        asyncio.run(app.read("n", "k"))
