"""Which services a worker starts: Faust's consumer only for Faust agents, tables or tasks."""
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
