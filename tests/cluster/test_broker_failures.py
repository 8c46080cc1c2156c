"""streamkit on three Kafka brokers (replication 3, min.insync.replicas 2, acks=all) while
brokers fail: a partition leader or the group coordinator SIGKILLed mid-stream, a broker
killed under gateway load, every broker frozen for 20 s, a changelog the broker really
compacts, and a global table's catch-up after the leader of its source was killed; and
topics just created, listed by every broker before a worker subscribes to them."""
from __future__ import annotations

import asyncio
import threading
import time

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from aiokafka.protocol.metadata import MetadataRequest

from streamkit.clients import stop_client
from streamkit.testing.kafka import (admin_client, caught_up, ensure_topic, produce, produce_async,
                                     read_topic)

from ..integration.conftest import totals
from ..integration.test_gateway import Deployment, call, expected_echo, session
from ..integration.test_global_catch_up import open_tables
from ..integration.test_tables import KEYS, events, expected
from .conftest import cluster_env, coordinator_of, leader_of, replicas_in_sync, until

COUNTER = "tests.integration.apps.counter"
CATALOG = "tests.integration.apps.catalog"
COMMIT_MAX, FETCH_MAX = 400, 100


def counter_on(cluster, workers, tmp_path, app_id):
    env = cluster_env(cluster, tmp_path / "data", COUNTER_APP_ID=app_id,
                      COUNTER_SOURCE=f"{app_id}-events",
                      STREAMKIT_COMMIT_MAX_RECORDS=str(COMMIT_MAX),
                      STREAMKIT_FETCH_MAX_RECORDS=str(FETCH_MAX))
    produce(cluster.bootstrap, f"{app_id}-events", events(500), replication=3, idempotent=True)
    w = workers(COUNTER, env)
    w.wait_ready(timeout=120)
    return w


def stream_then(cluster, w, app_id, total: int, fail) -> None:
    """Produce events 500..total while the worker runs, call fail() once it has counted
    2,000 of them, and wait until it has committed every one."""
    done = threading.Event()

    async def produce_chunks():
        # One producer throughout: it rides out the failover (idempotent: its retries
        # write nothing twice).
        producer = AIOKafkaProducer(bootstrap_servers=cluster.bootstrap, acks="all",
                                    enable_idempotence=True, linger_ms=5)
        await producer.start()
        try:
            for start in range(500, total, 500):
                await asyncio.gather(*[await producer.send(f"{app_id}-events", orjson.dumps(v),
                                                           key=k.encode())
                                       for k, v in events(500, start)])
                await asyncio.sleep(0.05)
        finally:
            await producer.stop()

    def trickle():
        asyncio.run(produce_chunks())
        done.set()

    t = threading.Thread(target=trickle)
    t.start()
    try:
        until(lambda: sum(v["count"] for v in totals(w, KEYS).values()) > 2000, every=0.05)
        fail()
        assert not done.is_set(), "the failure must come while records are still arriving"
    finally:
        t.join()
    until(lambda: caught_up(cluster.bootstrap, f"{app_id}-processors", f"{app_id}-events"),
          timeout=120, every=0.5)


def assert_exact_within_the_bound(w, total: int) -> None:
    """Nothing lost; what was applied twice is at most what the worker had processed since
    its last commit when the broker failed (the commit bound plus one fetch)."""
    got, want = totals(w, KEYS), expected(total)
    extra = sum(got[k]["count"] for k in KEYS) - total
    assert all(got[k]["count"] >= want[k]["count"] for k in KEYS), (got, want)
    assert 0 <= extra <= COMMIT_MAX + FETCH_MAX, extra


def assert_never_restarted(w, pid: int) -> None:
    assert w.alive() and w.pid == pid
    assert "processing stopped" not in w.log_tail(2_000_000)


def test_killing_the_leader_of_a_changelog_partition_mid_stream(healthy, app_id, workers,
                                                                tmp_path):
    cluster = healthy
    w = counter_on(cluster, workers, tmp_path, app_id)
    pid = w.pid
    changelog = f"{app_id}-totals-changelog"
    assert replicas_in_sync(cluster, changelog) == [3, 3, 3, 3]
    victim = leader_of(cluster, changelog, 0)
    stream_then(cluster, w, app_id, 12_000, lambda: cluster.kill(victim))
    assert leader_of(cluster, changelog, 0) != victim
    assert_exact_within_the_bound(w, 12_000)
    assert_never_restarted(w, pid)
    # The broker comes back and catches up: three copies in sync again.
    cluster.restart(victim, timeout=120)
    until(lambda: replicas_in_sync(cluster, changelog) == [3, 3, 3, 3], timeout=120)


