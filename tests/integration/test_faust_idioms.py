"""Faust's idioms on a streamkit.App in worker processes on the session's broker: Faust
tables served by the query layer on every worker, windowed tables, agent.ask, timers, and
Faust's and streamkit's tables rebuilt exactly after their RocksDB directories are lost."""
from __future__ import annotations

import asyncio
import shutil
import time

import orjson

from aiokafka import AIOKafkaProducer

from streamkit.testing.kafka import ensure_topic, produce, read_topic

from .conftest import worker_env
from .test_tables import wait_for

IDIOMS = "tests.integration.apps.faust_idioms"
USERS = [f"user-{i}" for i in range(13)]


def events(n: int) -> list[tuple[str, dict]]:
    return [(USERS[i % len(USERS)], {"user": USERS[i % len(USERS)], "n": i % 5 + 1})
            for i in range(n)]


def count_per_user(evs) -> dict[str, int]:
    out: dict[str, int] = {}
    for user, _ in evs:
        out[user] = out.get(user, 0) + 1
    return out


def sum_per_user(evs) -> dict[str, int]:
    out: dict[str, int] = {}
    for user, ev in evs:
        out[user] = out.get(user, 0) + ev["n"]
    return out


def read_keys(worker, table: str) -> dict[str, int] | None:
    """Every user's value read key by key over HTTP (None while a read is refused)."""
    out = {}
    for user in USERS:
        status, body = worker.get(f"/tables/{table}/keys/{user}")
        if status == 200:
            out[user] = body["value"]
        elif status != 404:
            return None
    return out


def scan(worker, table: str) -> dict[str, int] | None:
    status, body = worker.get(f"/tables/{table}?limit=1000")
    return {it["key"]: it["value"] for it in body["items"]} if status == 200 else None


def create_sent_topics(broker: str, app_id: str) -> None:
    """The broker creates no topic on its own (as many production clusters are set up): the
    topics the app sends to exist first, as a Faust user on such a cluster makes them."""
    for name in ("double", "ticks"):
        asyncio.run(ensure_topic(broker, f"{app_id}-{name}"))


def test_a_faust_agent_counts_exactly_and_every_worker_serves_its_table(
        broker, app_id, workers, tmp_path):
    evs = events(1300)
    want, want_sums = count_per_user(evs), sum_per_user(evs)
    for topic in ("events", "fast"):
        asyncio.run(ensure_topic(broker, f"{app_id}-{topic}"))
    create_sent_topics(broker, app_id)
    env = {n: worker_env(broker, tmp_path / n, IDIOMS_APP_ID=app_id) for n in ("w0", "w1")}
    w0 = workers(IDIOMS, env["w0"], "w0")
    w1 = workers(IDIOMS, env["w1"], "w1")
    for w in (w0, w1, w0):  # w0 again: it rebalanced when w1 joined
        w.wait_ready(timeout=120)
    # The events come once both workers hold their partitions: a Faust agent is
    # at-least-once, and a rebalance in the middle of the input would count some records
    # twice (Faust's commit interval), which "exactly" here must not depend on.
    produce(broker, f"{app_id}-events", evs)
    produce(broker, f"{app_id}-fast", evs)
    for w in (w0, w1):
        wait_for(lambda w=w: read_keys(w, "counts") == want, timeout=120)
        assert scan(w, "counts") == want
        wait_for(lambda w=w: read_keys(w, "fast-counts") == want_sums, timeout=60)
        assert scan(w, "fast-counts") == want_sums
    status, body = w0.get("/tables")
    kinds = {t["name"]: t["kind"] for t in body["tables"]}
    assert kinds == {"counts": "faust", "per-window": "faust-windowed",
                     "fast-counts": "key-value"}
    # Both workers hold a share of each table: the reads above crossed workers.
    owners = {w.url: w.get("/metadata")[1]["tables"]["counts"]["active"] for w in (w0, w1)}
    assert {u for a in owners.values() for u in a.values()} == {w0.url, w1.url}


async def _send_at(bootstrap: str, topic: str, records: list[tuple[str, dict, int]]) -> None:
    await ensure_topic(bootstrap, topic)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, ts_ms in records:
            await producer.send_and_wait(topic, value=orjson.dumps(value),
                                         key=key.encode(), timestamp_ms=ts_ms)
    finally:
        await producer.stop()


def test_windowed_table_ask_and_timer_of_a_faust_app_on_streamkit(broker, app_id, workers,
                                                                   tmp_path):
    # An hour ago (brokers refuse times far ahead), at the start of a 10 s window.
    base = (int(time.time() * 1000) - 3_600_000) // 10_000 * 10_000
    times = [base + d for d in (0, 4_000, 9_999, 10_000, 15_000, 31_000)]
    records = [("user-1", {"user": "user-1"}, t) for t in times]
    asyncio.run(_send_at(broker, f"{app_id}-events", records))
    create_sent_topics(broker, app_id)
    w = workers(IDIOMS, worker_env(broker, tmp_path / "w0", IDIOMS_APP_ID=app_id), "w0")
    w.wait_ready(timeout=120)
    # Oracle: tumbling windows of 10 s, [start, start + 10), counted per window.
    want: dict[float, int] = {}
    for t in times:
        start = (t // 10_000) * 10
        want[float(start)] = want.get(float(start), 0) + 1

    def windows():
        status, body = w.get("/tables/per-window/keys/user-1")
        return {r["start"]: r["value"] for r in body["value"]} if status == 200 else None

    wait_for(lambda: windows() == want, timeout=60)
    status, body = w.get("/double/21", timeout=30)
    assert (status, body) == (200, {"n": 21, "doubled": 42})
    # Sent without a key, the ticks spread over the topic's partitions: compare them as a
    # multiset (each sent once, by the leader only).
    wait_for(lambda: sorted(r.value for r in read_topic(broker, f"{app_id}-ticks"))
             == [b"1", b"2", b"3"], timeout=30)


def test_faust_and_agent_tables_come_back_exactly_after_the_disk_is_lost(
        broker, app_id, workers, tmp_path):
    evs = events(2600)
    produce(broker, f"{app_id}-events", evs)
    produce(broker, f"{app_id}-fast", evs)
    want, want_sums = count_per_user(evs), sum_per_user(evs)
    create_sent_topics(broker, app_id)
    env = worker_env(broker, tmp_path / "data", IDIOMS_APP_ID=app_id)
    first = workers(IDIOMS, env, "first")
    first.wait_ready(timeout=120)
    wait_for(lambda: scan(first, "counts") == want and scan(first, "fast-counts") == want_sums,
             timeout=120)
    assert first.stop() == 0
    shutil.rmtree(tmp_path / "data")
    second = workers(IDIOMS, env, "second")
    second.wait_ready(timeout=120)
    # Ready means restored: the tables are whole at once, not filled in later.
    assert scan(second, "counts") == want
    assert scan(second, "fast-counts") == want_sums
    assert read_keys(second, "counts") == want
