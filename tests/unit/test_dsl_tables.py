"""Table operators through the test driver: filter, map_values, to_stream, and re-grouped
tables aggregated with an adder and a subtractor. Expected records are Kafka Streams'
(KTableFilterTest, KTableAggregateTest, KTableReduceTest cases as data) or follow from
its documented semantics; counts are checked against a count made in the test."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from streamkit.dsl import table_from_topic
from streamkit.errors import TopologyError
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver


def kvt(records):
    return [(r.key, r.value, r.timestamp) for r in records]


def test_filter_gives_kafka_streams_records_with_old_values_sent():
    # KTableFilterTest.doTestSendingOldValue: even values pass.
    topo = Topology("tf")
    table = table_from_topic(topo, "t1", "in", "str", "int")
    table.filter(lambda v: v % 2 == 0, "even").to_stream().to("out")
    with TopologyTestDriver(topo) as driver:
        for key, ts in (("A", 5), ("B", 10), ("C", 15)):
            driver.pipe("in", key, 1, ts)
        assert driver.read_output("out") == []
        driver.pipe("in", "A", 2, 15)
        driver.pipe("in", "B", 2, 8)
        assert kvt(driver.read_output("out")) == [("A", 2, 15), ("B", 2, 8)]
        driver.pipe("in", "A", 3, 20)
        assert kvt(driver.read_output("out")) == [("A", None, 20)]
        assert driver.table("even") == {"B": 2}
        driver.pipe("in", "A", None, 10)
        driver.pipe("in", "B", None, 20)
        assert kvt(driver.read_output("out")) == [("B", None, 20)]
        assert driver.table("even") == {}


def test_map_values_maps_every_entry_and_deletes_with_its_source():
    topo = Topology("tm")
    table_from_topic(topo, "t1", "in", "str", "str").map_values(
        lambda v: len(v), "lengths").to_stream().to("out")
    with TopologyTestDriver(topo) as driver:
        driver.pipe("in", "A", "x", 1)
        driver.pipe("in", "B", "yy", 2)
        driver.pipe("in", "A", "zzz", 3)
        driver.pipe("in", "B", None, 4)
        driver.pipe("in", "C", None, 5)  # Kafka Streams forwards this tombstone too
        assert kvt(driver.read_output("out")) == [
            ("A", 1, 1), ("B", 2, 2), ("A", 3, 3), ("B", None, 4), ("C", None, 5)]
        assert driver.table("lengths") == {"A": 3}


def test_to_stream_is_the_tables_updates_deletes_included():
    topo = Topology("ts")
    table_from_topic(topo, "t1", "in", "str", "int").to_stream().to("out")
    with TopologyTestDriver(topo) as driver:
        driver.pipe_many("in", [("A", 1, 10), ("B", 2, 11), ("A", None, 14)])
        assert kvt(driver.read_output("out")) == [("A", 1, 10), ("B", 2, 11), ("A", None, 14)]


def string_aggregate(selector):
    """KTableAggregateTest's aggregate: initial "0", adder agg+"+"+v, remover agg+"-"+v."""
    topo = Topology("ta")
    (table_from_topic(topo, "t1", "in", "str", "str")
     .group_by(selector, "regroup", values="str")
     .aggregate("agg", "0", lambda agg, v: f"{agg}+{v}", lambda agg, v: f"{agg}-{v}",
                values="str")
     .to_stream().to("out"))
    return topo


def test_aggregate_gives_kafka_streams_records():
    # KTableAggregateTest.testAggBasic: the key is kept, so each update subtracts the old
    # value and adds the new one in one update of the aggregate.
    with TopologyTestDriver(string_aggregate(lambda k, v: (k, v)), partitions=2) as driver:
        for key, value in [("A", "1"), ("B", "2"), ("A", "3"), ("B", "4"), ("C", "5"),
                           ("D", "6"), ("B", "7"), ("C", "8")]:
            driver.pipe("in", key, value)
        assert [f"{r.key}:{r.value}" for r in driver.read_output("out")] == [
            "A:0+1", "B:0+2", "A:0+1-1+3", "B:0+2-2+4", "C:0+5", "D:0+6",
            "B:0+2-2+4-4+7", "C:0+5-5+8"]


