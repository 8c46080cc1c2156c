"""Changelog tables on the real dev broker: restarts, lost disks, crashes, two workers,
and dead letters."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from streamkit.testing.kafka import (admin_client, caught_up, committed_and_end, group_members,
                                    produce, read_topic)

from .conftest import COUNTER, ROOT, metric, metrics_text, records_in, totals

KEYS = [f"k{i}" for i in range(50)]


def events(n: int, start: int = 0):
    return [(KEYS[i % len(KEYS)], {"amount": i % 7 + 1}) for i in range(start, start + n)]


def expected(n: int) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for key, ev in events(n):
        acc = out.setdefault(key, {"count": 0, "sum": 0})
        acc["count"] += 1
        acc["sum"] += ev["amount"]
    return out


def wait_for(fn, timeout: float = 30.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout}s; last value {last!r}")


def settled(worker, want: dict) -> bool:
    return totals(worker, KEYS) == want  # keys absent from want must be absent (404) too


def processed_all(worker, topic: str, partitions: int = 4) -> bool:
    """Whether the worker's consumer lag is 0 on every partition of topic."""
    text = metrics_text(worker)
    lags = [metric(text, "streamkit_consumer_lag", topic=topic, partition=str(p))
            for p in range(partitions)]
    return lags == [0] * partitions


def start_counter(workers, env, name="w0"):
    w = workers(COUNTER, env, name)
    w.wait_ready()
    return w


def test_counting_table_keeps_exact_values_across_restart(broker, app_id, workers, counter_env):
    env = counter_env()
    produce(broker, f"{app_id}-events", events(2000))
    w = start_counter(workers, env)
    wait_for(lambda: settled(w, expected(2000)))
    assert w.stop() == 0
    produce(broker, f"{app_id}-events", events(1000, start=2000))
    w2 = start_counter(workers, env, "w0-again")
    wait_for(lambda: settled(w2, expected(3000)))


def test_lost_rocksdb_directory_is_rebuilt_from_changelog(broker, app_id, workers, counter_env):
    env = counter_env()
    produce(broker, f"{app_id}-events", events(3000))
    w = start_counter(workers, env)
    wait_for(lambda: settled(w, expected(3000)))
    assert w.stop() == 0
    table_dir = Path(env["STREAMKIT_DATA_DIR"]) / app_id / "totals"
    assert table_dir.is_dir()
    shutil.rmtree(table_dir)
    w2 = start_counter(workers, env, "w0-again")
    # No new input: every value comes from the changelog alone.
    assert totals(w2, KEYS) == expected(3000)
    # The restore read the whole changelog: its progress ends at every record, of as many.
    n = len(read_topic(broker, f"{app_id}-totals-changelog"))
    text = metrics_text(w2)
    assert metric(text, "streamkit_restore_records", table="totals") == n
    assert metric(text, "streamkit_restore_total_records", table="totals") == n
    assert metric(text, "streamkit_restore_partitions_left", table="totals") == 0
    assert w2.get("/metadata")[1]["restore"] == {
        "totals": {"restored": n, "total": n, "partitions_left": 0}}
    assert re.search(rf"restored 4 tasks \({n} changelog records\) in [\d.]+s; totals {n}/{n}\s",
                     w2.log_tail(50000)), w2.log_tail()
    assert "changelog records" in w2.log_tail(20000)


