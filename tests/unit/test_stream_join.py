"""The stream-stream windowed join through the test driver: inner, left and outer joins in
order, out of order within grace, late past grace, retention, null results only once a
window has closed, restarts and crashes; and property tests against a brute-force oracle."""
from __future__ import annotations

import os
import random
from contextlib import contextmanager

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamkit
from streamkit import JoinWindows, Settings
from streamkit.dsl import source_stream
from streamkit.errors import TopologyError
from streamkit.joins import windowed
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver
from tests.oracles import kafka_partition

W = JoinWindows(before_ms=10, after_ms=10, grace_ms=5)


def join_app(how: str = "inner", windows: JoinWindows = W, app_id: str = "sj"):
    """left.join_window(right) keyed by user; the result is [left id, right id]."""
    app = streamkit.App(app_id, settings=Settings.from_env({}))
    left = app.source("left", timestamp=lambda v: v["ts"])
    right = app.source("right", timestamp=lambda v: v["ts"])
    left.join_window(right, windows, lambda lv, rv: [lv and lv["id"], rv and rv["id"]],
                     how=how, name="j").to("joined")
    return app


def join_topology(how: str, windows: JoinWindows, semantics: str = "streamkit") -> Topology:
    """join_app's topology without an App (cheaper, for the property tests)."""
    topo = Topology("prop")
    left = source_stream(topo, "left", "str", "json", lambda v: v["ts"], None)
    right = source_stream(topo, "right", "str", "json", lambda v: v["ts"], None)
    left.join_window(right, windows, lambda lv, rv: [lv and lv["id"], rv and rv["id"]],
                     how=how, name="j", semantics=semantics).to("joined")
    return topo


def send(driver, side: str, key: str, ts: int, ident) -> None:
    driver.pipe(side, key, {"ts": ts, "id": ident}, timestamp_ms=ts)


def joined(driver) -> list[tuple]:
    return [(r.key, tuple(r.value), r.timestamp) for r in driver.read_output("joined")]


def buffered(driver, side: str, partition: int = 0) -> list[tuple]:
    """(key, ts) of the records in one input's buffer, in RocksDB (committed)."""
    store = next(t.stores[f"j-{side}"] for (_g, p), t in driver.tasks.items() if p == partition)
    return sorted(store.keys.decode(kb)[1:3] for kb, _ in store.raw_items(prefix=b"r"))


# --------------------------------------------------------------------------- inner

def test_inner_join_pairs_records_of_the_same_key_within_the_window_at_the_later_time():
    with TopologyTestDriver(join_app()) as d:
        send(d, "left", "a", 100, "l1")
        assert joined(d) == []
        send(d, "right", "a", 105, "r1")
        send(d, "right", "a", 111, "r2")  # 11 ms after l1: outside [90, 110]
        send(d, "right", "b", 110, "r3")  # another key
        assert joined(d) == [("a", ("l1", "r1"), 105)]
        send(d, "left", "a", 115, "l2")   # [105, 125]: r1 and r2
        assert joined(d) == [("a", ("l2", "r1"), 115), ("a", ("l2", "r2"), 115)]
        assert d.late_records == 0


def test_window_bounds_are_inclusive_and_may_be_asymmetric():
    app = join_app(windows=JoinWindows(before_ms=5, after_ms=10, grace_ms=0))
    with TopologyTestDriver(app) as d:
        for ts in (94, 95, 110, 111):
            send(d, "right", "a", ts, f"r{ts}")
        send(d, "left", "a", 100, "l")  # right records in [95, 110]
        assert joined(d) == [("a", ("l", "r95"), 100), ("a", ("l", "r110"), 110)]
        send(d, "right", "a", 111, "r111b")  # 111 > 100 + 10
        send(d, "left", "a", 116, "l116")    # [111, 126]
        assert [v for _k, v, _t in joined(d)] == [("l116", "r111"), ("l116", "r111b")]


def test_negative_bound_gives_a_window_entirely_after_the_left_record():
    app = join_app(windows=JoinWindows(before_ms=-5, after_ms=10, grace_ms=0))
    with TopologyTestDriver(app) as d:
        send(d, "left", "a", 100, "l")
        for ts in (99, 104, 105, 110, 111):
            send(d, "right", "a", ts, f"r{ts}")
        assert [v for _k, v, _t in joined(d)] == [("l", "r105"), ("l", "r110")]


def test_out_of_order_records_within_grace_join_correctly():
    app = join_app(windows=JoinWindows(before_ms=10, after_ms=10, grace_ms=25))
    with TopologyTestDriver(app) as d:
        send(d, "left", "a", 100, "l1")
        send(d, "right", "a", 130, "r1")  # no match: [90, 110]
        send(d, "right", "a", 108, "r2")  # 22 ms behind the right stream time, grace 25
        send(d, "left", "a", 98, "l2")    # 2 ms behind the left stream time: [88, 108]
        assert [v for _k, v, _t in joined(d)] == [("l1", "r2"), ("l2", "r2")]
        assert d.late_records == 0


