"""Tumbling and hopping windows, through the test driver: in order, out of order within
grace, late past grace, final results at the right stream time, expiry, restarts."""
from __future__ import annotations

import logging

import orjson
import pytest

import streamkit
from streamkit import Hopping, Settings, Tumbling, WindowedKey
from tests.oracles import kafka_partition
from streamkit.testing import TopologyTestDriver

MIN = 60_000


def clicks_app(windows=None, emit="final", app_id="clicks"):
    """Per user and minute, the sum of the clicks' "n", on the event time in "ts"."""
    app = streamkit.App(app_id, settings=Settings.from_env({}))
    (app.source("clicks", timestamp=lambda c: c["ts"]).group_by_key()
        .windowed_by(windows or Tumbling(size_ms=MIN, grace_ms=10_000))
        .aggregate("per-minute", initial=0, add=lambda total, c: total + c["n"], emit=emit,
                   to="per-minute-out"))
    return app


def click(driver, user, ts, n=1):
    driver.pipe("clicks", user, {"ts": ts, "n": n}, timestamp_ms=ts)


def finals(driver):
    return [(r.key, r.value) for r in driver.read_output("per-minute-out")]


@pytest.fixture
def driver():
    with TopologyTestDriver(clicks_app()) as d:
        yield d


def test_in_order_records_are_summed_per_key_and_window(driver):
    click(driver, "u1", 1_000, 2)
    click(driver, "u2", 2_000, 5)
    click(driver, "u1", 59_999, 3)
    click(driver, "u1", 60_000, 7)
    assert driver.table("per-minute") == {
        WindowedKey("u1", 0, MIN): 5, WindowedKey("u2", 0, MIN): 5,
        WindowedKey("u1", MIN, 2 * MIN): 7}


def test_final_result_is_emitted_once_when_stream_time_reaches_end_plus_grace(driver):
    click(driver, "u1", 10_000, 1)
    click(driver, "u1", 30_000, 1)
    click(driver, "u2", 69_999, 1)  # stream time 69,999: [0, 60000) still open
    assert finals(driver) == []
    click(driver, "u2", 70_000, 1)  # end + grace reached
    assert finals(driver) == [(WindowedKey("u1", 0, MIN), 2)]
    click(driver, "u2", 75_000, 1)
    assert finals(driver) == []


def test_out_of_order_record_within_grace_is_added_to_its_window(driver):
    click(driver, "u1", 50_000, 1)
    click(driver, "u1", 65_000, 1)  # stream time 65 s: [0, 60 s) ended but is in grace
    click(driver, "u1", 20_000, 4)
    assert driver.table("per-minute")[WindowedKey("u1", 0, MIN)] == 5
    click(driver, "u1", 70_000, 1)
    assert finals(driver) == [(WindowedKey("u1", 0, MIN), 5)]
    assert driver.read_output(driver.late_events_topic) == []


def test_record_past_grace_is_not_applied_and_goes_to_late_events_with_headers(driver):
    click(driver, "u1", 50_000, 1)
    click(driver, "u1", 71_000, 1)  # closes [0, 60 s)
    assert finals(driver) == [(WindowedKey("u1", 0, MIN), 1)]
    click(driver, "u1", 59_000, 100)
    assert finals(driver) == []
    assert WindowedKey("u1", 0, MIN) not in driver.table("per-minute")
    late = driver.read_output(driver.late_events_topic)
    assert len(late) == 1 and driver.late_records == 1
    rec = late[0]
    assert (rec.key, orjson.loads(rec.value)) == (b"u1", {"ts": 59_000, "n": 100})
    h = rec.headers
    assert h["streamkit.timestamp"] == b"59000"
    assert h["streamkit.lateness_ms"] == b"12000"  # stream time 71,000 - 59,000
    assert orjson.loads(h["streamkit.windows"]) == [[0, MIN]]
    assert h["streamkit.stream_time"] == b"71000"
    assert (h["streamkit.topic"], h["streamkit.partition"], h["streamkit.offset"]) == (
        b"clicks", b"0", b"2")
    assert h["streamkit.table"] == b"per-minute"


