"""Table.suppress through the test driver: Kafka Streams' SuppressScenarioTest cases for a
time limit and a record limit as data, and the buffer and stream time across restarts."""
from __future__ import annotations

import pytest

from streamkit.dsl import table_from_topic
from streamkit.errors import SuppressBufferFull, TopologyError
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver


def value_counts(limit_ms: int, max_records: int | None = None) -> Topology:
    """SuppressScenarioTest's topology: input re-grouped by value and counted; the counts
    raw and suppressed."""
    topo = Topology("sup")
    counts = (table_from_topic(topo, "input", "input", "str", "str")
              .group_by(lambda k, v: (v, k), "by-value").count("value-counts"))
    counts.suppress(limit_ms, name="held", max_records=max_records).to_stream().to(
        "output-suppressed")
    counts.to_stream().to("output-raw")
    return topo


def drain(driver, topic):
    return [(r.key, r.value, r.timestamp) for r in driver.read_output(topic)]


def test_a_time_limit_gives_kafka_streams_records():
    # SuppressScenarioTest.shouldSuppressIntermediateEventsWithTimeLimit
    with TopologyTestDriver(value_counts(2)) as driver:
        driver.pipe("input", "k1", "v1", 0)
        driver.pipe("input", "k1", "v2", 1)
        driver.pipe("input", "k2", "v1", 2)
        assert drain(driver, "output-raw") == [
            ("v1", 1, 0), ("v1", 0, 1), ("v2", 1, 1), ("v1", 1, 2)]
        assert drain(driver, "output-suppressed") == [("v1", 1, 2)]
        driver.pipe("input", "tick", "tick", 3)  # a record that only moves stream time
        assert drain(driver, "output-raw") == [("tick", 1, 3)]
        assert drain(driver, "output-suppressed") == [("v2", 1, 1)]
        driver.pipe("input", "tick", "tock", 4)
        assert drain(driver, "output-raw") == [("tick", 0, 4), ("tock", 1, 4)]
        # tick waits since time 3, and it is only time 4.
        assert drain(driver, "output-suppressed") == []


def test_a_record_limit_gives_kafka_streams_records():
    # SuppressScenarioTest.shouldSuppressIntermediateEventsWithRecordLimit
    with TopologyTestDriver(value_counts(2 ** 62, max_records=1)) as driver:
        driver.pipe("input", "k1", "v1", 0)
        driver.pipe("input", "k1", "v2", 1)
        driver.pipe("input", "k2", "v1", 2)
        assert drain(driver, "output-raw") == [
            ("v1", 1, 0), ("v1", 0, 1), ("v2", 1, 1), ("v1", 1, 2)]
        # Consecutive updates of v1 come out as the latter; the last waits for another key.
        assert drain(driver, "output-suppressed") == [("v1", 0, 1), ("v2", 1, 1)]
        driver.pipe("input", "x", "x", 3)
        assert drain(driver, "output-raw") == [("x", 1, 3)]
        assert drain(driver, "output-suppressed") == [("v1", 1, 2)]


@pytest.mark.parametrize("crash", [False, True])
def test_waiting_updates_and_stream_time_survive_a_restart(crash):
    topo = Topology("supr")
    (table_from_topic(topo, "t", "input", "str", "int")
     .suppress(10, name="held").to_stream().to("out"))
    with TopologyTestDriver(topo, auto_commit=False) as driver:
        driver.pipe("input", "a", 1, 0)
        driver.pipe("input", "b", 1, 5)
        driver.pipe("input", "a", 2, 8)   # replaces a's value, a still waits since 0
        driver.commit()
        driver.pipe("input", "c", 1, 9)   # lost with the crash, then processed again
        driver.restart(crash=crash)
        assert drain(driver, "out") == []
        driver.pipe("input", "b", 2, 3)   # stream time stays 9: nothing is due yet
        assert drain(driver, "out") == []
        driver.pipe("input", "d", 1, 15)  # stream time 15: a (0) and b (5) are due
        assert drain(driver, "out") == [("a", 2, 8), ("b", 2, 3)]
        driver.pipe("input", "e", 1, 19)  # c (9) is due
        assert drain(driver, "out") == [("c", 1, 9)]


