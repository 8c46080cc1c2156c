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
        WindowedKey("s", 0, 10): [1, 2],  # records earlier than D share [0, D]
        WindowedKey("s", 1, 11): [2],     # right after 0, filled by 5
        WindowedKey("s", 2, 12): [2, 3],
        WindowedKey("s", 6, 16): [3],     # right after 5, filled by 12
    }


def test_out_of_order_record_within_grace_updates_and_creates_the_right_windows(driver):
    reading(driver, "s", 0, 1)
    reading(driver, "s", 12, 3)
    reading(driver, "s", 8, 2)  # 4 ms behind stream time
    assert driver.table("close-readings") == {
        WindowedKey("s", 0, 10): [1, 2],
        WindowedKey("s", 1, 11): [2],     # right after 0: created by 8
        WindowedKey("s", 2, 12): [2, 3],
        WindowedKey("s", 9, 19): [3],     # right after 8, filled by 12
    }


def test_a_record_whose_own_window_closed_is_late_but_joins_its_open_windows():
    with TopologyTestDriver(readings_app(grace_ms=5)) as driver:
        reading(driver, "s", 20, 1)
        reading(driver, "s", 14, 9)  # [4, 14] closed (14 < 20 - 5); [10, 20] is open
        assert driver.late_records == 1
        [late] = driver.read_output(driver.late_events_topic)
        assert late.headers["streamkit.windows"] == b"[[4,14]]"
        assert driver.table("close-readings") == {WindowedKey("s", 10, 20): [1, 9],
                                                  WindowedKey("s", 15, 25): [1]}
        reading(driver, "s", 4, 7)   # every window that could hold it is closed
        assert driver.late_records == 2
        assert driver.table("close-readings") == {WindowedKey("s", 10, 20): [1, 9],
                                                  WindowedKey("s", 15, 25): [1]}


def test_final_window_is_emitted_when_stream_time_passes_end_plus_grace():
    with TopologyTestDriver(readings_app("final")) as driver:
        reading(driver, "s", 0, 1)
        reading(driver, "s", 5, 2)
        reading(driver, "t", 15, 0)  # [0, 10] closes after 10 + 5: not yet
        assert driver.read_output("close-readings-out") == []
        reading(driver, "t", 16, 0)
        [result] = driver.read_output("close-readings-out")
        # stamped with the largest event time in the window, as in Kafka Streams
        assert (result.key, result.value, result.timestamp) == (WindowedKey("s", 0, 10), [1, 2], 5)


def test_buffered_records_are_dropped_once_no_window_can_use_them():
    with TopologyTestDriver(readings_app(grace_ms=5)) as driver:
        reading(driver, "s", 0, 1)
        reading(driver, "s", 16, 2)  # [1, 11], right after 0, is open until 0 + 1 + 10 + 5
        store = driver.tasks[(0, 0)].stores["close-readings"]
        assert _buffered(store) == [0, 16]
        reading(driver, "s", 17, 3)  # now it is not
        assert _buffered(store) == [16, 17]


def _buffered(store):
    return sorted(store.keys.decode(kb)[2] for kb, _ in store.raw_items(prefix=b"r"))