def test_a_late_record_is_logged_at_warning_with_every_field(driver, late_log):
    click(driver, "u1", 50_000, 1)
    click(driver, "u2", 71_000, 1)   # closes [0, 60 s)
    driver.pipe("clicks", "u1", {"ts": 59_000, "n": 100}, timestamp_ms=58_000)
    [line] = [r for r in late_log.records if r.getMessage().startswith("late record dropped")]
    assert line.levelno == logging.WARNING
    # timestamp is the Kafka record's (58 s), event_time the extractor's (59 s).
    assert line.getMessage() == (
        "late record dropped: table=per-minute topic=clicks partition=0 offset=2 "
        "timestamp=58000 event_time=59000 stream_time=71000 lateness_ms=12000 "
        "windows=[[0,60000]]")


def test_closed_windows_are_removed_from_the_store(driver):
    for ts in (1_000, 61_000, 121_000):
        click(driver, "u1", ts)
    click(driver, "u1", 200_000)  # closes the three windows
    click(driver, "u1", 200_001)  # the next commit period deletes them
    store = driver.tasks[(0, 0)].stores["per-minute"]
    kinds = sorted(kb[:1] for kb, _ in store.raw_items())
    # one open window [180 s, 240 s), its index entry, the stream time
    assert kinds == [b"t", b"w", b"x"]
    assert driver.table("per-minute") == {WindowedKey("u1", 3 * MIN, 4 * MIN): 2}


def test_stream_time_and_windows_survive_a_restart(driver):
    click(driver, "u1", 10_000, 3)
    click(driver, "u2", 65_000, 1)
    driver.restart()
    assert driver.stream_time("per-minute") == 65_000
    click(driver, "u1", 12_000, 4)  # still within grace after the restart
    click(driver, "u3", 66_000, 1)
    click(driver, "u3", 80_000, 1)  # closes [0, 60 s), known only from RocksDB
    assert finals(driver) == [(WindowedKey("u1", 0, MIN), 7)]
    click(driver, "u1", 1_000, 1)  # late against the restored stream time
    assert driver.late_records == 1


def test_a_window_closed_before_a_clean_restart_is_not_emitted_again(driver):
    click(driver, "u1", 10_000)
    click(driver, "u1", 75_000)
    assert finals(driver) == [(WindowedKey("u1", 0, MIN), 1)]
    driver.restart()
    click(driver, "u1", 76_000)
    assert finals(driver) == []


def test_crash_replay_neither_loses_nor_double_counts_a_window():
    with TopologyTestDriver(clicks_app(), auto_commit=False) as driver:
        click(driver, "u1", 1_000, 1)
        click(driver, "u1", 2_000, 2)
        driver.commit()
        click(driver, "u1", 3_000, 4)
        click(driver, "u1", 70_000, 8)  # closes [0, 60 s) = 7
        # the commit reached the changelog, not the input offsets: everything replays
        driver.restart(crash=True, torn=1.0)
        click(driver, "u1", 140_000, 16)
        emitted = finals(driver)
    assert set(emitted) == {(WindowedKey("u1", 0, MIN), 7), (WindowedKey("u1", MIN, 2 * MIN), 8)}
    assert emitted.count((WindowedKey("u1", 0, MIN), 7)) == 2  # re-emitted, same value