def test_sigkill_mid_stream_loses_no_update(broker, app_id, workers, counter_env):
    commit_max, fetch_max = 400, 100
    env = counter_env(STREAMKIT_COMMIT_MAX_RECORDS=str(commit_max),
                      STREAMKIT_FETCH_MAX_RECORDS=str(fetch_max),
                      STREAMKIT_COMMIT_INTERVAL_MS="60000")
    total = 12000
    w = start_counter(workers, env)
    done = threading.Event()

    def trickle():
        for start in range(0, total, 500):
            produce(broker, f"{app_id}-events", events(500, start))
            time.sleep(0.05)
        done.set()

    t = threading.Thread(target=trickle)
    t.start()
    try:
        wait_for(lambda: sum(v["count"] for v in totals(w, KEYS).values()) > 2000, every=0.05)
        w.kill()
        assert not done.is_set(), "the worker must die while records are still arriving"
    finally:
        t.join()
    w2 = start_counter(workers, env, "w0-again")
    want = expected(total)

    def caught_up():
        got = totals(w2, KEYS)
        return got if len(got) == len(KEYS) and all(
            got[k]["count"] >= want[k]["count"] for k in KEYS) else None

    wait_for(caught_up)
    # Every fetched record processed (reads include uncommitted updates): the counts are final.
    wait_for(lambda: processed_all(w2, f"{app_id}-events"))
    got = totals(w2, KEYS)
    extra = sum(got[k]["count"] for k in KEYS) - total
    # At-least-once: nothing lost; what was applied twice is at most what was processed
    # since the last commit (the commit bound plus one fetch).
    assert all(got[k]["count"] >= want[k]["count"] for k in KEYS)
    assert 0 <= extra <= commit_max + fetch_max
    # A duplicate repeats an event whole: the sum moves by that event's amount only.
    assert sum(got[k]["sum"] for k in KEYS) >= sum(want[k]["sum"] for k in KEYS)


def test_input_offsets_are_not_committed_while_the_changelog_refuses_the_updates(
        broker, app_id, workers, counter_env):
    """The commit order on a real worker: the changelog takes a table's updates before the
    input offsets that caused them are committed. A changelog that refuses every write
    (max.message.bytes below one record) stops the worker (a changelog never skips an
    update, docs/operations.md) with the offsets uncommitted, so a restart processes the
    input again and the values come out exact."""
    changelog, topic = f"{app_id}-totals-changelog", f"{app_id}-events"
    config = {"cleanup.policy": "compact", "max.message.bytes": "40"}
    asyncio.run(create_topic(broker, changelog, config))
    produce(broker, topic, events(400))
    env = counter_env()
    w = workers(COUNTER, env)
    wait_for(lambda: not w.alive(), timeout=60)
    assert w.returncode != 0
    log = w.log_tail(200_000)
    assert "refused a batch of" in log and "changelog records" in log
    assert "MessageSizeTooLarge" in log
    committed, ends = asyncio.run(committed_and_end(broker, f"{app_id}-processors", topic))
    assert sum(ends.values()) == 400 and set(committed.values()) == {None}
    assert read_topic(broker, changelog) == []
    asyncio.run(alter_topic(broker, changelog, {"max.message.bytes": "1048588"}))
    w2 = start_counter(workers, env, "w0-again")
    wait_for(lambda: settled(w2, expected(400)))
    wait_for(lambda: caught_up(broker, f"{app_id}-processors", topic))
    assert settled(w2, expected(400))


async def create_topic(broker: str, name: str, config: dict[str, str]) -> None:
    async with admin_client(broker) as admin:
        await admin.create_topics([NewTopic(name, 4, 1, topic_configs=config)])


async def alter_topic(broker: str, name: str, config: dict[str, str]) -> None:
    async with admin_client(broker) as admin:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, name, config)])


def test_two_workers_split_partitions_and_survivor_serves_every_key(
        broker, app_id, workers, counter_env):
    produce(broker, f"{app_id}-events", events(4000))
    a = start_counter(workers, counter_env("a"), "a")
    b = workers(COUNTER, counter_env("b"), "b")
    b.wait_ready()
    # Both workers hold some tasks once the second one has joined.
    wait_for(lambda: a.tasks() and b.tasks())
    tasks_a, tasks_b = a.tasks(), b.tasks()
    assert sorted(tasks_a + tasks_b) == [[0, p] for p in range(4)]
    assert not set(map(tuple, tasks_a)) & set(map(tuple, tasks_b))
    want = expected(4000)
    wait_for(lambda: settled(a, want))
    assert totals(b, KEYS) == want  # half of these are forwarded to a
    a.kill()
    wait_for(lambda: len(b.tasks()) == 4)
    assert totals(b, KEYS) == want


