"""Stream operators through the test driver: flat_map, flat_map_values, select_key, foreach,
routed and partitioned output, repartition, and the repartitioning of a stream whose key
may have changed. Expected records are Kafka Streams' (KStreamFlatMapTest,
KStreamFlatMapValuesTest, KStreamSelectKeyTest as data) or follow from its documented
semantics."""
from __future__ import annotations

import pytest

from streamkit import RecordContext, Tumbling
from streamkit.dsl import source_stream, table_from_topic
from streamkit.errors import ProcessingStopped, TopologyError
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver
from tests.oracles import kafka_partition


def kv(records):
    return [(r.key, r.value, r.timestamp) for r in records]


def test_flat_map_gives_kafka_streams_records():
    # KStreamFlatMapTest.testFlatMap: key k gives (str(k*10+i), value) for i < k.
    topo = Topology("fm")
    source_stream(topo, "in", "int", "str", None, None).flat_map(
        lambda k, v: [(str(k * 10 + i), v) for i in range(k)], keys="str").to("out")
    with TopologyTestDriver(topo) as driver:
        for k in (0, 1, 2, 3):
            driver.pipe("in", k, f"V{k}", timestamp_ms=0)
        assert kv(driver.read_output("out")) == [
            ("10", "V1", 0), ("20", "V2", 0), ("21", "V2", 0),
            ("30", "V3", 0), ("31", "V3", 0), ("32", "V3", 0)]


def test_flat_map_values_gives_kafka_streams_records():
    # KStreamFlatMapValuesTest.testFlatMapValues: value v gives "v<v>" then "V<v>".
    topo = Topology("fmv")
    source_stream(topo, "in", "int", "int", None, None).flat_map_values(
        lambda v: [f"v{v}", f"V{v}"], values="str").to("out")
    with TopologyTestDriver(topo) as driver:
        for k in (0, 1, 2, 3):
            driver.pipe("in", k, k, timestamp_ms=k * 10)
        assert kv(driver.read_output("out")) == [
            (0, "v0", 0), (0, "V0", 0), (1, "v1", 10), (1, "V1", 10),
            (2, "v2", 20), (2, "V2", 20), (3, "v3", 30), (3, "V3", 30)]


def test_select_key_gives_kafka_streams_records():
    # KStreamSelectKeyTest.testSelectKey: the key is looked up from the value.
    names = {1: "ONE", 2: "TWO", 3: "THREE"}
    topo = Topology("sk")
    source_stream(topo, "in", "str", "int", None, None).select_key(
        lambda _k, v: names[v]).to("out")
    with TopologyTestDriver(topo) as driver:
        for v in (1, 2, 3):
            driver.pipe("in", None, v)
        assert kv(driver.read_output("out")) == [("ONE", 1, 0), ("TWO", 2, 0), ("THREE", 3, 0)]


def test_a_rekeyed_stream_is_repartitioned_before_group_by_key():
    topo = Topology("rk")
    (source_stream(topo, "clicks", "str", "json", None, None)
     .select_key(lambda _k, c: c["page"]).group_by_key().count("per-page"))
    with TopologyTestDriver(topo, partitions=4) as driver:
        pages = ["/a", "/b", "/a", "/c", "/a", "/b"]
        for i, page in enumerate(pages):
            driver.pipe("clicks", f"user{i}", {"page": page})
        assert driver.table("per-page") == {"/a": 3, "/b": 2, "/c": 1}
        through = driver.output("rk-per-page-repartition")
        assert [(r.key, r.partition) for r in through] == [
            (p, kafka_partition(p.encode(), 4)) for p in pages]
        # Each page is counted by the task of its key's partition only.
        group = topo.group_of_topic("rk-per-page-repartition")
        for page, n in {"/a": 3, "/b": 2, "/c": 1}.items():
            task = driver.tasks[(group, kafka_partition(page.encode(), 4))]
            assert task.stores["per-page"].get(page) == n


def test_map_and_flat_map_mark_the_stream_and_value_operators_do_not():
    topo = Topology("marks")
    s = source_stream(topo, "in", "str", "json", None, None)
    s.map_values(lambda v: v).filter(lambda v: True).group_by_key().count("plain")
    s.map(lambda k, v: (v, v)).filter(lambda v: True).group_by_key().count("mapped")
    s.flat_map(lambda k, v: [(v, 1)]).group_by_key().count("flat")
    s.flat_map_values(lambda v: [v]).group_by_key().count("flat-values")
    assert "marks-plain-repartition" not in topo.sources
    assert "marks-flat-values-repartition" not in topo.sources
    assert "marks-mapped-repartition" in topo.sources
    assert "marks-flat-repartition" in topo.sources
    with TopologyTestDriver(topo, partitions=3) as driver:
        driver.pipe("in", "k1", "x")
        driver.pipe("in", "k2", "x")
        assert driver.table("plain") == {"k1": 1, "k2": 1}
        assert driver.table("mapped") == {"x": 2}
        assert driver.table("flat") == {"x": 2}