def test_each_input_is_judged_against_its_own_stream_time():
    with TopologyTestDriver(join_app()) as d:
        send(d, "right", "a", 1_000, "r1")  # the right input is far ahead
        send(d, "right", "a", 103, "r-late")  # late on the right: 897 ms behind
        send(d, "left", "a", 100, "l1")     # the first left record is not late
        send(d, "right", "b", 2_000, "r2")
        send(d, "left", "a", 96, "l2")      # 4 ms behind the left stream time: on time
        assert d.late_records == 1
        assert [orjson.loads(r.value)["id"] for r in d.read_output(d.late_events_topic)] == ["r-late"]
        assert joined(d) == []


# --------------------------------------------------------------------------- late records

def test_record_past_grace_goes_to_late_events_with_headers_and_joins_nothing():
    with TopologyTestDriver(join_app()) as d:
        send(d, "left", "a", 100, "l1")
        send(d, "right", "a", 130, "r1")
        send(d, "right", "a", 105, "r-late")  # 25 ms behind the right stream time, grace 5
        assert joined(d) == []
        [rec] = d.read_output(d.late_events_topic)
        assert d.late_records == 1
        assert (rec.key, orjson.loads(rec.value)) == (b"a", {"ts": 105, "id": "r-late"})
        h = rec.headers
        assert h["streamkit.table"] == b"j-right"
        assert h["streamkit.lateness_ms"] == b"25"
        assert orjson.loads(h["streamkit.windows"]) == [[95, 115]]  # the left times it missed
        assert (h["streamkit.topic"], h["streamkit.offset"]) == (b"right", b"1")
        assert buffered(d, "right") == [("a", 130)]


def test_a_late_left_record_is_reported_and_not_buffered():
    with TopologyTestDriver(join_app("left")) as d:
        send(d, "left", "a", 100, "l1")
        send(d, "left", "a", 94, "l-late")  # 6 ms behind, grace 5
        assert d.late_records == 1
        assert buffered(d, "left") == [("a", 100)]
        send(d, "right", "b", 1_000, "r")  # closes l1's window: only l1 gets a null result
        assert joined(d) == [("a", ("l1", None), 100)]


# --------------------------------------------------------------------------- left and outer

def test_left_join_emits_a_non_matched_record_only_once_its_window_has_closed():
    with TopologyTestDriver(join_app("left")) as d:
        send(d, "left", "a", 100, "l1")       # closes when the right stream time > 115
        send(d, "left", "a", 200, "l2")
        send(d, "right", "b", 110, "rb1")
        send(d, "right", "b", 115, "rb2")
        assert joined(d) == []                # a right record at 110 could still join l1
        send(d, "right", "a", 205, "r1")      # closes l1, then joins l2 (Kafka's order)
        assert joined(d) == [("a", ("l1", None), 100), ("a", ("l2", "r1"), 205)]
        send(d, "right", "b", 10_000, "rb3")  # closes l2: it joined, so no null result
        assert joined(d) == []


def test_left_join_does_not_emit_a_null_for_a_record_matched_late_within_grace():
    with TopologyTestDriver(join_app("left")) as d:
        send(d, "left", "a", 100, "l1")
        send(d, "right", "b", 114, "rb")  # l1's window [90, 110] has ended, grace runs
        send(d, "right", "a", 109, "r1")  # out of order, within grace: joins
        send(d, "right", "b", 1_000, "rb2")
        assert [v for _k, v, _t in joined(d)] == [("l1", "r1")]


def test_left_join_right_records_never_get_null_results():
    with TopologyTestDriver(join_app("left")) as d:
        send(d, "right", "a", 100, "r1")
        send(d, "left", "b", 10_000, "lb")
        send(d, "right", "c", 20_000, "rc")
        assert joined(d) == [("b", ("lb", None), 10_000)]


def test_outer_join_emits_non_matched_records_of_both_sides_once_closed():
    with TopologyTestDriver(join_app("outer")) as d:
        send(d, "left", "a", 100, "l1")
        send(d, "right", "b", 100, "r1")
        send(d, "left", "c", 100, "l2")
        send(d, "right", "c", 104, "r2")
        assert joined(d) == [("c", ("l2", "r2"), 104)]
        send(d, "left", "z", 115, "lz")   # left stream time 115: r1 closes at > 100 + 10 + 5
        send(d, "right", "z", 115, "rz")  # joins lz; l1 still open
        assert joined(d) == [("z", ("lz", "rz"), 115)]
        send(d, "left", "y", 116, "ly")
        assert joined(d) == [("b", (None, "r1"), 100)]
        send(d, "right", "y", 116, "ry")  # right stream time 116 closes l1; joins ly
        assert joined(d) == [("a", ("l1", None), 100), ("y", ("ly", "ry"), 116)]