def test_a_crash_after_the_state_was_made_durable_without_the_offsets_reports_nothing_late():
    """A ?wait_for= read makes the state durable at once, the input offsets following at
    the next commit. Three such flushes, the window [0, 60 s) closed between the first and
    the second, then a crash: the records since the last commit of offsets are replayed
    against that commit's stream time, none is judged late against a later one, and the
    closed window is still there to tell a replayed record from a late one."""
    with TopologyTestDriver(clicks_app(), auto_commit=False) as driver:
        click(driver, "u1", 1_000, 1)
        driver.commit()
        click(driver, "u1", 2_000, 2)
        driver.commit(offsets=False)
        click(driver, "u1", 75_000, 4)  # closes [0, 60 s) = 3
        driver.commit(offsets=False)
        click(driver, "u1", 76_000, 8)
        driver.commit(offsets=False)
        click(driver, "u1", 77_000, 16)
        driver.restart(crash=True)  # and processes again the records from the one at 2 s
        click(driver, "u1", 140_000, 32)  # closes [60 s, 120 s)
        emitted = finals(driver)
        assert driver.output(driver.late_events_topic) == []
        assert driver.late_records == 0
    assert set(emitted) == {(WindowedKey("u1", 0, MIN), 3), (WindowedKey("u1", MIN, 2 * MIN), 28)}


def test_update_emission_sends_every_change_of_a_window():
    with TopologyTestDriver(clicks_app(emit="update")) as driver:
        click(driver, "u1", 1_000, 1)
        click(driver, "u1", 2_000, 2)
        click(driver, "u1", 90_000, 4)
        assert finals(driver) == [(WindowedKey("u1", 0, MIN), 1), (WindowedKey("u1", 0, MIN), 3),
                                  (WindowedKey("u1", MIN, 2 * MIN), 4)]


def test_output_key_is_json_key_start_end_in_the_partition_of_the_record_key():
    with TopologyTestDriver(clicks_app(), partitions=4) as driver:
        for user in ("u1", "u2", "u3", "u4", "u5"):
            click(driver, user, 1_000)
        driver.advance_stream_time(100_000)  # on every partition
        raw = {orjson.loads(r.key)["key"]: r for r in driver._order["per-minute-out"]}
    assert orjson.loads(raw["u1"].key) == {"key": "u1", "start": 0, "end": MIN}
    assert orjson.loads(raw["u1"].value) == 1
    assert {u: r.partition for u, r in raw.items()} == {
        u: kafka_partition(u.encode(), 4) for u in ("u1", "u2", "u3", "u4", "u5")}


def test_stream_time_is_per_partition():
    with TopologyTestDriver(clicks_app(), partitions=2) as driver:
        users = {}
        for i in range(20):  # one user on each partition
            users.setdefault(kafka_partition(f"u{i}".encode(), 2), f"u{i}")
        a, b = users[0], users[1]
        click(driver, a, 1_000)
        click(driver, b, 500_000)  # far ahead, but on the other partition
        assert finals(driver) == []
        assert driver.stream_time("per-minute", 0) == 1_000
        click(driver, a, 70_000)
        assert finals(driver) == [(WindowedKey(a, 0, MIN), 1)]


def test_hopping_record_is_added_to_every_window_that_contains_it():
    app = clicks_app(Hopping(size_ms=MIN, advance_ms=20_000, grace_ms=0), emit="update")
    with TopologyTestDriver(app) as driver:
        click(driver, "u1", 45_000, 1)
        assert driver.table("per-minute") == {
            WindowedKey("u1", 0, MIN): 1, WindowedKey("u1", 20_000, 80_000): 1,
            WindowedKey("u1", 40_000, 100_000): 1}


def test_hopping_record_missing_closed_windows_is_reported_and_kept_in_open_ones():
    app = clicks_app(Hopping(size_ms=MIN, advance_ms=20_000, grace_ms=0), emit="final")
    with TopologyTestDriver(app) as driver:
        click(driver, "u1", 61_000, 1)  # closes [0, 60 s)
        click(driver, "u1", 45_000, 10)  # [0, 60 s) closed; [20, 80) and [40, 100) open
        late = driver.read_output(driver.late_events_topic)
        assert [orjson.loads(r.headers["streamkit.windows"]) for r in late] == [[[0, MIN]]]
        assert driver.table("per-minute") == {
            WindowedKey("u1", 20_000, 80_000): 11, WindowedKey("u1", 40_000, 100_000): 11,
            WindowedKey("u1", MIN, 120_000): 1}