def test_branches_of_a_marked_stream_are_marked():
    topo = Topology("bm")
    s = source_stream(topo, "in", "str", "json", None, None).select_key(lambda _k, v: v)
    a, rest = s.branch(lambda v: v == "a", default=True)
    a.group_by_key().count("na")
    rest.group_by_key().count("nrest")
    assert {"bm-na-repartition", "bm-nrest-repartition"} <= set(topo.sources)
    with TopologyTestDriver(topo, partitions=2) as driver:
        for i, v in enumerate(["a", "b", "a", "c"]):
            driver.pipe("in", f"k{i}", v)
        assert driver.table("na") == {"a": 2}
        assert driver.table("nrest") == {"b": 1, "c": 1}


def test_a_merged_stream_is_marked_when_any_input_is():
    topo = Topology("mm")
    a = source_stream(topo, "a", "str", "json", None, None)
    b = source_stream(topo, "b", "str", "json", None, None).select_key(lambda _k, v: v)
    a.merge(b).group_by_key().count("n")
    assert "mm-n-repartition" in topo.sources


def test_a_rekeyed_windowed_aggregate_repartitions_through_the_table_name():
    topo = Topology("wr")
    (source_stream(topo, "in", "str", "json", lambda v: v["ts"], None)
     .select_key(lambda _k, v: v["user"]).group_by_key()
     .windowed_by(Tumbling(size_ms=100, grace_ms=0)).count("w"))
    assert "wr-w-repartition" in topo.sources
    with TopologyTestDriver(topo, partitions=2) as driver:
        for i, user in enumerate(["u1", "u2", "u1"]):
            driver.pipe("in", f"e{i}", {"user": user, "ts": 10 + i})
        assert {(wk.key, wk.start): n for wk, n in driver.table("w").items()} == {
            ("u1", 0): 2, ("u2", 0): 1}


def test_grouped_stream_of_a_rekeyed_stream_is_not_a_partitioned_stream():
    topo = Topology("gs")
    grouped = source_stream(topo, "in", "str", "json", None, None).select_key(
        lambda k, v: v).group_by_key()
    with pytest.raises(TopologyError):
        _ = grouped.stream


def test_a_rekeyed_stream_joins_a_table_after_a_repartition():
    topo = Topology("jr")
    users = table_from_topic(topo, "users", "users", "str", "json")
    orders = source_stream(topo, "orders", "str", "json", None, None).select_key(
        lambda _k, o: o["user"])
    with pytest.raises(TopologyError, match="name="):
        orders.join(users, lambda o, u: [o["id"], u["name"]])
    orders.join(users, lambda o, u: [o["id"], u["name"]], name="orders-by-user").to("out")
    with TopologyTestDriver(topo, partitions={"users": 3, "orders": 5}) as driver:
        # The repartition topic takes the table's count, so that the join is co-partitioned.
        assert driver.partitions["jr-orders-by-user-repartition"] == 3
        driver.pipe("users", "u1", {"name": "Ann"})
        driver.pipe("users", "u2", {"name": "Bob"})
        driver.pipe("orders", "o1", {"id": "o1", "user": "u2"})
        driver.pipe("orders", "o2", {"id": "o2", "user": "u1"})
        driver.pipe("orders", "o3", {"id": "o3", "user": "u3"})
        assert [(r.key, r.value) for r in driver.read_output("out")] == [
            ("u2", ["o1", "Bob"]), ("u1", ["o2", "Ann"])]


def test_foreach_calls_the_function_per_record_and_ends_the_stream():
    seen = []
    topo = Topology("fe")
    out = source_stream(topo, "in", "str", "int", None, None).map_values(
        lambda v: v * 2).foreach(lambda k, v: seen.append((k, v)))
    assert out is None
    with TopologyTestDriver(topo) as driver:
        driver.pipe_many("in", [("a", 1, 0), ("b", 2, 1), ("a", 3, 2)])
    assert seen == [("a", 2), ("b", 4), ("a", 6)]


def routed_topology(seen: list):
    topo = Topology("route")

    def by_kind(key, value, rc: RecordContext):
        seen.append(rc)
        return f"route-{value['kind']}"

    source_stream(topo, "in", "str", "json", lambda v: v["ts"], None).to(
        by_kind, topics=["route-a", "route-b"])
    return topo


def test_a_topic_extractor_picks_each_records_topic_from_key_value_and_record():
    seen: list[RecordContext] = []
    with TopologyTestDriver(routed_topology(seen), partitions={"route-b": 3}) as driver:
        driver.pipe("in", "k1", {"kind": "a", "ts": 7}, timestamp_ms=1, headers=[("h", b"1")])
        driver.pipe("in", "k2", {"kind": "b", "ts": 8})
        driver.pipe("in", "k3", {"kind": "a", "ts": 9})
        assert [(r.key, r.value["ts"]) for r in driver.read_output("route-a")] == [
            ("k1", 7), ("k3", 9)]
        [b] = driver.read_output("route-b")
        assert (b.key, b.partition) == ("k2", kafka_partition(b"k2", 3))
    assert seen == [RecordContext("in", 0, 0, 7, (("h", b"1"),)),
                    RecordContext("in", 0, 1, 8, ()), RecordContext("in", 0, 2, 9, ())]