def test_a_record_whose_window_closed_before_it_arrived_is_settled_at_once():
    with TopologyTestDriver(join_app("left")) as d:
        send(d, "right", "a", 105, "r1")
        send(d, "right", "b", 1_000, "rb")  # the right input is far ahead
        send(d, "left", "a", 100, "l1")     # joins r1 (still buffered), not buffered itself
        send(d, "left", "c", 101, "l2")     # joins nothing: its null result is final now
        assert joined(d) == [("a", ("l1", "r1"), 105), ("c", ("l2", None), 101)]
        assert buffered(d, "left") == []


# --------------------------------------------------------------------------- retention

def test_records_with_null_results_leave_once_the_other_stream_time_passes_their_window():
    with TopologyTestDriver(join_app("outer")) as d:
        send(d, "left", "a", 100, "l1")       # needed until the right stream time > 115
        send(d, "right", "a", 100, "r1")      # needed until the left stream time > 115
        assert buffered(d, "left") == [("a", 100)]
        send(d, "right", "b", 115, "rb")
        send(d, "left", "b", 115, "lb")
        assert buffered(d, "left") == [("a", 100), ("b", 115)]
        assert buffered(d, "right") == [("a", 100), ("b", 115)]
        send(d, "right", "c", 116, "rc")      # closes l1: deleted in the next commit period
        send(d, "left", "c", 116, "lc")       # closes r1; deletes l1
        assert buffered(d, "left") == [("b", 115), ("c", 116)]
        send(d, "left", "d", 117, "ld")
        assert buffered(d, "right") == [("b", 115), ("c", 116)]
        assert [v for _k, v, _t in joined(d)] == [("l1", "r1"), ("lb", "rb"), ("lc", "rc")]


def test_records_without_null_results_leave_in_sweeps_one_changelog_entry_and_one_deletion_each():
    # Inner join: neither input has non-matched results, so neither buffer keeps an expiry
    # index. A record (closed 16 ms past its time, as above) goes in the first sweep at
    # the start of a commit period once the oldest buffered record has been closed for
    # 1 s of stream time: both buffers' oldest record is at 100, so until 100 + 16 + 1000.
    with TopologyTestDriver(join_app()) as d:
        send(d, "left", "a", 100, "l1")
        send(d, "right", "a", 100, "r1")
        send(d, "right", "b", 200, "rb")      # closes l1, which stays until the sweep
        send(d, "left", "b", 200, "lb")       # closes r1
        assert buffered(d, "left") == [("a", 100), ("b", 200)]
        assert buffered(d, "right") == [("a", 100), ("b", 200)]
        send(d, "right", "c", 1_115, "rc")    # the right stream time one short
        send(d, "left", "c", 1_115, "lc")     # a period starts for the left buffer: no sweep
        assert buffered(d, "left") == [("a", 100), ("b", 200), ("c", 1_115)]
        send(d, "right", "d", 1_116, "rd")
        send(d, "left", "d", 1_116, "ld")     # its period starts at 1116: l1 and lb go
        assert buffered(d, "left") == [("c", 1_115), ("d", 1_116)]
        assert buffered(d, "right") == [("a", 100), ("b", 200), ("c", 1_115), ("d", 1_116)]
        send(d, "right", "e", 1_117, "re")    # the right buffer's period starts at 1116
        assert buffered(d, "right") == [("c", 1_115), ("d", 1_116), ("e", 1_117)]
        assert [v for _k, v, _t in joined(d)] == [
            ("l1", "r1"), ("lb", "rb"), ("lc", "rc"), ("ld", "rd")]
        # Each left record reached the changelog once, and l1 and lb once more as
        # deletions; nothing else but the stream time.
        codec = next(iter(d.tasks.values())).stores["j-left"].keys
        entries = [codec.decode(r.key) for r in d.output("sj-j-left-changelog")]
        records = [e[1:3] for e in entries if e[0] == "r"]
        assert sorted(records) == [("a", 100), ("a", 100), ("b", 200), ("b", 200),
                                   ("c", 1_115), ("d", 1_116)]
        assert {e[0] for e in entries} == {"r", "t"}