def test_aggregate_repartition_gives_kafka_streams_records():
    # KTableAggregateTest.testAggRepartition: grouped by value; a None key or a None pair
    # is skipped, a delete only subtracts.
    def selector(key, value):
        return {"null": (None, value), "NULL": None}.get(key, (value, value))

    with TopologyTestDriver(string_aggregate(selector), partitions=3) as driver:
        for key, value in [("A", "1"), ("A", None), ("A", "1"), ("B", "2"), ("null", "3"),
                           ("B", "4"), ("NULL", "5"), ("B", "7")]:
            driver.pipe("in", key, value)
        assert [f"{r.key}:{r.value}" for r in driver.read_output("out")] == [
            "1:0+1", "1:0+1-1", "1:0+1-1+1", "2:0+2", "2:0+2-2", "4:0+4", "4:0+4-4", "7:0+7"]


def test_the_old_group_is_subtracted_before_the_new_one_is_added():
    # KTableAggregateTest.testRemoveOldBeforeAddNew: key "xy" adds y to group x.
    topo = Topology("tr")
    (table_from_topic(topo, "t1", "in", "str", "str")
     .group_by(lambda k, v: (k[0], k[1]), "regroup", values="str")
     .aggregate("agg", "", lambda agg, v: agg + v, lambda agg, v: agg.replace(v, ""),
                values="str")
     .to_stream().to("out"))
    with TopologyTestDriver(topo) as driver:
        for key, value in [("11", "A"), ("12", "B"), ("11", None), ("12", "C")]:
            driver.pipe("in", key, value)
        assert [f"{r.key}:{r.value}" for r in driver.read_output("out")] == [
            "1:1", "1:12", "1:2", "1:2"]


def count_topology():
    topo = Topology("tc")
    (table_from_topic(topo, "t1", "in", "str", "str")
     .group_by(lambda k, v: (v, v), "regroup").count("counts").to_stream().to("out"))
    return topo


def test_count_gives_kafka_streams_records():
    # KTableAggregateTest.testCount: a key moving from green to blue leaves green first.
    with TopologyTestDriver(count_topology(), partitions=2) as driver:
        for key, colour in [("A", "green"), ("B", "green"), ("A", "blue"), ("C", "yellow"),
                            ("D", "green")]:
            driver.pipe("in", key, colour)
        assert [f"{r.key}:{r.value}" for r in driver.read_output("out")] == [
            "green:1", "green:2", "green:1", "blue:1", "yellow:1", "green:2"]


def test_count_under_no_op_updates_and_deletes():
    with TopologyTestDriver(count_topology()) as driver:
        driver.pipe("in", "A", "gold")
        driver.pipe("in", "A", "gold")  # a PUT that changes nothing: -1 then +1
        driver.pipe("in", "B", "gold")
        driver.pipe("in", "A", None)
        driver.pipe("in", "A", None)  # deleting what is gone: nothing to subtract
        driver.pipe("in", "B", "silver")
        assert [f"{r.key}:{r.value}" for r in driver.read_output("out")] == [
            "gold:1", "gold:1", "gold:2", "gold:1", "gold:0", "silver:1"]
        assert driver.table("counts") == {"gold": 0, "silver": 1}


def test_reduce_gives_kafka_streams_records_and_a_none_result_deletes():
    # KTableReduceTest's adder and subtractor on sets: the group's set of members.
    topo = Topology("tred")
    (table_from_topic(topo, "t1", "in", "str", "str")
     .group_by(lambda k, v: (v, [k]), "regroup", values="json")
     .reduce("members", lambda agg, v: sorted(set(agg) | set(v)),
             lambda agg, v: sorted(set(agg) - set(v)) or None)
     .to_stream().to("out"))
    with TopologyTestDriver(topo) as driver:
        driver.pipe("in", "A", "g1")
        driver.pipe("in", "B", "g1")
        driver.pipe("in", "A", "g2")
        driver.pipe("in", "B", None)
        assert kvt(driver.read_output("out")) == [
            ("g1", ["A"], 0), ("g1", ["A", "B"], 0), ("g1", ["B"], 0), ("g2", ["A"], 0),
            ("g1", None, 0)]
        assert driver.table("members") == {"g2": ["A"]}


