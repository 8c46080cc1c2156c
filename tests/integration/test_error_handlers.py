"""The error handlers on Apache Kafka with real worker processes: a record the broker
refuses (larger than its topic's max.message.bytes) under `continue` and `fail`, and the
uncaught-exception policies `replace` and `shutdown_app`."""
from __future__ import annotations

import asyncio

import orjson
from aiokafka.admin import NewTopic

from streamkit.testing.kafka import (admin_client, committed_and_end, ensure_topic, produce,
                                     read_topic)
from tests.oracles import kafka_partition

from .conftest import metric, metrics_text, worker_env
from .test_tables import wait_for

ERRORS = "tests.integration.apps.errors"
LIMIT = 1024  # max.message.bytes of the sinks: a 3000-byte text does not fit


async def create_small_topics(broker: str, *topics: str) -> None:
    async with admin_client(broker) as admin:
        await admin.create_topics([NewTopic(t, 1, 1, topic_configs={
            "max.message.bytes": str(LIMIT)}) for t in topics])


def records_of(broker: str, topic: str, n: int):
    """The records of topic once it has at least n (None before)."""
    records = read_topic(broker, topic)
    return records if len(records) >= n else None


def test_a_refused_record_is_dead_lettered_under_continue_and_stops_the_worker_under_fail(
        broker, app_id, workers, tmp_path):
    labels, kept, strict = (f"{app_id}-{t}" for t in ("labels", "kept", "strict"))
    group, dead = f"{app_id}-processors", f"{app_id}-dead-letters"
    asyncio.run(create_small_topics(broker, kept, strict))
    produce(broker, labels, [("a", {"sink": "kept", "text": "a"}),
                             ("b", {"sink": "kept", "text": "x" * 3000}),
                             ("c", {"sink": "kept", "text": "c"})], partitions=1)
    w = workers(ERRORS, worker_env(broker, tmp_path / "data", ERRORS_APP_ID=app_id,
                                   STREAMKIT_PARTITIONS="1"))
    w.wait_ready()

    # continue: the refused record goes to the dead letters, the others to their topic.
    out = wait_for(lambda: records_of(broker, kept, 2))
    assert [(r.key, r.value) for r in out] == [(b"a", b'"a"'), (b"c", b'"c"')]
    [letter] = wait_for(lambda: records_of(broker, dead, 1))
    assert (letter.key, letter.value) == (b"b", orjson.dumps("x" * 3000))
    headers = dict(letter.headers)
    assert (headers["streamkit.stage"], headers["streamkit.sink.topic"],
            headers["streamkit.sink.partition"]) == (b"produce", kept.encode(), b"0")
    assert b"MessageSizeTooLargeError" in headers["streamkit.error"]
    wait_for(lambda: asyncio.run(committed_and_end(broker, group, labels))[0] == {0: 3})
    assert metric(metrics_text(w), "streamkit_production_errors_total", topic=kept) == 1

    # fail: the worker stops, and nothing from the refused record on is committed.
    produce(broker, labels, [("d", {"sink": "strict", "text": "y" * 3000}),
                             ("e", {"sink": "strict", "text": "e"})], partitions=1)
    wait_for(lambda: not w.alive())
    assert w.returncode != 0
    log = w.log_tail(200_000)
    assert "ProductionFailed" in log and f"{strict}[0] refused a record (key b'd'" in log
    assert asyncio.run(committed_and_end(broker, group, labels)) == ({0: 3}, {0: 5})
    assert read_topic(broker, strict) == []
    assert len(read_topic(broker, dead)) == 1