def test_a_sweep_deletes_exactly_the_records_whose_window_has_closed():
    # Without the extra delay (MIN_SWEEP_MS 0) the left buffer sweeps once its oldest
    # record (100) has been closed for its close_after (16): at right stream time 132.
    with sweeping_after(0), TopologyTestDriver(join_app()) as d:
        send(d, "left", "a", 100, "la")
        send(d, "left", "b", 116, "lb")       # closes at 132
        send(d, "left", "c", 117, "lc")       # closes at 133
        send(d, "right", "x", 132, "rx")
        send(d, "left", "d", 132, "ld")       # the left buffer's period starts at 132
        assert buffered(d, "left") == [("c", 117), ("d", 132)]
        send(d, "right", "c", 127, "rc")      # 5 ms behind, not late: joins lc
        assert [v for _k, v, _t in joined(d)] == [("lc", "rc")]


def held(driver, side: str) -> dict | None:
    """The records a swept buffer holds in memory: key -> their times (None: none held)."""
    state = next(iter(driver.tasks.values())).operator_state[f"j-{side}"]
    if state.held is None:
        return None
    assert state.held.count == sum(len(entries) for entries in state.held.keys.values())
    return {k: [e[0] for e in entries] for k, entries in state.held.keys.items()}


def test_a_buffer_holds_its_records_in_memory_up_to_a_bound_and_again_after_a_sweep():
    with sweeping_after(0, held=2), TopologyTestDriver(join_app()) as d:
        send(d, "left", "a", 100, "la")
        send(d, "left", "b", 116, "lb")
        assert held(d, "left") == {"a": [100], "b": [116]}
        send(d, "left", "c", 117, "lc")       # a third record: past the bound
        assert held(d, "left") is None
        send(d, "right", "x", 132, "rx")
        send(d, "left", "d", 132, "ld")       # the sweep leaves lc: held again
        assert buffered(d, "left") == [("c", 117), ("d", 132)]
        assert held(d, "left") == {"c": [117], "d": [132]}
        send(d, "right", "c", 127, "rc")      # found among the held records
        send(d, "right", "d", 130, "rd")
        assert [v for _k, v, _t in joined(d)] == [("lc", "rc"), ("ld", "rd")]


def test_records_buffered_before_the_bound_was_passed_are_found_before_the_next_commit():
    # Past the bound, the buffer's reads go to RocksDB and to what this commit period has
    # not written yet: the records it held must be among the latter.
    with sweeping_after(0, held=2), TopologyTestDriver(join_app(), auto_commit=False) as d:
        send(d, "left", "a", 100, "la")
        send(d, "left", "b", 101, "lb")
        # Held records are in the write-back cache encoded; the driver's view decodes them.
        assert sorted((k[1], k[2], v.value[1]["id"]) for k, v in d.table("j-left").items()
                      if k[0] == "r") == [("a", 100, "la"), ("b", 101, "lb")]
        send(d, "left", "a", 102, "la2")      # past the bound: nothing held any more
        assert held(d, "left") is None
        send(d, "right", "a", 105, "ra")
        send(d, "right", "b", 106, "rb")
        d.commit()
        assert sorted(v for _k, v, _t in joined(d)) == [("la", "ra"), ("la2", "ra"),
                                                        ("lb", "rb")]


def test_a_buffer_writes_a_source_records_own_bytes_and_encodes_a_derived_value():
    # The left input is the source as decoded: its buffer's changelog entry carries the
    # record's value bytes as they came (spacing and key order kept), after the tag and
    # the joined flag. The right input is mapped first: its entry is the mapped value's
    # JSON. Both sides still join, and again after a restart from the buffers.
    app = streamkit.App("sj", settings=Settings.from_env({}))
    left = app.source("left", timestamp=lambda v: v["ts"])
    right = app.source("right", timestamp=lambda v: v["ts"]).map_values(
        lambda v: {**v, "mapped": True})
    left.join_window(right, W, lambda lv, rv: [lv["id"], rv["id"], rv["mapped"]],
                     how="inner", name="j").to("joined")
    raw = b'{ "ts": 100,   "id": "la" }'
    with TopologyTestDriver(app) as d:
        d.pipe_raw("left", b"a", raw, 100)
        d.pipe("right", "a", {"ts": 104, "id": "ra"}, timestamp_ms=104)
        entries = {side: [r.value for r in d.output(f"sj-j-{side}-changelog")
                          if r.key[:1] == b"r"] for side in ("left", "right")}
        # b"r": a buffered record; then 0 (had not joined) or 1 (joined when buffered)
        assert entries["left"] == [b"r\x00" + raw]
        assert len(entries["right"]) == 1 and entries["right"][0][:2] == b"r\x01"
        assert orjson.loads(entries["right"][0][2:]) == {"ts": 104, "id": "ra", "mapped": True}
        d.restart()
        d.pipe("right", "a", {"ts": 106, "id": "rb"}, timestamp_ms=106)
        d.pipe_raw("left", b"a", b'{"id": "lb", "ts": 108}', 108)
        assert [v for _k, v, _t in joined(d)] == [("la", "ra", True), ("la", "rb", True),
                                                  ("lb", "ra", True), ("lb", "rb", True)]


