"""Windowed aggregation against brute-force oracles on random out-of-order input, with
and without crashes (commits cut short, outputs lost), for every window kind."""
from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streamkit.dsl import source_stream
from streamkit.processing.topology import Topology
from streamkit.testing import TopologyTestDriver
from streamkit.windows import Hopping, Session, Sliding, Tumbling

BIG = 10 ** 9
# WINDOWS_PROPERTY_EXAMPLES=2000 for a deeper search than the suite's default.
SETTINGS = settings(max_examples=int(os.environ.get("WINDOWS_PROPERTY_EXAMPLES", "60")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Each example of the crash tests restarts the driver several times: half as many.
CRASH_SETTINGS = settings(SETTINGS, max_examples=max(1, SETTINGS.max_examples // 2))


# --------------------------------------------------------------------------- inputs

@st.composite
def events(draw, max_size: int = 30) -> list[tuple[str, int, int]]:
    """(key, event time, id) in arrival order: time moves forward with jitter behind."""
    n = draw(st.integers(1, max_size))
    out, clock = [], 0
    for i in range(n):
        clock += draw(st.integers(0, 6))
        behind = draw(st.integers(0, 30))
        out.append((draw(st.sampled_from("abc")), max(0, clock - behind), i))
    return out


specs = st.one_of(
    st.builds(Tumbling, size_ms=st.integers(1, 20), grace_ms=st.integers(0, 15)),
    st.integers(1, 20).flatmap(lambda size: st.builds(
        Hopping, size_ms=st.just(size), advance_ms=st.integers(1, size),
        grace_ms=st.integers(0, 15))),
    st.builds(Sliding, difference_ms=st.integers(1, 12), grace_ms=st.integers(0, 15)),
    st.builds(Session, gap_ms=st.integers(1, 10), grace_ms=st.integers(0, 15)),
)


# --------------------------------------------------------------------------- oracles
# Written from Kafka Streams' definitions (TimeWindows.windowsFor, SlidingWindows,
# SessionWindows, and the per-window lateness of its aggregations), by simulation: each
# record is applied to the windows that exist by definition and are still open.

def _time_windows(spec, ts: int) -> list[tuple[int, int]]:
    """TimeWindows.windowsFor: every [start, start + size) holding ts with start a
    multiple of the advance and never before 0."""
    advance = spec.size_ms if isinstance(spec, Tumbling) else spec.advance_ms
    return [(s, s + spec.size_ms) for s in range(0, ts + 1, advance) if s + spec.size_ms > ts]


def _close_time(spec, start: int, end: int) -> int:
    """The stream time at which a window closes: end + grace for [start, end) windows,
    one more for inclusive ends, and a session waits for its gap too."""
    if isinstance(spec, (Tumbling, Hopping)):
        return end + spec.grace_ms
    if isinstance(spec, Sliding):
        return end + spec.grace_ms + 1
    return end + spec.gap_ms + spec.grace_ms + 1


def _sliding_windows(d: int, times: list[int]) -> set[tuple[int, int]]:
    """SlidingWindows: each record's own window [t - d, t] ([0, d] before d), and the
    window [t + 1, t + 1 + d] right after a record when a later record falls in it."""
    out = set()
    for t in times:
        out.add((t - d, t) if t >= d else (0, d))
        if any(t < u <= t + 1 + d for u in times):
            out.add((t + 1, t + 1 + d))
    return out


class _Window:
    def __init__(self, ids: list) -> None:
        self.ids, self.closed = ids, False


def oracle(spec, evs):
    """(final ids per window, arrival index at which each closed, late ids): each record in
    arrival order updates the open windows that hold it; new windows start with every
    accepted record they hold."""
    grace, stream_time = spec.grace_ms, None
    kept: dict[str, list[tuple[int, int]]] = {}   # key -> accepted (ts, id), arrival order
    wins: dict[tuple, _Window] = {}               # (key, start, end) -> window
    late: set[int] = set()
    closed: dict[tuple, object] = {}

    def is_open(w) -> bool:
        return (w not in wins or not wins[w].closed) and \
            _close_time(spec, w[1], w[2]) > stream_time

    for i, (key, ts, ident) in enumerate(evs):
        previous = stream_time
        stream_time = ts if stream_time is None else max(stream_time, ts)
        if isinstance(spec, (Tumbling, Hopping)):
            for s, e in _time_windows(spec, ts):
                w = (key, s, e)
                if e + grace <= stream_time or (w in wins and wins[w].closed):
                    late.add(ident)
                else:
                    wins.setdefault(w, _Window([])).ids.append(ident)
        elif isinstance(spec, Sliding):
            d = spec.difference_ms
            own_end = ts if ts >= d else d
            if own_end < stream_time - grace:
                late.add(ident)
            if ts + d >= stream_time - grace:
                recs = kept.setdefault(key, [])
                holding = [w for w in wins if w[0] == key and w[1] <= ts <= w[2] and is_open(w)]
                new = [(key, s, e) for s, e in _sliding_windows(d, [t for t, _ in recs] + [ts])
                       if (key, s, e) not in wins and is_open((key, s, e))]
                # Kafka Streams knows a record only through the windows it reaches: one
                # that reaches none is left out of the windows created later.
                if holding or any(w[1] <= ts <= w[2] for w in new):
                    recs.append((ts, ident))
                for w in holding:
                    wins[w].ids.append(ident)
                for w in new:
                    wins[w] = _Window([j for t, j in recs if w[1] <= t <= w[2]])
        else:
            gap = spec.gap_ms
            # Sessions closed by the stream time before this record are not merged.
            near = sorted(w for w in wins if w[0] == key and not wins[w].closed
                          and (previous is None or _close_time(spec, w[1], w[2]) > previous)
                          and w[2] >= ts - gap and w[1] <= ts + gap)
            start = min([ts] + [w[1] for w in near])
            end = max([ts] + [w[2] for w in near])
            if _close_time(spec, start, end) <= stream_time:
                late.add(ident)
            else:
                ids = [j for w in near for j in wins.pop(w).ids] + [ident]
                wins[(key, start, end)] = _Window(ids)
        for w, win in wins.items():
            if not win.closed and _close_time(spec, w[1], w[2]) <= stream_time:
                win.closed, closed[w] = True, i
    final = {w: sorted(win.ids) for w, win in wins.items()}
    for w in final:
        closed.setdefault(w, "end")
    return final, closed, late


# --------------------------------------------------------------------------- the system

def topology(spec, emit: str) -> Topology:
    topo = Topology("prop")
    stream = source_stream(topo, "in", "str", "json", lambda v: v["ts"], None)
    merge = (lambda a, b: a + b) if isinstance(spec, Session) else None
    stream.group_by_key().windowed_by(spec).aggregate(
        "w", initial=list, add=lambda acc, v: acc + [v["id"]], merge=merge, emit=emit, to="out")
    return topo


def newest(evs, ids) -> int:
    """The largest event time of the records ids (an id is its arrival index)."""
    return max(evs[i][1] for i in ids)


def window_of(rec) -> tuple:
    return (rec.key.key, rec.key.start, rec.key.end)


def late_ids(driver) -> dict[int, int]:
    """id -> number of times reported, de-duplicated by source offset."""
    seen = {}
    for rec in driver.output(driver.late_events_topic):
        seen[int(rec.headers["streamkit.offset"])] = rec.value
    return seen


@SETTINGS
@given(spec=specs, evs=events())
def test_final_results_match_oracle_and_are_emitted_when_stream_time_closes_the_window(spec, evs):
    final, closed, late = oracle(spec, evs)
    got, when = {}, {}
    with TopologyTestDriver(topology(spec, "final")) as driver:
        for i, (key, ts, ident) in enumerate(evs):
            driver.pipe("in", key, {"ts": ts, "id": ident}, ts)
            for rec in driver.read_output("out"):
                assert window_of(rec) not in got, f"{window_of(rec)} emitted twice"
                assert rec.timestamp == newest(evs, rec.value)
                got[window_of(rec)], when[window_of(rec)] = sorted(rec.value), i
        driver.advance_stream_time(BIG)
        for rec in driver.read_output("out"):
            got[window_of(rec)], when[window_of(rec)] = sorted(rec.value), "end"
        reported = late_ids(driver)
        assert driver.late_records == len(reported)
        assert driver.table("w") == {}  # every window closed and removed
    assert got == final
    assert when == closed
    assert {evs[o][2] for o in reported} == late


@SETTINGS
@given(spec=specs, evs=events())
def test_update_emission_last_value_per_window_is_the_oracle_result(spec, evs):
    final, _closed, late = oracle(spec, evs)
    last: dict[tuple, list | None] = {}
    with TopologyTestDriver(topology(spec, "update")) as driver:
        for key, ts, ident in evs:
            driver.pipe("in", key, {"ts": ts, "id": ident}, ts)
        open_windows = {(k.key, k.start, k.end): sorted(v) for k, v in driver.table("w").items()}
        for rec in driver.output("out"):
            last[window_of(rec)] = None if rec.value is None else sorted(rec.value)
            # an update carries the window's largest event time (a tombstone: the end)
            assert rec.timestamp == (rec.key.end if rec.value is None
                                     else newest(evs, rec.value))
        assert {evs[o][2] for o in late_ids(driver)} == late
    assert {w: v for w, v in last.items() if v is not None} == final
    assert open_windows == {w: v for w, v in final.items()
                            if w in open_windows}  # what the table holds is right too


crash = st.one_of(st.none(), st.tuples(st.sampled_from([None, 0.0, 0.3, 0.6, 1.0]),
                                       st.booleans()))
# After a record: no commit, a commit, or the state made durable without the input offsets
# (a worker's prompt commit for a ?wait_for= read): a crash replays the records since.
commits = st.sampled_from([None, "offsets", "state"])


@CRASH_SETTINGS
@given(spec=specs, data=st.data())
def test_crashes_lose_no_final_result_and_duplicates_carry_the_same_value(spec, data):
    evs = data.draw(events(max_size=25))
    plan = data.draw(st.lists(st.tuples(commits, crash), min_size=len(evs),
                              max_size=len(evs)))
    final, _closed, late = oracle(spec, evs)
    with TopologyTestDriver(topology(spec, "final"), auto_commit=False) as driver:
        for (key, ts, ident), (commit, crashed) in zip(evs, plan):
            driver.pipe("in", key, {"ts": ts, "id": ident}, ts)
            if commit is not None:
                driver.commit(offsets=commit == "offsets")
            if crashed is not None:
                driver.restart(crash=True, torn=crashed[0], lose_outputs=crashed[1])
        driver.advance_stream_time(BIG)
        emitted: dict[tuple, list] = {}
        for rec in driver.output("out"):
            value = sorted(rec.value)
            assert emitted.setdefault(window_of(rec), value) == value, "a duplicate differs"
        assert {evs[o][2] for o in late_ids(driver)} == late
    assert emitted == final


@CRASH_SETTINGS
@given(spec=specs, data=st.data())
def test_crashes_in_update_mode_leave_each_windows_latest_value_last(spec, data):
    evs = data.draw(events(max_size=25))
    plan = data.draw(st.lists(st.tuples(commits, crash), min_size=len(evs),
                              max_size=len(evs)))
    final, _closed, _late = oracle(spec, evs)
    last: dict[tuple, list | None] = {}
    with TopologyTestDriver(topology(spec, "update"), auto_commit=False) as driver:
        for (key, ts, ident), (commit, crashed) in zip(evs, plan):
            driver.pipe("in", key, {"ts": ts, "id": ident}, ts)
            if commit is not None:
                driver.commit(offsets=commit == "offsets")
            if crashed is not None:
                driver.restart(crash=True, torn=crashed[0], lose_outputs=crashed[1])
        for rec in driver.output("out"):
            last[window_of(rec)] = None if rec.value is None else sorted(rec.value)
    assert {w: last.get(w) for w in final} == final
    if not isinstance(spec, Session):  # a session merged away may miss its None (docs)
        assert {w for w, v in last.items() if v is not None} == set(final)
