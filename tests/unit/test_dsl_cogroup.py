"""Cogrouped streams through the test driver: Kafka Streams' CogroupedKStreamImplTest cases
as data (keys and values: streamkit's aggregates carry the timestamp of the record that
updated them), one store for every input, repartitioned inputs, and crashes."""
from __future__ import annotations

import pytest

from streamkit.dsl import source_stream
from streamkit.errors import TopologyError
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver
from streamkit.windows import Hopping, Session, Sliding, Tumbling, WindowedKey


def cogrouped(add_one, add_two, initial, values="str", keys_two="str", values_two="str"):
    topo = Topology("cg")
    one = source_stream(topo, "one", "str", "str", None, None).group_by_key()
    two = source_stream(topo, "two", keys_two, values_two, None, None).group_by_key()
    table = one.cogroup(add_one).cogroup(two, add_two).aggregate("agg", initial, values=values)
    table.to_stream().to("out")
    return topo


def run(topo, one, two, partitions=1):
    with TopologyTestDriver(topo, partitions=partitions) as driver:
        for key, value in one:
            driver.pipe("one", key, value)
        for key, value in two:
            driver.pipe("two", key, value)
        return [(r.key, r.value) for r in driver.read_output("out")], driver.table("agg")


def test_two_streams_with_distinct_keys():
    # CogroupedKStreamImplTest.shouldCogroupAndAggregateTwoKStreamsWithDistinctKeys
    out, table = run(cogrouped(lambda a, v: a + v, lambda a, v: a + v, ""),
                     [("k1", "A")] * 4, [("k2", "B")] * 6)
    assert out == [("k1", "A"), ("k1", "AA"), ("k1", "AAA"), ("k1", "AAAA"),
                   ("k2", "B"), ("k2", "BB"), ("k2", "BBB"), ("k2", "BBBB"), ("k2", "BBBBB"),
                   ("k2", "BBBBBB")]
    assert table == {"k1": "AAAA", "k2": "BBBBBB"}


def test_two_streams_with_shared_keys():
    # CogroupedKStreamImplTest.shouldCogroupAndAggregateTwoKStreamsWithSharedKeys
    out, _ = run(cogrouped(lambda a, v: a + v, lambda a, v: a + v, ""),
                 [("k1", "A"), ("k2", "A"), ("k1", "A"), ("k2", "A")],
                 [("k2", "B"), ("k2", "B"), ("k1", "B"), ("k2", "B"), ("k1", "B"), ("k2", "B"),
                  ("k3", "B"), ("k2", "B")], partitions=3)
    assert out == [("k1", "A"), ("k2", "A"), ("k1", "AA"), ("k2", "AA"), ("k2", "AAB"),
                   ("k2", "AABB"), ("k1", "AAB"), ("k2", "AABBB"), ("k1", "AABB"),
                   ("k2", "AABBBB"), ("k3", "B"), ("k2", "AABBBBB")]


@pytest.mark.parametrize("values_two, two", [
    ("str", ["2", "2", "2", "2", "2", "3", "2", "2"]),   # shouldAllowDifferentOutputTypeInCoGroup
    ("int", [2, 2, 2, 2, 2, 3, 2, 2]),                   # shouldCoGroupStreamsWithDifferentInputTypes
])
def test_inputs_of_other_types_than_the_aggregate(values_two, two):
    topo = cogrouped(lambda a, v: a + int(v), lambda a, v: a + int(v), 0, values="int",
                     values_two=values_two)
    keys = ["k2", "k2", "k1", "k2", "k1", "k2", "k3", "k2"]
    out, _ = run(topo, [("k1", "1"), ("k2", "1"), ("k1", "1"), ("k2", "1")], list(zip(keys, two)))
    assert out == [("k1", 1), ("k2", 1), ("k1", 2), ("k2", 2), ("k2", 4), ("k2", 6), ("k1", 4),
                   ("k2", 8), ("k1", 6), ("k2", 11), ("k3", 2), ("k2", 13)]


def test_mixed_aggregators():
    # CogroupedKStreamImplTest.testCogroupKeyMixedAggregators
    out, _ = run(cogrouped(lambda a, v: f"{a}-{v}", lambda a, v: f"{a}+{v}", "0"),
                 [("k1", "1"), ("k2", "1"), ("k1", "1"), ("k2", "1")],
                 [("k1", "2"), ("k2", "2"), ("k1", "2"), ("k2", "2")])
    assert out == [("k1", "0-1"), ("k2", "0-1"), ("k1", "0-1-1"), ("k2", "0-1-1"),
                   ("k1", "0-1-1+2"), ("k2", "0-1-1+2"), ("k1", "0-1-1+2+2"), ("k2", "0-1-1+2+2")]