def test_killing_the_group_coordinator_mid_stream(healthy, app_id, workers, tmp_path):
    cluster = healthy
    w = counter_on(cluster, workers, tmp_path, app_id)
    pid, group = w.pid, f"{app_id}-processors"
    victim = coordinator_of(cluster, group)
    stream_then(cluster, w, app_id, 12_000, lambda: cluster.kill(victim))
    assert coordinator_of(cluster, group) != victim
    assert_exact_within_the_bound(w, 12_000)
    assert_never_restarted(w, pid)


def test_a_worker_cut_off_from_every_broker_for_20_seconds_recovers_alone(
        healthy, app_id, workers, tmp_path):
    cluster = healthy

    def freeze_all():
        for node in cluster.nodes:
            cluster.pause(node.node_id)
        time.sleep(20)  # the outage itself: 20 s without any broker
        for node in cluster.nodes:
            cluster.resume(node.node_id)

    w = counter_on(cluster, workers, tmp_path, app_id)
    pid = w.pid
    stream_then(cluster, w, app_id, 8_000, freeze_all)
    assert_exact_within_the_bound(w, 8_000)
    assert_never_restarted(w, pid)
    w.wait_ready(timeout=60)


def test_a_broker_killed_under_gateway_load_leaves_no_request_unanswered(
        healthy, app_id, workers, tmp_path):
    cluster = healthy
    d = Deployment(cluster.url, app_id, workers, tmp_path, replication=3)
    d.start_echo()
    gw = d.start_gateway("gw0")
    until(d.settled)
    victim = leader_of(cluster, d.services["echo"], 0)
    rate, seconds, kill_at = 100, 15.0, 5.0

    async def run():
        loop = asyncio.get_running_loop()
        tasks = []
        async with session(60) as s:
            start, i, killed = loop.time(), 0, False
            while loop.time() - start < seconds:
                if not killed and loop.time() - start >= kill_at:
                    cluster.kill(victim)
                    killed = True
                # Every request due by now is sent (request i at start + i/rate), so a
                # loaded machine that wakes late still offers rate x seconds requests.
                while i < (loop.time() - start) * rate:
                    sent = loop.time()
                    tasks.append((i, sent, asyncio.create_task(call(
                        s, f"{gw.url}/api/echo/e{i}", "POST", {"n": i},
                        headers={"X-Timeout-Ms": "30000"}))))
                    i += 1
                await asyncio.sleep(1 / rate)
            return [(i, sent, await task, loop.time()) for i, sent, task in tasks]

    results = asyncio.run(run())
    assert len(results) > 1000
    late = [(i, done - sent) for i, sent, _, done in results if done - sent > 30]
    wrong = [(i, status, body) for i, _, (status, body, _), _ in results
             if (status, body) != (200, expected_echo("POST", f"e{i}", {}, {"n": i}))]
    assert late == [] and wrong == []


def test_a_changelog_compacted_by_the_broker_restores_exact_tables(
        healthy, app_id, workers, tmp_path):
    cluster = healthy
    topic, changelog = f"{app_id}-items", f"{app_id}-items-changelog"
    env = cluster_env(cluster, tmp_path / "a", CATALOG_APP_ID=app_id)
    keys = [f"i{k}" for k in range(100)]
    w = workers(CATALOG, env, "a")
    w.wait_ready(timeout=120)

    def value(key):
        status, body = w.get(f"/tables/items/keys/{key}")
        return body["value"] if status == 200 else None

    # Five rounds of every key, each committed before the next: five changelog records a key.
    for version in range(5):
        produce(cluster.bootstrap, topic, [(k, {"v": version}) for k in keys], replication=3)
        until(lambda: len(read_topic(cluster.bootstrap, changelog)) == 100 * (version + 1))
    assert all(value(k) == {"v": 4} for k in keys)
    gone = keys[:10]
    produce(cluster.bootstrap, topic, [(k, None) for k in gone], replication=3)
    until(lambda: all(value(k) is None for k in gone))

    async def compact_soon():
        async with admin_client(cluster.bootstrap) as admin:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, changelog, configs={
                "cleanup.policy": "compact", "segment.ms": "100",
                "min.cleanable.dirty.ratio": "0.01", "delete.retention.ms": "100",
                "min.compaction.lag.ms": "0"})])

    asyncio.run(compact_soon())
    rolls = iter(range(1_000_000))

    def compacted():
        # A write that finds its partition's active segment older than segment.ms rolls
        # it; the cleaner then compacts the closed segments.
        produce(cluster.bootstrap, topic, [(f"roll{next(rolls)}", {"v": -1}) for _ in range(8)],
                replication=3)
        records = read_topic(cluster.bootstrap, changelog)
        last: dict[int, int] = {}
        for r in records:
            last[r.partition] = max(last.get(r.partition, -1), r.offset)
        # The last record of a log is never compacted away, so last + 1 is what was
        # written: fewer records than that means the broker removed some.
        versions = [r for r in records if not r.key.startswith(b"roll")]
        removed = sum(o + 1 for o in last.values()) - len(records)
        return records if removed > 0 and len(versions) < 5 * len(keys) + len(gone) else None

    records = until(compacted, timeout=120, every=1.0)
    assert {r.key.decode() for r in records if r.value is not None} >= set(keys[10:])
    assert w.stop() == 0
    # A worker with an empty disk rebuilds the table from the compacted changelog alone.
    env_b = cluster_env(cluster, tmp_path / "b", CATALOG_APP_ID=app_id)
    b = workers(CATALOG, env_b, "b")
    b.wait_ready(timeout=120)
    for k in keys[10:]:
        status, body = b.get(f"/tables/items/keys/{k}")
        assert (status, body["value"]) == (200, {"v": 4}), (k, status, body)
    for k in gone:
        assert b.get(f"/tables/items/keys/{k}")[0] == 404
    rolled = {r.key.decode() for r in read_topic(cluster.bootstrap, topic)
              if r.key.decode().startswith("roll")}
    status, count = b.get("/tables/items/count")
    assert (status, count["count"]) == (200, 90 + len(rolled))
    assert "changelog records" in b.log_tail(200_000)