def test_a_deletion_waits_like_an_update_and_the_limits_are_checked():
    topo = Topology("supd")
    (table_from_topic(topo, "t", "input", "str", "int")
     .suppress(0, name="held").to_stream().to("out"))
    with TopologyTestDriver(topo) as driver:
        driver.pipe("input", "a", 1, 0)
        driver.pipe("input", "a", None, 1)
        assert drain(driver, "out") == [("a", 1, 0), ("a", None, 1)]
    table = table_from_topic(Topology("bad"), "t", "input", "str", "int")
    with pytest.raises(TopologyError):
        table.suppress(-1, name="x")
    with pytest.raises(TopologyError):
        table.suppress(5, name="y", max_records=0)


def held(limit_ms: int, **bounds) -> Topology:
    topo = Topology("supb")
    (table_from_topic(topo, "t", "input", "str", "str")
     .suppress(limit_ms, name="held", **bounds).to_stream().to("out"))
    return topo


@pytest.mark.parametrize("restart", [False, True])
def test_past_max_bytes_the_oldest_waiting_updates_go_on_early(restart):
    # A 1000-character value and its entry take a little over 1000 bytes, a 1-character
    # one a few dozen: 1500 bytes hold one large entry and some small ones, not two large.
    big = "x" * 1000
    with TopologyTestDriver(held(10 ** 9, max_bytes=1500)) as driver:
        driver.pipe("input", "a", big, 0)
        driver.pipe("input", "b", "y", 1)
        assert drain(driver, "out") == []
        driver.pipe("input", "c", big, 2)       # two large entries: the oldest, a, goes on
        assert drain(driver, "out") == [("a", big, 0)]
        driver.pipe("input", "d", "w", 3)
        assert drain(driver, "out") == []
        if restart:  # the sizes of the waiting entries are read again from the table
            driver.restart()
        driver.pipe("input", "b", big, 4)       # b grows: b, waiting since 1, is the oldest
        assert drain(driver, "out") == [("b", big, 4)]
        driver.pipe("input", "e", big, 5)       # c (2) goes; d stays, small
        assert drain(driver, "out") == [("c", big, 2)]


def test_shut_down_when_full_raises_once_the_due_updates_have_gone_on():
    with TopologyTestDriver(held(10, max_records=2, shut_down_when_full=True),
                            on_error="continue") as driver:
        driver.pipe("input", "a", "1", 0)
        driver.pipe("input", "b", "1", 5)
        # Stream time 20: a and b are due and go on first, so c alone waits.
        driver.pipe("input", "c", "1", 20)
        assert drain(driver, "out") == [("a", "1", 0), ("b", "1", 5)]
        driver.pipe("input", "d", "1", 21)
        # A third waiting key is past the bound: not a dead letter, an error that escapes
        # processing (the worker's STREAMKIT_ON_UNCAUGHT_ERROR decides).
        with pytest.raises(SuppressBufferFull, match="3 keys waiting"):
            driver.pipe("input", "e", "1", 22)
        assert driver.output(driver.dead_letter_topic) == []
        assert drain(driver, "out") == []
    with TopologyTestDriver(held(10 ** 9, max_bytes=100, shut_down_when_full=True)) as driver:
        with pytest.raises(SuppressBufferFull, match="bytes"):
            driver.pipe("input", "a", "x" * 200, 0)


def test_a_bound_is_needed_to_shut_down_when_full():
    table = table_from_topic(Topology("bad"), "t", "input", "str", "int")
    with pytest.raises(TopologyError, match="needs a bound"):
        table.suppress(5, name="x", shut_down_when_full=True)
    with pytest.raises(TopologyError):
        table.suppress(5, name="y", max_bytes=0)
