"""Windowed reads for the query layer: one window of a key, a key's windows in a range."""
from __future__ import annotations

import streamkit
from streamkit import Settings, Tumbling
from tests.oracles import kafka_partition
from streamkit.testing import TopologyTestDriver
from streamkit.windows import WindowRow, fetch_window, fetch_windows


def app():
    a = streamkit.App("reads", settings=Settings.from_env({}))
    (a.source("events", timestamp=lambda e: e["ts"]).group_by_key()
       .windowed_by(Tumbling(size_ms=10, grace_ms=1_000)).count("per-10ms"))
    return a


def store_of(driver, key: str):
    """The store that holds key's windows: the partition of its record key alone."""
    p = kafka_partition(key.encode(), driver.partitions["events"])
    return driver.tasks[(0, p)].stores["per-10ms"]


def test_one_window_and_a_time_range_of_a_key_are_read_from_its_partition():
    with TopologyTestDriver(app(), partitions=2) as driver:
        for ts in (1, 2, 15, 31, 33, 35):
            driver.pipe("events", "k", {"ts": ts})
        driver.pipe("events", "k2", {"ts": 12})
        store = store_of(driver, "k")
        assert fetch_window(store, "k", 30) == 3
        assert fetch_window(store, "k", 20) is None
        assert fetch_windows(store, "k", 10, 30) == [WindowRow(10, 20, 1), WindowRow(30, 40, 3)]
        assert fetch_windows(store, "k") == [WindowRow(0, 10, 2), WindowRow(10, 20, 1),
                                             WindowRow(30, 40, 3)]
        assert fetch_windows(store_of(driver, "k2"), "k2") == [WindowRow(10, 20, 1)]


def test_reads_see_uncommitted_updates_unless_asked_for_committed_ones():
    with TopologyTestDriver(app(), auto_commit=False) as driver:
        driver.pipe("events", "k", {"ts": 1})
        driver.commit()
        driver.pipe("events", "k", {"ts": 2})
        driver.pipe("events", "k", {"ts": 12})
        store = store_of(driver, "k")
        assert fetch_windows(store, "k") == [WindowRow(0, 10, 2), WindowRow(10, 20, 1)]
        assert fetch_windows(store, "k", committed=True) == [WindowRow(0, 10, 1)]


def test_closed_windows_are_not_returned():
    with TopologyTestDriver(app()) as driver:
        driver.pipe("events", "k", {"ts": 1})
        driver.pipe("events", "k", {"ts": 5_000})  # closes [0, 10)
        assert fetch_windows(store_of(driver, "k"), "k") == [WindowRow(5_000, 5_010, 1)]
