"""Batched agents: Faust's `async for` agent shape and mapping tables on the batched path,
run through the in-process driver (the engine's own processing code)."""
import faust
import pytest

from streamkit import App, Settings, TopologyError
from streamkit.errors import ProcessingStopped
from streamkit.testing import TopologyTestDriver
from tests.oracles import kafka_partition


def make_app(app_id: str = "ba") -> App:
    return App(app_id, settings=Settings.from_env({}))


def test_an_agent_counts_into_its_table_and_keeps_local_state_across_records():
    app = make_app()
    counts = app.agent_table("counts", default=int)
    seen = []

    @app.batched_agent("events")
    async def count(stream):
        n = 0  # local state lives as long as the agent's coroutine
        async for ev in stream:
            n += 1
            counts[ev["user"]] += ev["n"]
            seen.append(n)

    events = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("a", 5)]
    with TopologyTestDriver(app, partitions=4) as driver:
        for user, n in events:
            driver.pipe("events", user, {"user": user, "n": n})
        want = {}
        for user, n in events:
            want[user] = want.get(user, 0) + n
        assert driver.table("counts") == want
    assert seen == [1, 2, 3, 4, 5]


def test_what_an_agent_yields_goes_to_its_sinks_keyed_as_its_record():
    app = make_app()

    @app.batched_agent("words", sink=["lengths", "lengths-copy"])
    async def lengths(stream):
        async for key, word in stream.items():
            if word:
                yield {"key": key, "len": len(word)}
                yield {"key": key, "len2": len(word) * 2}

    with TopologyTestDriver(app, partitions=2) as driver:
        driver.pipe("words", "k1", "hello")
        driver.pipe("words", "k2", "")
        driver.pipe("words", "k3", "hi")
        want = [("k1", {"key": "k1", "len": 5}), ("k1", {"key": "k1", "len2": 10}),
                ("k3", {"key": "k3", "len": 2}), ("k3", {"key": "k3", "len2": 4})]
        assert [(r.key, r.value) for r in driver.read_output("lengths")] == want
        assert [(r.key, r.value) for r in driver.read_output("lengths-copy")] == want


def test_a_faust_topic_with_a_record_type_feeds_the_agent_records():
    class Withdrawal(faust.Record):
        user: str
        amount: float

    app = make_app()
    topic = app.topic("withdrawals", value_type=Withdrawal)
    totals = app.agent_table("totals", default=float)

    @app.batched_agent(topic)
    async def track(withdrawals):
        async for w in withdrawals:
            assert isinstance(w, Withdrawal)
            totals[w.user] += w.amount

    with TopologyTestDriver(app, partitions=3) as driver:
        for user, amount in [("u1", 1.5), ("u2", 2.0), ("u1", 3.0)]:
            driver.pipe("withdrawals", user, {"user": user, "amount": amount})
        assert driver.table("totals") == {"u1": 4.5, "u2": 2.0}


def test_a_failing_body_dead_letters_the_record_and_the_agent_starts_afresh():
    app = make_app("ba-dl")
    counts = app.agent_table("counts", default=int)
    starts = []

    @app.batched_agent("events")
    async def count(stream):
        starts.append(1)
        async for ev in stream:
            if ev.get("bad"):
                raise ValueError("bad event")
            counts[ev["user"]] += 1

    with TopologyTestDriver(app, partitions=1, on_error="continue") as driver:
        driver.pipe("events", "a", {"user": "a"})
        driver.pipe("events", "a", {"user": "a", "bad": True})
        driver.pipe("events", "a", {"user": "a"})
        assert driver.table("counts") == {"a": 2}
        (dead,) = driver.output("ba-dl-dead-letters")
        assert dead.headers["streamkit.error"] == b"ValueError: bad event"
    assert len(starts) == 2


def test_a_key_outside_the_records_partition_is_refused_with_the_reason():
    app = make_app("ba-part")
    counts = app.agent_table("counts", default=int)

    @app.batched_agent("events")
    async def count(stream):
        async for ev in stream:
            counts[ev["user"]] += 1

    with TopologyTestDriver(app, partitions=4) as driver:
        # A key whose partition differs from that of the record's key "same".
        other = next(u for u in (f"u{i}" for i in range(100))
                     if kafka_partition(u.encode(), 4) != kafka_partition(b"same", 4))
        with pytest.raises(ProcessingStopped, match="belongs to partition"):
            driver.pipe("events", "same", {"user": other})
        driver.pipe("events", other, {"user": other})
        assert driver.table("counts") == {other: 1}


def test_a_body_that_awaits_anything_but_its_stream_is_told_why_it_cannot():
    import asyncio

    app = make_app()

    @app.batched_agent("events")
    async def slow(stream):
        async for ev in stream:
            await asyncio.sleep(0)

    with TopologyTestDriver(app) as driver:
        with pytest.raises(ProcessingStopped, match="may await only its stream"):
            driver.pipe("events", "a", {"x": 1})


def test_an_agent_table_outside_an_agent_body_says_how_to_read_it():
    app = make_app()
    counts = app.agent_table("counts", default=int)

    @app.batched_agent("events")
    async def count(stream):
        async for ev in stream:
            counts[ev["user"]] += 1

    with TopologyTestDriver(app) as driver:
        driver.pipe("events", "a", {"user": "a"})
        with pytest.raises(TopologyError, match="app.read"):
            counts["a"]


def test_an_agent_can_follow_a_dsl_stream_that_regroups_its_records():
    app = make_app("ba-grp")
    per_word = app.agent_table("per-word", default=int)

    @app.batched_agent(app.source("posts").group_by(lambda word: word, name="words"))
    async def count(words):
        async for word in words:
            per_word[word] += 1

    with TopologyTestDriver(app, partitions=3) as driver:
        for w in ["fox", "the", "fox"]:
            driver.pipe("posts", "p", w)
        assert driver.table("per-word") == {"fox": 2, "the": 1}


def test_a_faust_table_and_a_streamkit_table_of_one_name_are_refused_before_they_share_a_changelog():
    from streamkit import ConfigError

    app = make_app("ba-names")
    app.Table("counts", default=int)
    app.agent_table("counts", default=int)
    with pytest.raises(ConfigError, match="share a changelog topic"):
        app.check_table_names()