def test_a_topic_not_declared_with_the_extractor_is_a_dead_letter_or_stops():
    with TopologyTestDriver(routed_topology([]), on_error="continue") as driver:
        driver.pipe("in", "k1", {"kind": "c", "ts": 1})
        driver.pipe("in", "k2", {"kind": "a", "ts": 2})
        [dead] = driver.read_output(driver.dead_letter_topic)
        assert dead.key == b"k1" and b"route-c" in dead.headers["streamkit.error"]
        assert [r.key for r in driver.read_output("route-a")] == ["k2"]
    with TopologyTestDriver(routed_topology([])) as driver:
        with pytest.raises(ProcessingStopped, match="route-c"):
            driver.pipe("in", "k1", {"kind": "c", "ts": 1})


def test_an_extractor_needs_its_topics_and_a_name_takes_none():
    topo = Topology("bad")
    s = source_stream(topo, "in", "str", "json", None, None)
    with pytest.raises(TopologyError):
        s.to(lambda k, v, rc: "x")
    with pytest.raises(TopologyError):
        s.to("x", topics=["x"])


def test_a_partitioner_places_records_and_none_keeps_the_default():
    def by_number(topic, key, value, n):
        assert topic == "out"
        return None if value is None else value % n

    topo = Topology("part")
    source_stream(topo, "in", "str", "int", None, None).to("out", partitioner=by_number)
    with TopologyTestDriver(topo, partitions={"out": 4}) as driver:
        for key, value in [("a", 5), ("b", 2), ("c", None), ("d", 7)]:
            driver.pipe("in", key, value)
        assert [(r.key, r.partition) for r in driver.read_output("out")] == [
            ("a", 1), ("b", 2), ("c", kafka_partition(b"c", 4)), ("d", 3)]


def test_a_partition_out_of_range_is_an_error():
    topo = Topology("part2")
    source_stream(topo, "in", "str", "int", None, None).to("out", partitioner=lambda *a: 9)
    with TopologyTestDriver(topo, partitions=2) as driver:
        with pytest.raises(ProcessingStopped, match="partition 9"):
            driver.pipe("in", "a", 1)


def test_repartition_with_a_count_and_a_partitioner():
    topo = Topology("rp")
    s = source_stream(topo, "in", "str", "json", None, None)
    s.select_key(lambda _k, v: v["user"]).repartition(3, name="by-user").group_by_key().count(
        "per-user")
    s.repartition(name="even", partitioner=lambda t, k, v, n: 0).to("out")
    with TopologyTestDriver(topo, partitions=2) as driver:
        assert driver.partitions["rp-by-user-repartition"] == 3
        assert driver.partitions["rp-even-repartition"] == 2  # as many as its source
        for i, user in enumerate(["u1", "u2", "u1", "u3"]):
            driver.pipe("in", f"e{i}", {"user": user})
        # The count needs no repartition of its own: repartition() cleared the mark.
        assert "rp-per-user-repartition" not in topo.sources
        assert driver.table("per-user") == {"u1": 2, "u2": 1, "u3": 1}
        assert [(r.key, r.partition) for r in driver.output("rp-by-user-repartition")] == [
            (u, kafka_partition(u.encode(), 3)) for u in ["u1", "u2", "u1", "u3"]]
        assert {r.partition for r in driver.output("rp-even-repartition")} == {0}
        assert [r.key for r in driver.read_output("out")] == ["e0", "e1", "e2", "e3"]
    with pytest.raises(TopologyError):
        s.repartition(0, name="none")


def test_word_count_as_docs_dsl_md_writes_it():
    import re

    import streamkit
    from streamkit import Settings

    app = streamkit.App("wordcount", settings=Settings.from_env({}))
    lines = app.source("text-lines")
    counts = (lines
              .flat_map_values(lambda line: re.findall(r"\w+", line.lower()))
              .group_by(lambda word: word, name="words")
              .count("word-counts"))
    counts.to_stream().to("word-counts")
    with TopologyTestDriver(app, partitions=2) as driver:
        driver.pipe("text-lines", None, "Hello Kafka Streams")
        driver.pipe("text-lines", None, "All streams lead to Kafka")
        driver.pipe("text-lines", None, "Join Kafka Summit")
        assert driver.table("word-counts") == {
            "hello": 1, "kafka": 3, "streams": 2, "all": 1, "lead": 1, "to": 1, "join": 1,
            "summit": 1}
        # Every change of a count, in the order of the words (one partition per word).
        changes = driver.read_output("word-counts")
        assert [(r.key, r.value) for r in changes if r.key == "kafka"] == [
            ("kafka", 1), ("kafka", 2), ("kafka", 3)]
        assert len(changes) == 11