def test_a_second_worker_on_a_state_directory_in_use_is_refused_at_start(
        broker, app_id, workers, counter_env):
    # Given the data directory of a running worker of the same app, a worker would open
    # the stores of whatever partitions the group moved to it, and meet the first
    # worker's open RocksDB stores (or not) depending on the assignment.
    produce(broker, f"{app_id}-events", events(3000))
    a = start_counter(workers, counter_env("a"), "a")
    b = workers(COUNTER, counter_env("a"), "b")
    wait_for(lambda: not b.alive(), timeout=60)
    assert b.returncode != 0
    assert (f"the state directory {a.env['STREAMKIT_DATA_DIR']}/{app_id} is in use by "
            f"another worker of this app (pid {a.pid})") in b.log_tail(50_000)
    assert sorted(a.tasks()) == [[0, p] for p in range(4)]  # no rebalance took any
    wait_for(lambda: settled(a, expected(3000)))
    # Killed, its worker lets go of the directory at once: the next one starts on it.
    a.kill()
    c = start_counter(workers, counter_env("a"), "c")
    produce(broker, f"{app_id}-events", events(1000, 3000))
    wait_for(lambda: settled(c, expected(4000)))
    # Another app may share the data directory: its state directory is its own (it counts
    # the same events into a table of its own).
    other = start_counter(
        workers, {**counter_env("a"), "COUNTER_APP_ID": f"{app_id}-other"}, "other")
    wait_for(lambda: settled(other, expected(4000)))


# Faust's client-only app (what a script starts to send to or ask the workers), given the
# workers' data directory: it sends, and then waits until its stdin is closed.
CLIENT = """
import os, sys
from tests.integration.apps.counter import app

async def main():
    await app.start_client()
    topic = app.topic(os.environ["COUNTER_SOURCE"])
    for i in range(100):
        await topic.send(key=f"k{i % 50}", value={"amount": i % 7 + 1})
    await app.producer.flush()
    sys.stdin.read()
    await app.stop()

app.loop.run_until_complete(main())
"""


def test_a_client_only_app_beside_its_worker_sends_and_takes_no_partition(
        broker, app_id, workers, counter_env, tmp_path):
    a = start_counter(workers, counter_env("a"), "a")
    log = tmp_path / "client.log"
    with open(log, "wb") as out:
        client = subprocess.Popen([sys.executable, "-c", CLIENT], cwd=ROOT, stdin=subprocess.PIPE,
                                  stdout=out, stderr=subprocess.STDOUT,
                                  env={**a.env, "PYTHONPATH": ROOT})
    try:
        # What it sent is counted by the worker (a client that failed to start has ended).
        wait_for(lambda: settled(a, expected(100)) or client.poll() is not None, timeout=60)
        assert client.poll() is None, log.read_text()
        # Neither the processing nor the state of the app started in the client: the
        # worker is alone in its group, with every task.
        assert group_members(broker, f"{app_id}-processors") == 1
        assert sorted(a.tasks()) == [[0, p] for p in range(4)]
        client.stdin.close()
        assert client.wait(30) == 0, log.read_text()
    finally:
        if client.poll() is None:
            client.kill()
            client.wait(10)