def test_one_store_for_every_input_and_rekeyed_inputs_are_repartitioned():
    topo = Topology("cgr")
    clicks = source_stream(topo, "clicks", "str", "json", None, None)
    views = source_stream(topo, "views", "str", "json", None, None)
    per_user = (clicks.group_by_key()
                .cogroup(lambda a, c: {**a, "clicks": a["clicks"] + 1})
                .cogroup(views.select_key(lambda _k, v: v["user"]).group_by_key(),
                         lambda a, v: {**a, "views": a["views"] + 1})
                .aggregate("activity", lambda: {"clicks": 0, "views": 0}))
    assert list(topo.tables) == ["activity"]
    assert "cgr-activity-1-repartition" in topo.sources
    assert "cgr-activity-0-repartition" not in topo.sources
    with TopologyTestDriver(topo, partitions=3, auto_commit=False) as driver:
        driver.pipe("clicks", "u1", {})
        driver.pipe("views", "v1", {"user": "u1"})
        driver.pipe("views", "v2", {"user": "u2"})
        driver.commit()
        driver.pipe("clicks", "u2", {})
        driver.restart(crash=True, lose_outputs=True)
        driver.pipe("clicks", "u1", {})
        assert driver.table(per_user.name) == {"u1": {"clicks": 2, "views": 1},
                                              "u2": {"clicks": 1, "views": 1}}


def test_a_grouped_stream_is_cogrouped_once():
    topo = Topology("cg1")
    g = source_stream(topo, "one", "str", "str", None, None).group_by_key()
    with pytest.raises(TopologyError):
        g.cogroup(lambda a, v: a).cogroup(g, lambda a, v: a)


def windowed(windows, emit="update", merge=None):
    """Input `one` appends its values in lower case, `two` in upper case, to one
    aggregate per key and window."""
    topo = Topology("cgw")
    one = source_stream(topo, "one", "str", "str", None, None).group_by_key()
    two = source_stream(topo, "two", "str", "str", None, None).group_by_key()
    table = (one.cogroup(lambda a, v: a + v.lower()).cogroup(two, lambda a, v: a + v.upper())
             .windowed_by(windows).aggregate("agg", "", merge=merge, emit=emit, to="out"))
    return topo, table


def test_a_windowed_cogroup_folds_every_input_into_one_window_per_key():
    topo, table = windowed(Tumbling(size_ms=10, grace_ms=5))
    assert list(topo.tables) == ["agg"]
    with TopologyTestDriver(topo) as driver:
        driver.pipe("one", "k", "a", 0)
        driver.pipe("two", "k", "b", 3)
        driver.pipe("one", "k", "c", 5)
        driver.pipe("two", "k", "d", 12)
        assert [(r.key, r.value, r.timestamp) for r in driver.read_output("out")] == [
            (WindowedKey("k", 0, 10), "a", 0), (WindowedKey("k", 0, 10), "aB", 3),
            (WindowedKey("k", 0, 10), "aBc", 5), (WindowedKey("k", 10, 20), "D", 12)]
        assert driver.table(table.name) == {WindowedKey("k", 0, 10): "aBc",
                                            WindowedKey("k", 10, 20): "D"}


def test_the_inputs_share_stream_time_and_grace():
    topo, _ = windowed(Tumbling(size_ms=10, grace_ms=5), emit="final")
    with TopologyTestDriver(topo) as driver:
        driver.pipe("one", "k", "a", 0)
        driver.pipe("two", "k", "b", 3)
        assert driver.read_output("out") == []
        driver.pipe("two", "x", "c", 15)  # the other input's time closes [0, 10) at 10 + 5
        assert [(r.key, r.value) for r in driver.read_output("out")] == [
            (WindowedKey("k", 0, 10), "aB")]
        driver.pipe("one", "k", "e", 4)   # too late for either input
        assert driver.late_records == 1
        assert len(driver.output(driver.late_events_topic)) == 1


def test_sessions_of_a_windowed_cogroup_merge_across_inputs():
    topo, table = windowed(Session(gap_ms=5, grace_ms=100), merge=lambda x, y: x + y)
    with TopologyTestDriver(topo) as driver:
        driver.pipe("one", "k", "a", 0)
        driver.pipe("two", "k", "b", 10)
        driver.pipe("one", "k", "c", 5)   # within 5 of both: one session [0, 10]
        assert driver.table(table.name) == {WindowedKey("k", 0, 10): "aBc"}


def test_a_windowed_cogroup_is_exact_after_a_crash():
    topo, table = windowed(Hopping(size_ms=10, advance_ms=5, grace_ms=100))
    with TopologyTestDriver(topo, auto_commit=False) as driver:
        driver.pipe("one", "k", "a", 1)
        driver.pipe("two", "k", "b", 6)
        driver.commit()
        driver.pipe("one", "k", "c", 7)
        driver.pipe("two", "k", "d", 8)
        driver.restart(crash=True)   # c and d are processed again, from both inputs
        assert driver.table(table.name) == {WindowedKey("k", 0, 10): "aBcD",
                                            WindowedKey("k", 5, 15): "BcD"}


def test_a_cogroup_is_not_windowed_by_sliding_windows():
    topo = Topology("cgs")
    g = source_stream(topo, "one", "str", "str", None, None).group_by_key()
    with pytest.raises(TopologyError, match="Tumbling, Hopping or Session"):
        g.cogroup(lambda a, v: a).windowed_by(Sliding(difference_ms=5, grace_ms=0))