def test_a_buffer_encodes_the_value_when_another_operation_of_the_source_sees_it_first():
    # A sibling declared before the join changes the value in place: the record's bytes no
    # longer stand for the value the join gets, so the buffer encodes that value, and a
    # restart joins with it too.
    app = streamkit.App("sj", settings=Settings.from_env({}))
    left = app.source("left", timestamp=lambda v: v["ts"])
    left.peek(lambda _k, v: v.pop("secret"))
    right = app.source("right", timestamp=lambda v: v["ts"])
    left.join_window(right, W, lambda lv, rv: sorted(lv) + [rv["id"]],
                     how="inner", name="j").to("joined")
    with TopologyTestDriver(app) as d:
        d.pipe("left", "a", {"ts": 100, "id": "la", "secret": "s"}, timestamp_ms=100)
        entries = [r.value for r in d.output("sj-j-left-changelog") if r.key[:1] == b"r"]
        assert len(entries) == 1 and entries[0][:2] == b"r\x00"
        assert orjson.loads(entries[0][2:]) == {"ts": 100, "id": "la"}
        d.restart()
        d.pipe("right", "a", {"ts": 104, "id": "ra"}, timestamp_ms=104)
        assert [v for _k, v, _t in joined(d)] == [("id", "ts", "ra")]


def test_held_records_take_a_record_that_comes_again_once():
    # A record replayed after a crash may already be held (a sweep took it from the store,
    # where a commit before the crash put it): it replaces itself, in time order.
    held = windowed.HeldRecords()
    for entry in [(100, "t", 1, "a", b"k1"), (105, "t", 2, "b", b"k2"),
                  (100, "t", 1, "a again", b"k1"), (105, "t", 2, "b", b"k2"),
                  (103, "u", 0, "c", b"k3"), (103, "t", 7, "d", b"k4")]:
        held.add("x", entry)
    assert held.count == 4
    assert [e[:4] for e in held.between("x", 0, 200)] == [
        (100, "t", 1, "a again"), (103, "t", 7, "d"), (103, "u", 0, "c"), (105, "t", 2, "b")]
    assert [e[:4] for e in held.between("x", 101, 104)] == [(103, "t", 7, "d"), (103, "u", 0, "c")]


def test_the_buffers_are_internal_tables_of_one_sub_topology():
    topo = join_app().topology
    topo.finalize()
    left, right = topo.tables["j-left"], topo.tables["j-right"]
    assert not left.exposed and not right.exposed
    assert left.changelog == "sj-j-left-changelog" and right.changelog == "sj-j-right-changelog"
    assert topo.group_of_topic("left") == topo.group_of_topic("right")
    assert {t.name for t in topo.tables_of_group(topo.group_of_topic("left"))} == {"j-left", "j-right"}


# --------------------------------------------------------------------------- restarts

def test_buffers_and_stream_times_survive_a_restart():
    with TopologyTestDriver(join_app("left")) as d:
        send(d, "left", "a", 100, "l1")
        send(d, "right", "b", 200, "rb")  # closes l1
        send(d, "left", "a", 300, "l2")
        d.restart()
        assert joined(d) == [("a", ("l1", None), 100)]
        send(d, "right", "a", 305, "r1")
        send(d, "right", "a", 250, "r-late")  # the right stream time 305 came back
        assert joined(d) == [("a", ("l2", "r1"), 305)]
        assert d.late_records == 1


def test_a_crash_before_a_commit_replays_the_records_and_repeats_only_what_was_emitted():
    with TopologyTestDriver(join_app("outer"), auto_commit=False) as d:
        send(d, "left", "a", 100, "l1")
        d.commit()
        send(d, "right", "a", 105, "r1")
        send(d, "left", "b", 200, "lb")   # closes r1 (joined: no null)
        send(d, "right", "c", 300, "rc")  # closes l1 (joined) and lb: (lb, None)
        before = joined(d)
        assert before == [("a", ("l1", "r1"), 105), ("b", ("lb", None), 200)]
        d.restart(crash=True, torn=0.5, lose_outputs=True)
        assert joined(d) == before
        send(d, "left", "d", 1_000, "ld")  # closes rc: (None, rc)
        assert joined(d) == [("c", (None, "rc"), 300)]


# --------------------------------------------------------------------------- partitions and checks

def test_each_partition_has_its_own_stream_times():
    keys = {}
    for i in range(100):
        keys.setdefault(kafka_partition(f"k{i}".encode(), 2), f"k{i}")
    k0, k1 = keys[0], keys[1]
    with TopologyTestDriver(join_app("left"), partitions=2) as d:
        send(d, "left", k0, 100, "l0")
        send(d, "right", k1, 10_000, "r1")  # partition 1 only: l0 stays open
        send(d, "left", k1, 9_000, "l1")    # closed on arrival on partition 1
        assert joined(d) == [(k1, ("l1", None), 9_000)]
        send(d, "right", k0, 200, "r0")
        assert joined(d) == [(k0, ("l0", None), 100)]


