"""Session windows through the test driver: sessions grow, merge when a record bridges
them, accept out-of-order records within grace, and close at end + gap + grace."""
from __future__ import annotations


import orjson
import pytest

import streamkit
from streamkit import Session, Settings, WindowedKey
from streamkit.testing import TopologyTestDriver

GAP = 10_000


def visits_app(emit: str, grace_ms: int = 5_000):
    """Per user session, the pages visited (a list), on the event time in "ts"."""
    app = streamkit.App("visits", settings=Settings.from_env({}))
    (app.source("views", timestamp=lambda v: v["ts"]).group_by_key()
        .windowed_by(Session(gap_ms=GAP, grace_ms=grace_ms))
        .aggregate("sessions", initial=list, add=lambda pages, v: pages + [v["page"]],
                   merge=lambda a, b: a + b, emit=emit, to="sessions-out"))
    return app


def view(driver, user, ts, page):
    driver.pipe("views", user, {"ts": ts, "page": page}, timestamp_ms=ts)


def out(driver):
    return [(r.key, r.value) for r in driver.read_output("sessions-out")]


@pytest.fixture
def final():
    with TopologyTestDriver(visits_app("final")) as d:
        yield d


def test_records_within_the_gap_extend_one_session(final):
    view(final, "u1", 1_000, "a")
    view(final, "u1", 11_000, "b")  # exactly gap_ms later: same session
    view(final, "u1", 21_001, "c")  # more than gap_ms after the last: a new session
    assert final.table("sessions") == {WindowedKey("u1", 1_000, 11_000): ["a", "b"],
                                       WindowedKey("u1", 21_001, 21_001): ["c"]}


def test_a_record_bridging_two_sessions_merges_them():
    with TopologyTestDriver(visits_app("update", grace_ms=20_000)) as driver:
        view(driver, "u1", 0, "a")
        view(driver, "u1", 18_000, "c")
        assert len(driver.table("sessions")) == 2
        view(driver, "u1", 9_000, "b")  # within the gap of both
        assert driver.table("sessions") == {WindowedKey("u1", 0, 18_000): ["a", "c", "b"]}
        assert out(driver)[-3:] == [(WindowedKey("u1", 0, 0), None),
                                    (WindowedKey("u1", 18_000, 18_000), None),
                                    (WindowedKey("u1", 0, 18_000), ["a", "c", "b"])]


def test_out_of_order_record_within_grace_joins_its_session(final):
    view(final, "u1", 10_000, "a")
    view(final, "u2", 14_000, "x")  # stream time 14 s
    view(final, "u1", 9_500, "b")  # 4.5 s behind stream time, grace 5 s
    assert final.table("sessions")[WindowedKey("u1", 9_500, 10_000)] == ["a", "b"]
    assert final.late_records == 0


def test_a_record_inside_an_open_session_is_taken_however_old(final):
    view(final, "u1", 0, "a")
    view(final, "u1", 10_000, "b")   # one session [0, 10 s], open until 25 s
    view(final, "u2", 20_000, "x")   # stream time 20 s
    view(final, "u1", 5_000, "c")    # 15 s behind stream time, inside the session
    assert final.table("sessions")[WindowedKey("u1", 0, 10_000)] == ["a", "b", "c"]
    assert final.late_records == 0


def test_record_whose_session_would_be_closed_is_late(final):
    view(final, "u1", 10_000, "a")
    view(final, "u2", 30_000, "x")  # closes [10 s, 10 s] (10 + 10 + 5 < 30)
    view(final, "u1", 14_000, "b")  # its own session would close at 14 + 10 + 5 s
    assert WindowedKey("u1", 14_000, 14_000) not in final.table("sessions")
    late = final.read_output(final.late_events_topic)
    assert [orjson.loads(r.value)["page"] for r in late] == ["b"]
    assert late[0].headers["streamkit.lateness_ms"] == b"16000"


def test_a_late_session_record_is_logged_with_the_session_it_would_have_made(final, late_log):
    view(final, "u1", 10_000, "a")
    view(final, "u2", 30_000, "x")
    view(final, "u1", 14_000, "b")
    [line] = [r.getMessage() for r in late_log.records
              if r.getMessage().startswith("late record dropped")]
    assert line == ("late record dropped: table=sessions topic=views partition=0 offset=2 "
                    "timestamp=14000 event_time=14000 stream_time=30000 lateness_ms=16000 "
                    "windows=[[14000,14000]]")


def test_a_record_inside_a_session_replaces_it_with_a_tombstone_first():
    with TopologyTestDriver(visits_app("update")) as driver:
        view(driver, "u1", 0, "a")
        view(driver, "u1", 4_000, "b")
        view(driver, "u1", 2_000, "c")   # inside [0, 4 s]: same bounds, still replaced
        assert [(r.key, r.value, r.timestamp) for r in driver.read_output("sessions-out")] == [
            (WindowedKey("u1", 0, 0), ["a"], 0),
            (WindowedKey("u1", 0, 0), None, 0),
            (WindowedKey("u1", 0, 4_000), ["a", "b"], 4_000),
            (WindowedKey("u1", 0, 4_000), None, 4_000),
            (WindowedKey("u1", 0, 4_000), ["a", "b", "c"], 4_000)]


