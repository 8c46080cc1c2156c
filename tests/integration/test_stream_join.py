"""The stream-stream windowed join on a real broker: the joined records across a SIGKILL and
a restart, and across a freeze past the session timeout (exact after de-duplication by the
input offsets of each pair), and a record past grace in the late-events topic."""
from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time

import orjson
import pytest

from streamkit.testing.kafka import ensure_topic, group_members, produce, read_topic
from tests.oracles import kafka_partition

from .conftest import worker_env
from .test_tables import wait_for

STREAM_JOIN = "tests.integration.apps.stream_join"
# Event time of the first event (ms): now, to the minute. Kafka deletes records whose
# timestamp is older than the topic's retention (7 days) at its next retention check, so a
# fixed date in the past would make output records vanish mid-test.
BASE = int(time.time()) // 60 * 60_000
BEFORE = AFTER = 100       # the app's JoinWindows(100, 100, grace_ms=500)
KEYS = [f"k{i}" for i in range(20)]
PARTITIONS = 4


@pytest.fixture
def join_env(broker, app_id, tmp_path):
    def env(name: str = "w0", **extra: str) -> dict[str, str]:
        return worker_env(broker, tmp_path / f"data-{name}", STREAM_JOIN_APP_ID=app_id, **extra)

    return env


def events(side: str, n: int, seed: int):
    """Event i of a side at BASE + 10 i ms (the right side 5 ms later), up to 300 ms out of
    order: always within grace."""
    rng = random.Random(seed)
    shift = 0 if side == "l" else 5
    return [(KEYS[rng.randrange(len(KEYS))],
             {"id": f"{side}{i}", "ts": BASE + 10 * i + shift - rng.randrange(300)})
            for i in range(n)]


def expected(lefts, rights) -> set[tuple]:
    """(left id, right id or None) of a left join, by definition."""
    per_key: dict[str, list[dict]] = {}
    for rk, rv in rights:
        per_key.setdefault(rk, []).append(rv)
    out, matched = set(), set()
    for lk, lv in lefts:
        for rv in per_key.get(lk, ()):
            if lv["ts"] - BEFORE <= rv["ts"] <= lv["ts"] + AFTER:
                out.add((lv["id"], rv["id"]))
                matched.add(lv["id"])
    return out | {(lv["id"], None) for _k, lv in lefts if lv["id"] not in matched}


def closers(ts: int):
    """One right record per partition far ahead in event time: every left window closes."""
    keys = {}
    for i in range(1000):
        keys.setdefault(kafka_partition(f"close{i}".encode(), PARTITIONS), f"close{i}")
    return [(keys[p], {"id": f"close{p}", "ts": ts}) for p in range(PARTITIONS)]


def positions(broker: str, topic: str) -> dict[str, tuple[int, int]]:
    """id -> (partition, offset) of each input record."""
    return {orjson.loads(r.value)["id"]: (r.partition, r.offset) for r in read_topic(broker, topic)}


def joined(broker: str, topic: str) -> list[tuple]:
    out = []
    for rec in read_topic(broker, topic):
        v = orjson.loads(rec.value)
        assert rec.partition == kafka_partition(rec.key, PARTITIONS)  # co-partitioned output
        out.append((v["l"], v["r"]))
    return out


JOIN_UNDER_FAILURE = dict(STREAMKIT_COMMIT_MAX_RECORDS="400", STREAMKIT_FETCH_MAX_RECORDS="100",
                          STREAMKIT_COMMIT_INTERVAL_MS="60000")


def trickle(broker: str, app_id: str, lefts, rights, chunk: int = 300
            ) -> tuple[threading.Thread, threading.Event]:
    """Produce both sides chunk by chunk in a thread (started), paced so that a worker is
    still taking them when the test strikes; the event is set once all are produced."""
    done = threading.Event()

    def run():
        for start in range(0, len(lefts), chunk):
            produce(broker, f"{app_id}-left", lefts[start:start + chunk])
            produce(broker, f"{app_id}-right", rights[start:start + chunk])
            time.sleep(0.05)  # pacing, not waiting for anything
        done.set()

    t = threading.Thread(target=run)
    t.start()
    return t, done


def joined_exactly(broker: str, app_id: str, lefts, rights) -> list[tuple]:
    """Close every window, wait for the results and check them: every pair of input
    records once after de-duplication by their offsets, none judged late. Returns them."""
    produce(broker, f"{app_id}-right", closers(BASE + 10 * len(lefts) + 60_000))
    want = expected(lefts, rights)
    at_l, at_r = positions(broker, f"{app_id}-left"), positions(broker, f"{app_id}-right")

    def by_offsets(results):
        return {(at_l[lid], at_r[rid] if rid is not None else None) for lid, rid in results}

    want_offsets = by_offsets(want)
    got = wait_for(lambda: (lambda r: r if len(by_offsets(r)) >= len(want_offsets) else None)(
        joined(broker, f"{app_id}-joined")), timeout=120, every=0.5)
    assert by_offsets(got) == want_offsets
    assert set(got) == want
    assert read_topic(broker, f"{app_id}-late-events") == []
    return got