def test_inputs_with_different_partition_counts_are_rejected_at_start_up():
    with pytest.raises(TopologyError, match="same number of partitions"):
        TopologyTestDriver(join_app(), partitions={"left": 2, "right": 3})


def test_a_record_without_a_key_goes_to_dead_letters():
    with TopologyTestDriver(join_app("left"), on_error="continue") as d:
        d.pipe("left", None, {"ts": 1, "id": "x"}, timestamp_ms=1)
        [dead] = d.read_output(d.dead_letter_topic)
        assert b"needs a record key" in dead.headers["streamkit.error"]


@pytest.mark.parametrize("args, error", [
    ((10, 10), TypeError),                  # grace is required
    ((10, 10, -1), ValueError),
    ((10, 10, 1.5), TypeError),
    ((10.0, 10, 0), TypeError),
    ((True, 10, 0), TypeError),
    ((-11, 10, 0), ValueError),             # the window [t + 11, t + 10] is empty
])
def test_join_windows_reject_impossible_arguments(args, error):
    with pytest.raises(error):
        JoinWindows(*args)


def test_join_windows_are_frozen_and_symmetric_with_of():
    w = JoinWindows.of(5_000, grace_ms=1_000)
    assert (w.before_ms, w.after_ms, w.grace_ms, w.retention_ms) == (5_000, 5_000, 1_000, 11_000)
    assert JoinWindows(-5, 5, 0).before_ms == -5
    with pytest.raises(AttributeError):
        w.grace_ms = 0  # type: ignore[misc]


def test_join_window_declaration_errors():
    app = streamkit.App("bad", settings=Settings.from_env({}))
    left, right = app.source("left"), app.source("right")
    joiner = lambda lv, rv: lv  # noqa: E731
    with pytest.raises(ValueError, match="how must be"):
        left.join_window(right, W, joiner, how="full", name="j")
    with pytest.raises(TopologyError, match="JoinWindows"):
        left.join_window(right, streamkit.Tumbling(10, 0), joiner, name="j")
    with pytest.raises(TopologyError, match="same key serde"):
        left.join_window(app.source("ints", keys="int"), W, joiner, name="j")
    with pytest.raises(TopologyError, match="semantics must be one of"):
        left.join_window(right, W, joiner, name="j", semantics="flink")
    left.join_window(right, W, joiner, name="j")
    with pytest.raises(TopologyError, match="already exists"):
        left.join_window(right, W, joiner, name="j")


def test_kafka_semantics_add_a_store_for_waiting_null_results_in_left_and_outer_joins():
    for how, stores in (("inner", {"j-left", "j-right"}),
                        ("left", {"j-left", "j-right", "j-outer"})):
        topo = join_topology(how, W, "kafka")
        topo.finalize()
        assert {t.name for t in topo.tables.values()} == stores
        assert not topo.tables["j-left"].exposed


# --------------------------------------------------------------------------- properties