def test_final_session_is_emitted_when_stream_time_passes_end_plus_gap_plus_grace(final):
    view(final, "u1", 1_000, "a")
    view(final, "u1", 2_000, "b")
    view(final, "u2", 17_000, "x")  # 2,000 + 10,000 + 5,000: not past yet
    assert out(final) == []
    view(final, "u2", 17_001, "y")
    assert out(final) == [(WindowedKey("u1", 1_000, 2_000), ["a", "b"])]


def test_sessions_expire_after_a_restart_from_rocksdb_state(final):
    view(final, "u1", 1_000, "a")
    view(final, "u2", 5_000, "x")
    final.restart()
    assert final.stream_time("sessions") == 5_000
    view(final, "u3", 40_000, "z")
    assert sorted(out(final)) == [(WindowedKey("u1", 1_000, 1_000), ["a"]),
                                  (WindowedKey("u2", 5_000, 5_000), ["x"])]
    assert final.table("sessions") == {WindowedKey("u3", 40_000, 40_000): ["z"]}


def test_session_merged_before_a_torn_commit_is_neither_split_nor_double_counted():
    with TopologyTestDriver(visits_app("final"), auto_commit=False) as driver:
        view(driver, "u1", 0, "a")
        view(driver, "u1", 8_000, "b")
        driver.commit()
        view(driver, "u1", 20_000, "c")  # a second session
        view(driver, "u1", 15_000, "d")  # bridges the two
        for torn in (0.25, 0.5, 0.75):  # half the commit reached the changelog, or more
            driver.restart(crash=True, torn=torn)
        view(driver, "u2", 60_000, "z")
        assert out(driver) == [(WindowedKey("u1", 0, 20_000), ["a", "b", "c", "d"])]


def test_closed_sessions_are_deleted_from_the_store_with_their_index_entries(final):
    view(final, "u1", 1_000, "a")
    view(final, "u1", 2_000, "b")      # session [1 s, 2 s]
    view(final, "u2", 3_000, "x")      # session [3 s, 3 s]
    view(final, "u2", 17_001, "y")     # past 2 s + gap + grace: [1 s, 2 s] closes
    assert out(final) == [(WindowedKey("u1", 1_000, 2_000), ["a", "b"])]
    view(final, "u3", 18_001, "z")     # closes [3 s, 3 s]; the commit deletes [1 s, 2 s]
    view(final, "u3", 18_002, "z")     # the next commit deletes [3 s, 3 s]
    store = final.tasks[(0, 0)].stores["sessions"]
    assert not store.dirty
    entries = sorted((store.keys.decode(kb) for kb, _ in store.raw_items()), key=repr)
    # Left: the open sessions, each with its index entry ("x", close, key, start, end)
    # where close is the first stream time past end + gap + grace; and the stream time.
    close = lambda end: end + GAP + 5_000 + 1  # noqa: E731
    assert entries == sorted([
        ("u2", 17_001, 17_001), ("x", close(17_001), "u2", 17_001, 17_001),
        ("u3", 18_001, 18_002), ("x", close(18_002), "u3", 18_001, 18_002), ("t",)], key=repr)


@pytest.mark.parametrize("torn", [0.5, 1.0])
def test_a_late_record_replayed_after_a_torn_commit_stays_out_of_the_later_session(torn):
    # Session(gap 2, grace 0): a at 3; a at 0 is late (its own session [0, 0] closes at
    # stream time 0 + 2 + 0 + 1 = 3); a at 1 joins [3, 3] into [1, 3]. The commit is cut
    # short after keeping [1, 3]: the replayed record at 0 finds that later session within
    # its gap, but [1, 3] never took it, so it is late again.
    app = streamkit.App("replay", settings=Settings.from_env({}))
    (app.source("views", timestamp=lambda v: v["ts"]).group_by_key()
        .windowed_by(Session(gap_ms=2, grace_ms=0))
        .aggregate("sessions", initial=list, add=lambda pages, v: pages + [v["page"]],
                   merge=lambda a, b: a + b, to="sessions-out"))
    with TopologyTestDriver(app, auto_commit=False) as driver:
        for ts in (3, 0, 1):
            view(driver, "a", ts, f"p{ts}")
        driver.restart(crash=True, torn=torn)
        assert driver.table("sessions") == {WindowedKey("a", 1, 3): ["p3", "p1"]}
        last = {}
        for rec in driver.output("sessions-out"):
            last[rec.key] = rec.value
        assert last[WindowedKey("a", 1, 3)] == ["p3", "p1"]
        late = {int(r.headers["streamkit.offset"]) for r in driver.output(driver.late_events_topic)}
        assert late == {1}