def test_a_refused_record_under_exactly_once_stops_the_worker_and_commits_nothing_of_it(
        broker, app_id, workers, tmp_path):
    # Its transaction aborts and the policy (fail) stops the worker: no output of the
    # transaction becomes visible and the input offsets stay before the refused record.
    labels, strict, group = f"{app_id}-labels", f"{app_id}-strict", f"{app_id}-processors"
    asyncio.run(create_small_topics(broker, f"{app_id}-kept", strict))
    produce(broker, labels, [("a", {"sink": "strict", "text": "a"}),
                             ("d", {"sink": "strict", "text": "y" * 3000}),
                             ("e", {"sink": "strict", "text": "e"})], partitions=1)
    w = workers(ERRORS, worker_env(broker, tmp_path / "data", ERRORS_APP_ID=app_id,
                                   STREAMKIT_PARTITIONS="1", ERRORS_KEPT_POLICY="fail",
                                   STREAMKIT_PROCESSING_GUARANTEE="exactly_once"))
    wait_for(lambda: not w.alive(), timeout=60)
    assert w.returncode != 0
    log = w.log_tail(200_000)
    assert "ProductionFailed" in log and f"{strict}[0] refused" in log
    committed, ends = asyncio.run(committed_and_end(broker, group, labels))
    done = committed.get(0) or 0
    assert ends == {0: 3} and done <= 1  # never past the refused record, at offset 1
    visible = read_topic(broker, strict, isolation_level="read_committed")
    assert [(r.key, r.value) for r in visible] == [(b"a", b'"a"')][:done]


def total(worker, key: str):
    """key's value in the totals table, read through worker (None while it is not
    served: the worker answers 503 while its tasks start again)."""
    status, body = worker.get(f"/tables/totals/keys/{key}")
    return body["value"] if status == 200 else None


def key_in(partition: int, partitions: int, prefix: str) -> str:
    return next(k for k in (f"{prefix}{i}" for i in range(1000))
                if kafka_partition(k.encode(), partitions) == partition)


def test_uncaught_errors_replace_the_tasks_or_stop_every_worker_of_the_app(
        broker, app_id, workers, tmp_path):
    events, group = f"{app_id}-events", f"{app_id}-processors"
    asyncio.run(ensure_topic(broker, events, 2))

    def env(name: str, policy: str) -> dict[str, str]:
        return worker_env(broker, tmp_path / f"data-{name}", ERRORS_APP_ID=app_id,
                          STREAMKIT_PARTITIONS="2", STREAMKIT_ON_UNCAUGHT_ERROR=policy)

    a = workers(ERRORS, env("a", "replace"), "a")
    a.wait_ready()
    b = workers(ERRORS, env("b", "shutdown_app"), "b")
    b.wait_ready()
    _, topology = a.get("/topology")
    [g] = [s["id"] for s in topology["sub_topologies"] if s["sources"] == [events]]
    owned = {}
    for w in (a, b):
        wait_for(lambda w=w: [p for gg, p in w.tasks() if gg == g])
        [owned[w.url]] = [p for gg, p in w.tasks() if gg == g]
    key_a, key_b = key_in(owned[a.url], 2, "a"), key_in(owned[b.url], 2, "b")

    # replace: the adder fails once on a's record 5; a gives its tasks up, starts them
    # again from the last commit, and every record is counted once.
    pid = a.pid
    produce(broker, events, [(key_a, {"id": f"r{i}", "amount": i, "fail": i == 5})
                             for i in range(10)], partitions=2)
    want = {"count": 10, "sum": 45}
    wait_for(lambda: total(a, key_a) == want)
    wait_for(lambda: asyncio.run(committed_and_end(broker, group, events))[0][owned[a.url]]
             == 10)
    assert total(a, key_a) == total(b, key_a) == want  # b reads it from a
    assert a.alive() and a.pid == pid
    log = a.log_tail(200_000)
    assert "the adder fails on r5" in log and "start again from their last commit" in log
    assert metric(metrics_text(a), "streamkit_task_replacements_total") == 1

    # shutdown_app: the adder fails on b's record; b asks the group, and both stop.
    produce(broker, events, [(key_b, {"id": "s0", "amount": 1, "fail": True})], partitions=2)
    wait_for(lambda: not a.alive() and not b.alive(), timeout=60)
    assert a.returncode != 0 and b.returncode != 0
    for w in (a, b):
        assert f"worker {b.url} met an error it could not handle" in w.log_tail(200_000)
    assert "the adder fails on s0" in b.log_tail(200_000)