def test_counts_match_a_count_of_the_latest_values_under_random_updates():
    rng = random.Random(19)
    latest: dict[str, str] = {}
    with TopologyTestDriver(count_topology(), partitions=4) as driver:
        for i in range(250):
            key = f"c{rng.randrange(40)}"
            value = None if rng.random() < 0.2 else rng.choice(["gold", "silver", "bronze"])
            driver.pipe("in", key, value, i)
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value
            if i % 61 == 0:
                driver.restart()
        expected = Counter(latest.values())
        assert {g: n for g, n in driver.table("counts").items() if n} == dict(expected)


@pytest.mark.parametrize("torn, lose_outputs", [
    (None, True),    # killed before the commit sent anything
    (None, False),   # killed after the outputs were sent: the repartition topic has
                     # the pairs of the lost period, and the replay sends them again
    (1.0, False),    # killed after the stores were written, before the input offsets
])
def test_a_crash_replays_to_exact_counts(torn, lose_outputs):
    latest: dict[str, str] = {}
    with TopologyTestDriver(count_topology(), partitions=2, auto_commit=False) as driver:
        rng = random.Random(7)
        for i in range(200):
            key, value = f"c{rng.randrange(15)}", rng.choice(["gold", "silver", "bronze", None])
            driver.pipe("in", key, value, i)
            if value is None:
                latest.pop(key, None)
            else:
                latest[key] = value
            if i % 50 == 0:
                driver.commit()
            if i % 50 == 30:
                driver.restart(crash=True, torn=torn, lose_outputs=lose_outputs)
            assert {g: n for g, n in driver.table("counts").items() if n} == dict(
                Counter(latest.values()))


def test_change_pairs_round_trip_and_garbage_is_a_decode_error():
    from streamkit.errors import DecodeError
    from streamkit.processing.tables import ChangeSerde
    from streamkit.serde import resolve

    serde = ChangeSerde(resolve("json"))
    for pair in [({"a": 1}, None, None), (None, [2], ("t", 1, 5, 2)), ("x", "y", ("t", 0, 0, 1))]:
        assert serde.decode(serde.encode(pair)) == pair
    for garbage in [b"", b"\x07\x00\x00\x00\x09\x00\x00\x00\x00{}",
                    b"\x04\x00\x00\x00\x00\x00\x00\x00\x00[1,"]:
        with pytest.raises(DecodeError):
            serde.decode(garbage)


def test_a_table_table_join_can_be_regrouped():
    topo = Topology("tj")
    left = table_from_topic(topo, "l", "left", "str", "str")
    right = table_from_topic(topo, "r", "right", "str", "str")
    (left.join(right, "both", lambda a, b: f"{a}{b}")
     .group_by(lambda k, v: (v, v), "regroup").count("n"))
    with TopologyTestDriver(topo) as driver:
        driver.pipe("left", "k1", "a")
        driver.pipe("right", "k1", "x")
        driver.pipe("left", "k2", "a")
        driver.pipe("right", "k2", "x")
        driver.pipe("right", "k1", "y")
        assert driver.table("n") == {"ax": 1, "ay": 1}


def test_filter_and_map_values_results_can_be_regrouped():
    topo = Topology("tfm")
    (table_from_topic(topo, "t1", "in", "str", "int")
     .filter(lambda v: v > 0, "positive").map_values(lambda v: v % 2, "parity")
     .group_by(lambda k, v: ("odd" if v else "even", 1), "regroup").count("n"))
    with TopologyTestDriver(topo) as driver:
        for key, value in [("a", 1), ("b", 2), ("c", -3), ("a", 4), ("b", -1), ("c", 5)]:
            driver.pipe("in", key, value)
        # a=4 (even), b filtered out, c=5 (odd)
        assert driver.table("n") == {"even": 1, "odd": 1}
        assert driver.table("positive") == {"a": 4, "c": 5}


def test_a_table_without_old_values_cannot_be_regrouped():
    topo = Topology("tx")
    table = table_from_topic(topo, "t1", "in", "str", "json")
    other = table_from_topic(topo, "t2", "in2", "str", "json")
    fk = table.join_foreign(other, "fk", lambda v: v["o"], lambda a, b: [a, b])
    with pytest.raises(TopologyError, match="replaces"):
        fk.group_by(lambda k, v: (k, v), "regroup")