def test_a_worker_frozen_past_its_session_timeout_beside_another_loses_no_update(
        broker, app_id, workers, counter_env):
    # Frozen (SIGSTOP) mid-stream, worker a is dropped from the group and b runs every task
    # from a's last commit on; woken, a's commits fail and the group gives it tasks again,
    # its own among them. Those are opened again from their changelogs, which b has moved
    # on: kept with what a held before the freeze, they would count from b's committed
    # offsets on top of a's old counts, and every update b made would be lost.
    n = 12_000
    a = start_counter(workers, counter_env("a"), "a")
    b = start_counter(workers, counter_env("b"), "b")
    wait_for(lambda: a.tasks() and b.tasks(), timeout=60)
    evs = events(n)

    def trickle():
        for start in range(0, n, 200):
            produce(broker, f"{app_id}-events", evs[start:start + 200])
            time.sleep(0.05)  # pacing: records keep arriving while a is frozen

    t = threading.Thread(target=trickle)
    t.start()
    try:
        wait_for(lambda: records_in(a) > 500, timeout=60, every=0.05)
        os.kill(a.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: len(b.tasks()) == 4, timeout=60, every=0.2)
            wait_for(lambda: records_in(b) > 3000, timeout=60, every=0.2)
        finally:
            os.kill(a.pid, signal.SIGCONT)
    finally:
        t.join()
    wait_for(lambda: caught_up(broker, f"{app_id}-processors", f"{app_id}-events"),
             timeout=120, every=0.5)
    want = expected(n)
    got = wait_for(lambda: (lambda g: g if len(g) == len(want) else None)(totals(b, KEYS)))
    # At least once: an update may count twice, none may be lost.
    lost = {k: (got[k], w) for k, w in want.items()
            if got[k]["count"] < w["count"] or got[k]["sum"] < w["sum"]}
    assert not lost, lost
    assert a.alive() and b.alive()


def test_malformed_record_goes_to_dead_letters_and_processing_continues(
        broker, app_id, workers, counter_env):
    topic = f"{app_id}-events"
    produce(broker, topic, events(10))
    produce(broker, topic, [("k0", b"{not json"), ("k1", {"no_amount": 1})])
    produce(broker, topic, events(10, start=10))
    w = start_counter(workers, counter_env())
    wait_for(lambda: settled(w, expected(20)))
    dead = wait_for(lambda: read_topic(broker, f"{app_id}-dead-letters"))
    assert len(dead) == 2
    by_value = {r.value: dict(r.headers) for r in dead}
    bad_json = by_value[b"{not json"]
    assert bad_json["streamkit.stage"] == b"decode"
    assert bad_json["streamkit.topic"] == topic.encode()
    assert b"JSON" in bad_json["streamkit.error"]
    missing = by_value[b'{"no_amount":1}']
    assert missing["streamkit.stage"] == b"process"
    assert b"KeyError" in missing["streamkit.error"]
    assert int(missing["streamkit.offset"]) >= 0


def test_standby_replica_takes_over_without_replaying_the_whole_changelog(
        broker, app_id, workers, counter_env):
    produce(broker, f"{app_id}-events", events(6000))
    a = start_counter(workers, counter_env("a", STREAMKIT_STANDBY_REPLICAS="1"), "a")
    b = start_counter(workers, counter_env("b", STREAMKIT_STANDBY_REPLICAS="1"), "b")

    def split():
        ra, rb = a.get("/ready"), b.get("/ready")
        if ra[0] != 200 or rb[0] != 200:
            return None
        return ra[1] if ra[1]["tasks"] and rb[1]["tasks"] else None

    ready_a = wait_for(split)
    ready_b = b.get("/ready")[1]
    # Each worker is standby for exactly the tasks the other runs.
    assert sorted(ready_a["standby"]) == sorted(ready_b["tasks"])
    assert sorted(ready_b["standby"]) == sorted(ready_a["tasks"])
    # /metadata, from either worker, says so for each partition of the table.
    active = {str(p): w.url for w, ready in ((a, ready_a), (b, ready_b)) for _, p in ready["tasks"]}
    other = {a.url: b.url, b.url: a.url}
    for w in (a, b):
        meta = w.get("/metadata")[1]
        assert meta["tables"]["totals"]["active"] == active
        assert meta["tables"]["totals"]["standby"] == {p: [other[u]] for p, u in active.items()}
        assert sorted(meta["hosts"]) == sorted(other)
    want = expected(6000)
    wait_for(lambda: settled(a, want))
    # b's standby stores have applied the changelog once b, reading them itself
    # (allow_stale), gives every value.
    wait_for(lambda: stale_totals(b) == want)
    moved = [p for _, p in ready_a["tasks"]]
    changelog = read_topic(broker, f"{app_id}-totals-changelog")
    replay_cold = sum(1 for r in changelog if r.partition in moved)
    a.kill()
    def b_runs_all() -> bool:
        status, body = b.get("/ready")  # one answer: a second GET may fall in a rebalance
        return status == 200 and len(body["tasks"]) == 4

    wait_for(b_runs_all)
    assert totals(b, KEYS) == want
    restored = [int(n) for n in re.findall(r"restored \d+ tasks \((\d+) changelog records\)",
                                           b.log_tail(50000))]
    assert restored, b.log_tail()
    assert replay_cold > 0 and restored[-1] < replay_cold


