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

def _sessions(recs, gap):
    out = []
    for ts, v in sorted(recs):
        if out and ts - out[-1][1] <= gap:
            out[-1][1] = ts
            out[-1][2].append(v)
        else:
            out.append([ts, ts, [v]])
    return [((s, e), vals) for s, e, vals in out]


def _sliding(recs, d):
    times = sorted({ts for ts, _ in recs})
    bounds = set()
    for t in times:
        bounds.add((t - d, t))
        if any(t < u <= t + 1 + d for u in times):
            bounds.add((t + 1, t + 1 + d))
    return [(b, [v for ts, v in recs if b[0] <= ts <= b[1]]) for b in bounds]


def oracle(spec, evs):
    """(final values per window, arrival index at which each closed, late ids): by
    definition, recomputing everything after every record."""
    grace, stream_time = spec.grace_ms, None
    kept: dict[str, list] = {}
    late: set[int] = set()
    closed: dict[tuple, int] = {}
    final: dict[tuple, list] = {}

    def windows():
        for key, recs in kept.items():
            if isinstance(spec, (Tumbling, Hopping)):
                per: dict[tuple, list] = {}
                for b, v in recs:
                    per.setdefault(b, []).append(v)
                yield from (((key, *b), vals) for b, vals in per.items())
            elif isinstance(spec, Session):
                yield from (((key, *b), vals) for b, vals in _sessions(recs, spec.gap_ms))
            else:
                yield from (((key, *b), vals) for b, vals in _sliding(recs, spec.difference_ms))

    for i, (key, ts, ident) in enumerate(evs):
        stream_time = ts if stream_time is None else max(stream_time, ts)
        if isinstance(spec, (Tumbling, Hopping)):
            for b in spec.windows_for(ts):
                if b[1] + grace <= stream_time:
                    late.add(ident)
                else:
                    kept.setdefault(key, []).append((b, ident))
        elif ts + grace < stream_time:
            late.add(ident)
        else:
            kept.setdefault(key, []).append((ts, ident))
        for w, vals in windows():
            if w not in closed and spec.close_at(w[1], w[2]) <= stream_time:
                closed[w], final[w] = i, sorted(vals)
    for w, vals in windows():
        if w not in closed:
            closed[w], final[w] = "end", sorted(vals)
    return final, closed, late


# --------------------------------------------------------------------------- the system

def topology(spec, emit: str) -> Topology:
    topo = Topology("prop")
    stream = source_stream(topo, "in", "str", "json", lambda v: v["ts"], None)
    merge = (lambda a, b: a + b) if isinstance(spec, Session) else None
    stream.group_by_key().windowed_by(spec).aggregate(
        "w", initial=list, add=lambda acc, v: acc + [v["id"]], merge=merge, emit=emit, to="out")
    return topo


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
        assert {evs[o][2] for o in late_ids(driver)} == late
    assert {w: v for w, v in last.items() if v is not None} == final
    assert open_windows == {w: v for w, v in final.items()
                            if w in open_windows}  # what the table holds is right too


crash = st.one_of(st.none(), st.tuples(st.sampled_from([None, 0.0, 0.3, 0.6, 1.0]),
                                       st.booleans()))


@SETTINGS
@given(spec=specs, data=st.data())
def test_crashes_lose_no_final_result_and_duplicates_carry_the_same_value(spec, data):
    evs = data.draw(events(max_size=25))
    plan = data.draw(st.lists(st.tuples(st.booleans(), crash), min_size=len(evs),
                              max_size=len(evs)))
    final, _closed, late = oracle(spec, evs)
    with TopologyTestDriver(topology(spec, "final"), auto_commit=False) as driver:
        for (key, ts, ident), (commit, crashed) in zip(evs, plan):
            driver.pipe("in", key, {"ts": ts, "id": ident}, ts)
            if commit:
                driver.commit()
            if crashed is not None:
                driver.restart(crash=True, torn=crashed[0], lose_outputs=crashed[1])
        driver.advance_stream_time(BIG)
        emitted: dict[tuple, list] = {}
        for rec in driver.output("out"):
            value = sorted(rec.value)
            assert emitted.setdefault(window_of(rec), value) == value, "a duplicate differs"
        assert {evs[o][2] for o in late_ids(driver)} == late
    assert emitted == final


@SETTINGS
@given(spec=specs, data=st.data())
def test_crashes_in_update_mode_leave_each_windows_latest_value_last(spec, data):
    evs = data.draw(events(max_size=25))
    plan = data.draw(st.lists(st.tuples(st.booleans(), crash), min_size=len(evs),
                              max_size=len(evs)))
    final, _closed, _late = oracle(spec, evs)
    last: dict[tuple, list | None] = {}
    with TopologyTestDriver(topology(spec, "update"), auto_commit=False) as driver:
        for (key, ts, ident), (commit, crashed) in zip(evs, plan):
            driver.pipe("in", key, {"ts": ts, "id": ident}, ts)
            if commit:
                driver.commit()
            if crashed is not None:
                driver.restart(crash=True, torn=crashed[0], lose_outputs=crashed[1])
        for rec in driver.output("out"):
            last[window_of(rec)] = None if rec.value is None else sorted(rec.value)
    assert {w: last.get(w) for w in final} == final
    if not isinstance(spec, Session):  # a session merged away may miss its None (docs)
        assert {w for w, v in last.items() if v is not None} == set(final)