def test_record_without_a_key_goes_to_dead_letters():
    with TopologyTestDriver(clicks_app(), on_error="continue") as driver:
        driver.pipe("clicks", None, {"ts": 1, "n": 1})
        dead = driver.read_output(driver.dead_letter_topic)
        assert b"needs a record key" in dead[0].headers["streamkit.error"]


def test_windowed_count_after_group_by_lives_in_the_partition_of_the_new_key():
    app = streamkit.App("regroup", settings=Settings.from_env({}))
    (app.source("orders", timestamp=lambda o: o["ts"])
        .group_by(lambda o: o["customer"], name="by-customer")
        .windowed_by(Tumbling(size_ms=MIN, grace_ms=0)).count("orders-per-minute"))
    with TopologyTestDriver(app, partitions=4) as driver:
        for i in range(12):
            driver.pipe("orders", f"o{i}", {"customer": f"c{i % 3}", "ts": i * 1_000})
        holders = {}
        for p in range(4):
            store = driver.tasks[(1, p)].stores["orders-per-minute"]
            for kb, _ in store.raw_items(prefix=b"w"):
                holders[store.keys.decode(kb)] = p
        assert driver.table("orders-per-minute") == {
            WindowedKey(f"c{i}", 0, MIN): 4 for i in range(3)}
    assert holders == {(f"c{i}", 0, MIN): kafka_partition(f"c{i}".encode(), 4) for i in range(3)}


def stored(driver, table: str) -> list[tuple]:
    """Every entry of the table's store, decoded: read from RocksDB itself (after the
    commit), where driver.table() would hide closed windows."""
    store = driver.tasks[(0, 0)].stores[table]
    assert not store.dirty
    return sorted((store.keys.decode(kb) for kb, _ in store.raw_items()), key=repr)


def test_closed_hopping_windows_are_deleted_from_the_store_with_their_index_entries():
    app = clicks_app(Hopping(size_ms=MIN, advance_ms=20_000, grace_ms=0), emit="final")
    with TopologyTestDriver(app) as driver:
        click(driver, "u1", 45_000)      # in [0, 60 s), [20 s, 80 s), [40 s, 100 s)
        click(driver, "u1", 100_000)     # closes all three (stream time >= end + 0)
        assert len(finals(driver)) == 3
        click(driver, "u2", 100_001)     # the next commit deletes them
        # Left: the windows holding 100,000 and 100,001 (starts 60, 80 and 100 s), each
        # with its index entry ("x", close = end + grace, key, start, end), and stream time.
        open_windows = [(u, s, s + MIN) for u in ("u1", "u2") for s in (60_000, 80_000, 100_000)]
        assert stored(driver, "per-minute") == sorted(
            [("t",)] + [("x", end, u, s, end) for u, s, end in open_windows] + open_windows,
            key=repr)


def test_the_stream_time_is_the_last_changelog_entry_of_each_commit():
    # A changelog cut short keeps a prefix of a commit's entries: with the stream time last,
    # a stream time that survives was written with every entry before it.
    with TopologyTestDriver(clicks_app(), auto_commit=False) as d:
        codec = next(iter(d.tasks.values())).stores["per-minute"].keys
        for batch in ([("u1", 1_000), ("u2", 2_000), ("u3", 3_000)],
                      [("u4", 61_000), ("u1", 62_000), ("u5", 75_000)]):
            for user, ts in batch:
                click(d, user, ts)
            d.commit()
            entries = [codec.decode(r.key) for r in d.read_output("clicks-per-minute-changelog")]
            assert entries[-1] == ("t",) and ("t",) not in entries[:-1], entries
            assert len(entries) > 3