def test_joined_records_survive_a_sigkill_and_restart_exactly_after_deduplication(
        broker, app_id, workers, join_env):
    env = join_env(**JOIN_UNDER_FAILURE)
    lefts, rights = events("l", 6000, 11), events("r", 6000, 12)
    w = workers(STREAM_JOIN, env)
    w.wait_ready()
    t, done = trickle(broker, app_id, lefts, rights)
    try:
        wait_for(lambda: len(read_topic(broker, f"{app_id}-joined")) > 300, timeout=60,
                 every=0.3)
        w.kill()
        assert not done.is_set(), "the worker must die while events are still arriving"
    finally:
        t.join()
    # Outputs leave at commit time: the restarted worker commits on time as well.
    w2 = workers(STREAM_JOIN, {**env, "STREAMKIT_COMMIT_INTERVAL_MS": "500"}, "w0-again")
    w2.wait_ready()
    got = joined_exactly(broker, app_id, lefts, rights)
    # At least once: a crash repeats at most the results of the records since the last
    # commit (and the null results of the records it closed).
    duplicated = len(got) - len(set(got))
    assert duplicated <= 2 * (400 + 100), duplicated


def test_a_worker_frozen_past_its_session_timeout_loses_no_result_and_judges_none_late(
        broker, app_id, workers, join_env):
    # Frozen (SIGSTOP) mid-stream until the broker drops it from its group, then woken: it
    # rejoins, commits and goes on, with every pair once (after de-duplication by the
    # input offsets) and no record judged late.
    lefts, rights = events("l", 6000, 21), events("r", 6000, 22)
    w = workers(STREAM_JOIN, join_env(**JOIN_UNDER_FAILURE))
    w.wait_ready()
    t, _done = trickle(broker, app_id, lefts, rights)
    try:
        wait_for(lambda: len(read_topic(broker, f"{app_id}-joined")) > 300, timeout=60,
                 every=0.3)
        os.kill(w.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: group_members(broker, f"{app_id}-processors") == 0, timeout=60,
                     every=0.5)
        finally:
            os.kill(w.pid, signal.SIGCONT)
    finally:
        t.join()
    joined_exactly(broker, app_id, lefts, rights)
    assert w.alive()


def test_record_past_grace_goes_to_late_events_and_joins_nothing(
        broker, app_id, workers, join_env):
    left_topic, right_topic = f"{app_id}-left", f"{app_id}-right"
    on_time = [("k1", {"id": f"l{i}", "ts": BASE + 10 * i}) for i in range(100)]  # to +990
    late = ("k1", {"id": "l-late", "ts": BASE + 100})  # 890 ms behind, grace 500
    produce(broker, left_topic, on_time + [late])
    produce(broker, right_topic, [("k1", {"id": "r0", "ts": BASE + 100})] + closers(BASE + 100_000))
    w = workers(STREAM_JOIN, join_env())
    w.wait_ready()
    want = ({(f"l{i}", "r0") for i in range(21)}                # [ts - 100, ts + 100]
            | {(f"l{i}", None) for i in range(21, 100)})
    got = wait_for(lambda: (lambda r: r if len(set(r)) >= len(want) else None)(
        joined(broker, f"{app_id}-joined")), timeout=60)
    assert set(got) == want
    dropped = wait_for(lambda: read_topic(broker, f"{app_id}-late-events"))
    assert len(dropped) == 1
    rec = dropped[0]
    assert (rec.key, orjson.loads(rec.value)) == (b"k1", late[1])
    h = dict(rec.headers)
    assert h["streamkit.table"] == b"pairs-left"
    assert h["streamkit.lateness_ms"] == b"890"
    assert orjson.loads(h["streamkit.windows"]) == [[BASE, BASE + 200]]
    assert (h["streamkit.topic"], int(h["streamkit.offset"])) == (left_topic.encode(), 100)
    assert "late record dropped" in w.log_tail(200_000)


def test_a_worker_whose_joined_topics_differ_in_partition_count_refuses_to_start(
        broker, app_id, workers, join_env):
    asyncio.run(ensure_topic(broker, f"{app_id}-left", 2))
    asyncio.run(ensure_topic(broker, f"{app_id}-right", 4))
    w = workers(STREAM_JOIN, join_env())
    wait_for(lambda: not w.alive(), timeout=60, every=0.2)
    assert w.returncode != 0
    log = w.log_tail(50_000)
    assert "TopologyError: topics processed together must have the same number of partitions" \
        in log, log[-3000:]
    assert f"'{app_id}-left': 2" in log and f"'{app_id}-right': 4" in log