def stale_totals(worker) -> dict[str, dict]:
    """Every key's value that the worker read itself with allow_stale, from its standby
    replica for a key it does not own: answers forwarded to the owner, or without
    X-Streamkit-Stale, are left out."""
    out = {}
    for key in KEYS:
        url = f"{worker.url}/tables/totals/keys/{key}?allow_stale=true"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                body, headers = json.loads(resp.read()), resp.headers
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            continue  # 404 (not replicated yet), 503, or no answer
        if (headers["X-Streamkit-Stale"], headers["X-Streamkit-Served-By"]) == ("true", worker.url):
            out[key] = body["value"]
    return out


def test_a_commit_comes_when_the_writes_waiting_reach_the_bound_not_the_records(
        broker, app_id, workers, counter_env):
    """STREAMKIT_COMMIT_MAX_RECORDS bounds the table updates and output records that wait
    for a commit, a key updated again counting once (as Kafka Streams' cache bounds what
    waits): 3,000 records of 50 keys leave 50 updates waiting and bring no commit before
    the interval (a minute here); 600 records of new keys pass the bound of 500 and do."""
    topic = f"{app_id}-events"
    produce(broker, topic, events(3000))
    w = workers(COUNTER, counter_env(STREAMKIT_COMMIT_MAX_RECORDS="500",
                                     STREAMKIT_COMMIT_INTERVAL_MS="60000"))
    wait_for(lambda: records_in(w) == 3000, timeout=90)
    assert metric(metrics_text(w), "streamkit_commits_total") == 0
    produce(broker, topic, [(f"new{i}", {"amount": 1}) for i in range(600)])
    wait_for(lambda: metric(metrics_text(w), "streamkit_commits_total") == 1)
    assert totals(w, ["k0", "new0"]) == {"k0": expected(3000)["k0"],
                                         "new0": {"count": 1, "sum": 1}}


def test_on_error_stop_stops_the_worker_and_keeps_the_bad_record_for_later(
        broker, app_id, workers, counter_env):
    topic = f"{app_id}-events"
    produce(broker, topic, [("k0", {"amount": 1}), ("k0", b"{bad"), ("k0", {"amount": 2})])
    w = workers(COUNTER, counter_env(STREAMKIT_ON_ERROR="stop"))
    deadline = time.monotonic() + 60
    while w.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not w.alive(), "the worker must stop on a bad record when on_error=stop"
    assert w.proc.returncode != 0
    assert "ProcessingStopped" in w.log_tail(50000)
    # Nothing after the bad record was committed: with on_error=continue it is dead-lettered
    # and every good record counted exactly once.
    w2 = start_counter(workers, counter_env(), "w-continue")
    wait_for(lambda: totals(w2, ["k0"]) == {"k0": {"count": 2, "sum": 3}})
    dead = wait_for(lambda: read_topic(broker, f"{app_id}-dead-letters"))
    assert [r.value for r in dead] == [b"{bad"]
