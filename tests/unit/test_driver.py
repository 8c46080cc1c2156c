"""The in-process test driver runs a topology's real tasks, serdes and RocksDB stores."""
from __future__ import annotations

import orjson
import pytest

import streamkit
from streamkit import Settings
from streamkit.errors import ProcessingStopped, TopologyError
from tests.oracles import kafka_partition
from streamkit.testing import OutputRecord, TopologyTestDriver


def shop_app():
    app = streamkit.App("shop", settings=Settings.from_env({}))
    orders = app.source("orders")  # key: order id
    orders.group_by(lambda o: o["customer"], name="by-customer").aggregate(
        "spend", initial=0, add=lambda total, o: total + o["amount"])
    orders.filter(lambda o: o["amount"] > 5).map_values(lambda o: o["amount"]).to("big")
    return app


def test_records_are_decoded_with_the_sink_serdes_and_read_once():
    with TopologyTestDriver(shop_app()) as driver:
        driver.pipe("orders", "o1", {"customer": "c1", "amount": 7}, timestamp_ms=5)
        driver.pipe("orders", "o2", {"customer": "c1", "amount": 2}, timestamp_ms=6)
        assert driver.read_output("big") == [OutputRecord("o1", 7, 5, 0, 0, {})]
        assert driver.read_output("big") == []
        assert [r.value for r in driver.output("big")] == [7]


def test_repartitioned_records_reach_the_task_of_their_new_keys_partition():
    with TopologyTestDriver(shop_app(), partitions=4) as driver:
        for i in range(40):
            driver.pipe("orders", f"o{i}", {"customer": f"c{i % 5}", "amount": i})
        assert driver.table("spend") == {f"c{c}": sum(range(c, 40, 5)) for c in range(5)}
        group = driver.topology.group_of_topic("shop-by-customer-repartition")
        for c in range(5):
            owner = kafka_partition(f"c{c}".encode(), 4)
            assert dict(driver.tasks[(group, owner)].stores["spend"].items())[f"c{c}"] == sum(
                range(c, 40, 5))
        repartitioned = driver.output("shop-by-customer-repartition")
        assert len(repartitioned) == 40
        assert all(r.partition == kafka_partition(r.key.encode(), 4) for r in repartitioned)


def test_tables_show_uncommitted_updates_and_commit_writes_rocksdb():
    with TopologyTestDriver(shop_app(), auto_commit=False) as driver:
        driver.pipe("orders", "o1", {"customer": "c1", "amount": 3})
        store = next(t.stores["spend"] for t in driver.tasks.values() if "spend" in t.stores)
        assert driver.table("spend") == {"c1": 3}
        assert dict(store.items()) == {}
        driver.commit()
        assert dict(store.items()) == {"c1": 3}


def test_restart_keeps_state_and_a_crash_replays_what_was_not_committed():
    with TopologyTestDriver(shop_app(), auto_commit=False) as driver:
        driver.pipe("orders", "o1", {"customer": "c1", "amount": 3})
        driver.restart()  # commits first
        assert driver.table("spend") == {"c1": 3}
        driver.pipe("orders", "o2", {"customer": "c1", "amount": 4})
        # the update and the repartitioned record are lost, and o2 is processed again
        driver.restart(crash=True, lose_outputs=True)
        assert driver.table("spend") == {"c1": 7}


def test_a_crash_after_the_outputs_were_sent_applies_them_twice_at_least_once():
    with TopologyTestDriver(shop_app(), auto_commit=False) as driver:
        driver.pipe("orders", "o1", {"customer": "c1", "amount": 3})
        driver.commit()
        driver.pipe("orders", "o2", {"customer": "c1", "amount": 4})
        driver.restart(crash=True)  # o2's repartitioned record stays in its topic
        assert driver.table("spend") == {"c1": 11}
        assert len(driver.output("shop-by-customer-repartition")) == 3


def test_a_failing_record_raises_by_default_and_goes_to_dead_letters_on_continue():
    with TopologyTestDriver(shop_app()) as driver:
        with pytest.raises(ProcessingStopped, match="KeyError"):
            driver.pipe("orders", "o1", {"amount": 3})
    with TopologyTestDriver(shop_app(), on_error="continue") as driver:
        driver.pipe_raw("orders", b"o1", b"{not json")
        driver.pipe("orders", "o2", {"customer": "c1", "amount": 9})
        dead = driver.read_output(driver.dead_letter_topic)
        assert [(r.key, r.value, r.headers["streamkit.stage"]) for r in dead] == [
            (b"o1", b"{not json", b"decode")]
        assert driver.table("spend") == {"c1": 9}


def test_sources_processed_together_must_have_equal_partition_counts():
    app = streamkit.App("joined", settings=Settings.from_env({}))
    app.source("a").merge(app.source("b")).to("out")
    with pytest.raises(TopologyError, match="same number of partitions"):
        TopologyTestDriver(app, partitions={"a": 2, "b": 3})


def test_piping_to_a_topic_the_topology_does_not_know_is_refused():
    with TopologyTestDriver(shop_app()) as driver:
        with pytest.raises(KeyError, match="pipe_raw"):
            driver.pipe("nope", "k", {"v": 1})


def test_the_driver_sizes_a_foreign_key_join_and_writes_changelogs_as_a_worker_does():
    app = streamkit.App("fk", settings=Settings.from_env({}))
    orders = app.table("orders", topic="order-events")            # key: order id
    customers = app.table("customers", topic="customer-events")   # key: customer id
    orders.join_foreign(customers, "named", fk=lambda o: o["customer"],
                        joiner=lambda o, c: {**o, "name": c["name"]})
    with TopologyTestDriver(app, partitions=3) as driver:
        # Internal topics take the count of the sub-topology they serve.
        assert driver.partitions["fk-named-subscription-repartition"] == 3
        assert driver.partitions["fk-named-response-repartition"] == 3
        driver.pipe("customer-events", "c1", {"name": "Ada"})
        driver.pipe("order-events", "o1", {"customer": "c1", "n": 2})
        assert driver.table("named") == {"o1": {"customer": "c1", "n": 2, "name": "Ada"}}
        driver.pipe("customer-events", "c1", {"name": "Bo"})
        assert driver.table("named")["o1"]["name"] == "Bo"
        # A commit goes through the changelogs, as a worker's does (raw records there).
        changelog = [(r.key, orjson.loads(r.value)["name"])
                     for r in driver.output("fk-named-changelog")]
        assert changelog == [(b"o1", "Ada"), (b"o1", "Bo")]


def test_a_dead_letter_from_the_driver_carries_the_error_cut_as_a_worker_cuts_it():
    app = streamkit.App("dl", settings=Settings.from_env({}))

    def explode(value):
        raise ValueError("x" * 5000)

    app.source("events").map_values(explode).to("out")
    with TopologyTestDriver(app, on_error="continue") as driver:
        driver.pipe("events", "k", {"a": 1}, timestamp_ms=7)
        (dead,) = driver.output("dl-dead-letters")
        assert dead.headers["streamkit.error"] == ("ValueError: " + "x" * 5000).encode()[:2000]
        assert dead.headers["streamkit.stage"] == b"process"
        assert (dead.headers["streamkit.topic"], dead.headers["streamkit.offset"]) == (b"events", b"0")
