"""Sliding windows through the test driver: a window per distinct set of records at
most difference_ms apart, out-of-order records, lateness, buffered-record expiry."""
from __future__ import annotations

import pytest

import streamkit
from streamkit import Settings, Sliding, WindowedKey
from streamkit.testing import TopologyTestDriver

D = 10


def readings_app(emit: str = "update", grace_ms: int = 5):
    """Per sensor, the readings within D ms of each other (a sorted list)."""
    app = streamkit.App("sensors", settings=Settings.from_env({}))
    (app.source("readings", timestamp=lambda r: r["ts"]).group_by_key()
        .windowed_by(Sliding(difference_ms=D, grace_ms=grace_ms))
        .aggregate("close-readings", initial=list, add=lambda acc, r: sorted(acc + [r["v"]]),
                   emit=emit, to="close-readings-out"))
    return app


def reading(driver, sensor, ts, v):
    driver.pipe("readings", sensor, {"ts": ts, "v": v}, timestamp_ms=ts)


@pytest.fixture
def driver():
    with TopologyTestDriver(readings_app(grace_ms=100)) as d:  # nothing closes early
        yield d


def test_each_record_opens_its_window_and_the_window_after_its_predecessor(driver):
    reading(driver, "s", 0, 1)
    reading(driver, "s", 5, 2)
    reading(driver, "s", 12, 3)
    assert driver.table("close-readings") == {
        WindowedKey("s", -10, 0): [1],
        WindowedKey("s", -5, 5): [1, 2],
        WindowedKey("s", 1, 11): [2],  # right after 0, filled by 5
        WindowedKey("s", 2, 12): [2, 3],
        WindowedKey("s", 6, 16): [3],  # right after 5, filled by 12
    }


def test_out_of_order_record_within_grace_updates_and_creates_the_right_windows(driver):
    reading(driver, "s", 0, 1)
    reading(driver, "s", 12, 3)
    reading(driver, "s", 8, 2)  # 4 ms behind stream time, grace 5 ms
    assert driver.table("close-readings") == {
        WindowedKey("s", -10, 0): [1],
        WindowedKey("s", 1, 11): [2],  # right after 0: created by 8
        WindowedKey("s", 2, 12): [2, 3],
        WindowedKey("s", -2, 8): [1, 2],
        WindowedKey("s", 9, 19): [3],  # right after 8, filled by 12
    }


def test_record_more_than_grace_behind_stream_time_is_late():
    with TopologyTestDriver(readings_app(grace_ms=5)) as driver:
        reading(driver, "s", 20, 1)
        reading(driver, "s", 14, 9)  # 6 ms behind
        assert driver.late_records == 1
        assert driver.table("close-readings") == {WindowedKey("s", 10, 20): [1]}


def test_final_window_is_emitted_when_stream_time_passes_end_plus_grace():
    with TopologyTestDriver(readings_app("final")) as driver:
        reading(driver, "s", 0, 1)
        reading(driver, "s", 5, 2)
        reading(driver, "t", 10, 0)  # [-5, 5] closes after 5 + 5: not yet
        assert [(r.key, r.value) for r in driver.read_output("close-readings-out")] == [
            (WindowedKey("s", -10, 0), [1])]
        reading(driver, "t", 11, 0)
        assert [(r.key, r.value) for r in driver.read_output("close-readings-out")] == [
            (WindowedKey("s", -5, 5), [1, 2])]


def test_buffered_records_are_dropped_once_no_window_can_use_them():
    with TopologyTestDriver(readings_app(grace_ms=5)) as driver:
        reading(driver, "s", 0, 1)
        reading(driver, "s", 15, 2)  # 0 + 10 + 5 = 15: record 0 may still join a window
        store = driver.tasks[(0, 0)].stores["close-readings"]
        assert _buffered(store) == [0, 15]
        reading(driver, "s", 16, 3)  # now it cannot
        assert _buffered(store) == [15, 16]


def _buffered(store):
    return sorted(store.keys.decode(kb)[2] for kb, _ in store.raw_items(prefix=b"r"))