# STREAM_JOIN_PROPERTY_EXAMPLES=2000 for a deeper search than the suite's default.
SETTINGS = settings(max_examples=int(os.environ.get("STREAM_JOIN_PROPERTY_EXAMPLES", "20")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BIG = 10 ** 9
CLOSERS = [("left", "~left", BIG, -1), ("right", "~right", BIG, -2)]


@st.composite
def windows(draw) -> JoinWindows:
    before = draw(st.integers(-5, 15))
    after = draw(st.integers(max(-before, -5), 15))
    return JoinWindows(before, after, draw(st.integers(0, 15)))


@st.composite
def inputs(draw, max_size: int = 30) -> list[tuple[str, str, int, int]]:
    """(side, key, event time, id) in arrival order: each input's time moves forward with
    jitter behind, the two inputs drifting apart by up to 40 ms."""
    n = draw(st.integers(1, max_size))
    clocks = {"left": 0, "right": draw(st.integers(0, 40))}
    out = []
    for i in range(n):
        side = draw(st.sampled_from(["left", "right"]))
        clocks[side] += draw(st.integers(0, 6))
        ts = max(0, clocks[side] - draw(st.integers(0, 25)))
        out.append((side, draw(st.sampled_from("abc")), ts, i))
    return out


def oracle(w: JoinWindows, how: str, evs):
    """{(left id, right id): (arrival index of its emission, timestamp)} and the late ids,
    by definition: each input's stream time is the largest time of its records so far; a
    record more than grace behind its own input's is late; a record's window closes when
    the other input's stream time reaches its end + grace + 1."""
    stream_time = {"left": None, "right": None}
    after_each, kept, late = [], [], set()
    for i, (side, key, ts, ident) in enumerate(evs):
        t = stream_time[side]
        if t is not None and ts + w.grace_ms < t:
            late.add(ident)
        else:
            stream_time[side] = ts if t is None else max(t, ts)
            kept.append((side, key, ts, ident, i))
        after_each.append(dict(stream_time))
    lefts = [r for r in kept if r[0] == "left"]
    rights = [r for r in kept if r[0] == "right"]
    out, matched = {}, set()
    for _, lk, lt, lid, li in lefts:
        for _, rk, rt, rid, ri in rights:
            if lk == rk and lt - w.before_ms <= rt <= lt + w.after_ms:
                out[(lid, rid)] = (max(li, ri), max(lt, rt))
                matched |= {("left", lid), ("right", rid)}

    def closing(rec, other: str, hi: int):
        need = rec[2] + hi + w.grace_ms + 1
        for j in range(rec[4], len(evs)):
            t = after_each[j][other]
            if t is not None and t >= need:
                return j
        return "end"

    if how in ("left", "outer"):
        for rec in lefts:
            if ("left", rec[3]) not in matched:
                out[(rec[3], None)] = (closing(rec, "right", w.after_ms), rec[2])
    if how == "outer":
        for rec in rights:
            if ("right", rec[3]) not in matched:
                out[(None, rec[3])] = (closing(rec, "left", w.before_ms), rec[2])
    return out, late


# How long swept buffers (inputs without non-matched results) keep closed records: 0
# sweeps at every commit period that can (the most deletions, the earliest), 1000 ms (the
# default) never within these inputs' times. And how many records such a buffer holds in
# memory: none (RocksDB scans only), 2 (dropped and taken again from the store as the
# buffer grows and is swept), the default (all of these inputs).
sweeps = st.tuples(st.sampled_from([0, 3, windowed.MIN_SWEEP_MS]),
                   st.sampled_from([0, 2, windowed.HELD_RECORDS]))


@contextmanager
def sweeping_after(ms: int, held: int = windowed.HELD_RECORDS):
    default = windowed.MIN_SWEEP_MS, windowed.HELD_RECORDS
    windowed.MIN_SWEEP_MS, windowed.HELD_RECORDS = ms, held
    try:
        yield
    finally:
        windowed.MIN_SWEEP_MS, windowed.HELD_RECORDS = default


def late_ids(driver) -> set:
    """Ids reported late, de-duplicated by their source topic and offset."""
    seen = {}
    for rec in driver.output(driver.late_events_topic):
        seen[(rec.headers["streamkit.topic"], rec.headers["streamkit.offset"])] = \
            orjson.loads(rec.value)["id"]
    return set(seen.values())


def _real(result) -> bool:
    return all(i is None or i >= 0 for i in result)  # not a closer


@SETTINGS
@given(w=windows(), how=st.sampled_from(["inner", "left", "outer"]), evs=inputs(),
       sweep=sweeps)
def test_results_match_the_oracle_once_each_and_when_they_are_due(w, how, evs, sweep):
    want, late = oracle(w, how, evs)
    got = {}
    with sweeping_after(*sweep), TopologyTestDriver(join_topology(how, w)) as d:
        for i, (side, key, ts, ident) in enumerate(evs):
            send(d, side, key, ts, ident)
            for _k, v, t in joined(d):
                assert v not in got, f"{v} emitted twice"
                got[v] = (i, t)
        for side, key, ts, ident in CLOSERS:
            send(d, side, key, ts, ident)
        for _k, v, t in joined(d):
            assert v not in got, f"{v} emitted twice"
            got[v] = ("end", t)
        assert late_ids(d) == late
        assert d.late_records == len(late)
    assert {v: when for v, when in got.items() if _real(v)} == want


@SETTINGS
@given(w=windows(), how=st.sampled_from(["inner", "left", "outer"]), evs=inputs(),
       seed=st.integers(0, 2 ** 32), sweep=sweeps)
def test_results_do_not_depend_on_how_the_two_inputs_interleave(w, how, evs, seed, sweep):
    # A worker reads each topic partition in order, but the two topics in whatever
    # batches it fetched (and differently after a restart).
    sides = {s: [e for e in evs if e[0] == s] for s in ("left", "right")}
    order = [e[0] for e in evs]
    random.Random(seed).shuffle(order)
    shuffled = [sides[s].pop(0) for s in order]
    want, late = oracle(w, how, evs)
    with sweeping_after(*sweep), TopologyTestDriver(join_topology(how, w)) as d:
        for side, key, ts, ident in shuffled + CLOSERS:
            send(d, side, key, ts, ident)
        got = {v for _k, v, _t in joined(d) if _real(v)}
        assert late_ids(d) == late
    assert got == set(want)


# A crash after about one record in four: (torn fraction, outputs lost).
crash = st.one_of(st.none(), st.none(), st.none(),
                  st.tuples(st.sampled_from([None, 0.0, 0.3, 0.6, 1.0]), st.booleans()))
# After a record: no commit, a commit, or the state made durable without the input offsets
# (a worker's prompt commit for a ?wait_for= read): a crash replays the records since.
commits = st.sampled_from([None, "offsets", "state"])


@settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples * 3 // 5))  # restarts cost
@given(w=windows(), how=st.sampled_from(["inner", "left", "outer"]), data=st.data(),
       sweep=sweeps)
def test_crashes_lose_nothing_and_invent_nothing_after_deduplication(w, how, data, sweep):
    evs = data.draw(inputs(max_size=25))
    plan = data.draw(st.lists(st.tuples(commits, crash), min_size=len(evs),
                              max_size=len(evs)))
    want, late = oracle(w, how, evs)
    with sweeping_after(*sweep), TopologyTestDriver(join_topology(how, w), auto_commit=False) as d:
        for (side, key, ts, ident), (commit, crashed) in zip(evs, plan):
            send(d, side, key, ts, ident)
            if commit is not None:
                d.commit(offsets=commit == "offsets")
            if crashed is not None:
                d.restart(crash=True, torn=crashed[0], lose_outputs=crashed[1])
        for side, key, ts, ident in CLOSERS:
            send(d, side, key, ts, ident)
        got = {tuple(r.value) for r in d.output("joined")}
        assert late_ids(d) == late
    assert {v for v in got if _real(v)} == set(want)


# --------------------------------------------------------------------------- Kafka semantics

def kafka_oracle(w: JoinWindows, how: str, evs) -> list[tuple]:
    """The records Kafka Streams' KStreamKStreamJoin emits, in order, written from its
    definition: one stream time for both inputs; each input buffers a record while it is
    within before + after + grace of that input's own largest time; a record joins what the
    other input buffers in its window (bounds clamped at 0); a non-matched record of an
    emitting side is settled at once if its window ended before the stream time, otherwise
    waits until the stream time passes its window end + grace (unless joined first), and
    waiting results are emitted, oldest first, right before left, then by key, before the
    joins of a record that is not out of order."""
    retention = w.before_ms + w.after_ms + w.grace_ms
    bounds = {"left": (-w.before_ms, w.after_ms), "right": (-w.after_ms, w.before_ms)}
    emits = {"left": how in ("left", "outer"), "right": how == "outer"}
    own_time: dict[str, int | None] = {"left": None, "right": None}
    shared: int | None = None
    buffered: dict[str, list] = {"left": [], "right": []}
    waiting: list[tuple] = []  # (ts, side, key, id)
    out = []

    def pair(side, mine, theirs):
        return (mine, theirs) if side == "left" else (theirs, mine)

    for side, key, ts, ident in evs:
        other = "right" if side == "left" else "left"
        before = shared
        shared = ts if shared is None else max(shared, ts)
        own_time[side] = ts if own_time[side] is None else max(own_time[side], ts)
        if before is None or ts >= before:
            due = [e for e in waiting if shared > e[0] + bounds[e[1]][1] + w.grace_ms]
            due.sort(key=lambda e: (e[0], e[1] == "left", e[2]))
            for e in due:
                waiting.remove(e)
                out.append((e[2], pair(e[1], e[3], None), e[0]))
        lo, hi = bounds[side]
        start, end = max(0, ts + lo), max(0, ts + hi)
        visible = own_time[other] - retention + 1 if own_time[other] is not None else start
        matches = sorted((r for r in buffered[other]
                          if r[0] == key and start <= r[1] <= end and r[1] >= visible),
                         key=lambda r: r[1])
        for _k, t, oid in matches:
            out.append((key, pair(side, ident, oid), max(ts, t)))
            waiting[:] = [e for e in waiting if (e[0], e[1], e[2]) != (t, other, key)]
        if not matches and emits[side]:
            if end < shared:
                out.append((key, pair(side, ident, None), ts))
            else:
                waiting.append((ts, side, key, ident))
        if ts + retention > own_time[side]:
            buffered[side].append((key, ts, ident))
    return out


@SETTINGS
@given(w=windows(), how=st.sampled_from(["inner", "left", "outer"]), evs=inputs())
def test_kafka_semantics_emit_kafka_streams_records_in_kafka_streams_order(w, how, evs):
    with TopologyTestDriver(join_topology(how, w, "kafka")) as d:
        for side, key, ts, ident in evs:
            send(d, side, key, ts, ident)
        got = [(k, v, t) for k, v, t in joined(d)]
    assert got == kafka_oracle(w, how, evs)
