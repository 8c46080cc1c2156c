"""Windowed aggregation on the real dev broker: final results across a SIGKILL and a
restart, and late records in the late-events topic."""
from __future__ import annotations

import random
import threading
import time

import orjson
import pytest

from tests.oracles import kafka_partition
from streamkit.testing.kafka import produce, read_topic

from .conftest import worker_env
from .test_tables import wait_for

WINDOWED = "tests.integration.apps.windowed"
# Event time of the first event (ms): now, to the minute. Kafka deletes records whose
# timestamp is older than the topic's retention (7 days) at its next retention check, so a
# fixed date in the past would make output records vanish mid-test.
BASE = int(time.time()) // 60 * 60_000
SIZE, GRACE = 1_000, 500
KEYS = [f"k{i}" for i in range(20)]
PARTITIONS = 4


@pytest.fixture
def windowed_env(broker, app_id, tmp_path):
    def env(name: str = "w0", **extra: str) -> dict[str, str]:
        return worker_env(broker, tmp_path / f"data-{name}", WINDOWED_APP_ID=app_id, **extra)

    return env


def events(n: int, start: int = 0, seed: int = 7):
    """Event i at BASE + 10 i ms, up to 300 ms out of order: always within grace."""
    rng = random.Random(seed + start)
    return [(KEYS[rng.randrange(len(KEYS))],
             {"ts": BASE + 10 * i - rng.randrange(300), "amount": rng.randint(1, 9)})
            for i in range(start, start + n)]


def expected(evs) -> dict[tuple, int]:
    out: dict[tuple, int] = {}
    for key, ev in evs:
        start = ev["ts"] - ev["ts"] % SIZE
        out[(key, start, start + SIZE)] = out.get((key, start, start + SIZE), 0) + ev["amount"]
    return out


def closers(ts: int):
    """One record per partition far ahead in event time: every window before it closes."""
    keys = {}
    for i in range(1000):
        keys.setdefault(kafka_partition(f"close{i}".encode(), PARTITIONS), f"close{i}")
    return [(keys[p], {"ts": ts, "amount": 0}) for p in range(PARTITIONS)]


def finals(broker: str, topic: str) -> dict[tuple, list[int]]:
    """Every value emitted per window (duplicates kept), closers left out."""
    out: dict[tuple, list[int]] = {}
    for rec in read_topic(broker, topic):
        w = orjson.loads(rec.key)
        assert rec.partition == kafka_partition(w["key"].encode(), PARTITIONS)
        if not w["key"].startswith("close"):
            out.setdefault((w["key"], w["start"], w["end"]), []).append(int(rec.value))
    return out


def test_every_final_window_result_survives_a_sigkill_and_restart_exactly(
        broker, app_id, workers, windowed_env):
    env = windowed_env(STREAMKIT_COMMIT_MAX_RECORDS="400", STREAMKIT_FETCH_MAX_RECORDS="100",
                       STREAMKIT_COMMIT_INTERVAL_MS="60000")
    total = 8000
    evs = events(total)
    topic, out = f"{app_id}-events", f"{app_id}-sums"
    w = workers(WINDOWED, env)
    w.wait_ready()
    done = threading.Event()

    def trickle():
        for start in range(0, total, 400):
            produce(broker, topic, evs[start:start + 400])
            time.sleep(0.05)
        done.set()

    t = threading.Thread(target=trickle)
    t.start()
    try:
        wait_for(lambda: len(finals(broker, out)) > 100, timeout=60, every=0.3)
        w.kill()
        assert not done.is_set(), "the worker must die while events are still arriving"
    finally:
        t.join()
    # Outputs leave at commit time: the restarted worker commits on time as well.
    w2 = workers(WINDOWED, {**env, "STREAMKIT_COMMIT_INTERVAL_MS": "500"}, "w0-again")
    w2.wait_ready()
    produce(broker, topic, closers(BASE + 10 * total + 60_000))
    want = expected(evs)
    got = wait_for(lambda: (lambda f: f if len(f) >= len(want) else None)(finals(broker, out)),
                   timeout=90, every=0.5)
    # A window whose emission and commit the crash separated may appear twice, with the
    # same value; no window is missing and none is wrong.
    assert {k: set(v) for k, v in got.items() if len(set(v)) > 1} == {}
    assert {k: v[0] for k, v in got.items()} == want
    duplicated = sum(len(v) - 1 for v in got.values())
    assert duplicated <= 400 + 100  # at most what one commit interval emitted
    assert read_topic(broker, f"{app_id}-late-events") == []


def test_record_past_grace_goes_to_late_events_with_lateness_and_is_left_out(
        broker, app_id, workers, windowed_env):
    topic = f"{app_id}-events"
    on_time = [("k1", {"ts": BASE + 10 * i, "amount": 1}) for i in range(200)]  # to +1,990
    late = ("k1", {"ts": BASE + 100, "amount": 1000})  # [BASE, +1000) closed at +1500
    produce(broker, topic, on_time)
    produce(broker, topic, [late])
    produce(broker, topic, closers(BASE + 100_000))
    w = workers(WINDOWED, windowed_env())
    w.wait_ready()
    got = wait_for(lambda: (lambda f: f if len(f) == 2 else None)(finals(broker, f"{app_id}-sums")),
                   timeout=60)
    assert got == {("k1", BASE, BASE + 1000): [100], ("k1", BASE + 1000, BASE + 2000): [100]}
    dropped = wait_for(lambda: read_topic(broker, f"{app_id}-late-events"))
    assert len(dropped) == 1
    rec = dropped[0]
    assert (rec.key, orjson.loads(rec.value)) == (b"k1", late[1])
    h = dict(rec.headers)
    assert h["streamkit.lateness_ms"] == b"1890"  # stream time BASE + 1,990
    assert orjson.loads(h["streamkit.windows"]) == [[BASE, BASE + 1000]]
    assert h["streamkit.stream_time"] == str(BASE + 1990).encode()
    assert (h["streamkit.topic"], int(h["streamkit.offset"])) == (topic.encode(), 200)
    assert "late record dropped" in w.log_tail(200_000)


def test_open_windows_are_read_over_http_by_key_and_time_range(broker, app_id, workers, windowed_env):
    # Windows stay open while stream time is below their end + grace: event times stay small.
    produce(broker, f"{app_id}-events", [("k1", {"ts": 100, "amount": 2}), ("k1", {"ts": 900, "amount": 3}),
                                         ("k1", {"ts": 1200, "amount": 5}), ("k2", {"ts": 1300, "amount": 7})])
    w = workers(WINDOWED, windowed_env())
    w.wait_ready()

    def windows(path):
        status, body = w.get(path)
        return body["windows"] if status == 200 else None

    got = wait_for(lambda: windows("/tables/sums/keys/k1") if windows("/tables/sums/keys/k1") and
                   len(windows("/tables/sums/keys/k1")) == 2 else None)
    assert got == [{"start": 0, "end": 1000, "value": 5}, {"start": 1000, "end": 2000, "value": 5}]
    assert windows("/tables/sums/keys/k1?from_ms=500&to_ms=1500") == [
        {"start": 1000, "end": 2000, "value": 5}]
    assert w.get("/tables/sums/keys/k9")[0] == 404
    status, body = w.get("/tables/sums")
    assert status == 400 and body["error"]["code"] == "windowed_table"
    kinds = {t["name"]: t["kind"] for t in w.get("/tables")[1]["tables"]}
    assert kinds == {"sums": "windowed"}