async def test_a_global_catch_up_after_its_sources_leader_was_killed_reads_on_the_new_leader(
        healthy, app_id, tmp_path):
    """A catch-up asks each partition's leader for its end in one request; with the leader
    of a partition dead (the probe's metadata still names it) that request fails, and the
    catch-up must read the usual way instead: every record acknowledged before it is in the
    table, within the catch-up's time, and once the client knows the new leaders a catch-up
    that finds nothing new reads nothing again."""
    cluster, topic, partitions = healthy, f"{app_id}-customers", 3
    await produce_async(cluster.bootstrap, topic, [(f"c{i}", {"n": i}) for i in range(30)],
                        partitions=partitions, replication=3)
    tables, probe, tail, _ = await open_tables(cluster.url, topic, tmp_path)
    table = tables.tables[0]
    try:
        assert await tables.start(probe, tail, {topic: partitions}) == 30
        assert await tables.catch_up(probe, tail, 10.0) and tables.catch_ups_read == 0

        victim = await asyncio.to_thread(leader_of, cluster, topic, 0)
        await asyncio.to_thread(cluster.kill, victim)

        def moved() -> bool:
            try:
                return leader_of(cluster, topic, 0) not in (victim, -1)
            except KafkaError:  # the admin client asked the dead node
                return False

        await asyncio.to_thread(until, moved)
        # Nothing new, the old leader still in the probe's metadata: correct, and in time.
        assert await tables.catch_up(probe, tail, 10.0)
        assert [table.get(f"c{i}") for i in range(30)] == [{"n": i} for i in range(30)]

        # Acknowledged by the partitions' leaders now (two replicas in sync of three).
        await produce_async(cluster.bootstrap, topic,
                            [(f"c{i}", {"n": -i}) for i in range(30)] + [("c100", {"n": 100})],
                            partitions=partitions, replication=3, idempotent=True)
        assert await tables.catch_up(probe, tail, 10.0)
        assert [table.get(f"c{i}") for i in range(30)] == [{"n": -i} for i in range(30)]
        assert table.get("c100") == {"n": 100}

        # The one-request path comes back: five catch-ups in a row that read nothing.
        quiet, deadline = 0, asyncio.get_running_loop().time() + 30
        while quiet < 5:
            assert asyncio.get_running_loop().time() < deadline, "every catch-up still reads"
            read = tables.catch_ups_read
            assert await tables.catch_up(probe, tail, 10.0)
            quiet = quiet + 1 if tables.catch_ups_read == read else 0
    finally:
        for client in (tail, probe):
            await stop_client(client)


async def test_once_a_topic_is_created_every_broker_lists_it(healthy, app_id):
    """A worker creates its topics, then subscribes; its consumer's next metadata request may
    go to any broker, and a group formed on metadata without a topic is assigned none of
    it until the client refreshes its metadata, minutes later. So topic creation returns
    only once every broker lists the topic: a metadata request to any one broker right
    after it names the topic's partitions."""
    cluster = healthy
    async with admin_client(cluster.bootstrap) as admin:
        for i in range(10):
            topic = f"{app_id}-t{i}"
            assert await ensure_topic(cluster.bootstrap, topic, 4, replication=3) == 4
            for node in cluster.nodes:
                answer = await admin._client.send(
                    node.node_id, MetadataRequest([topic], allow_auto_topic_creation=False))
                (listed,) = answer.to_object()["topics"]
                assert (listed["error_code"], len(listed["partitions"])) == (0, 4), \
                    (topic, node.node_id, listed)
