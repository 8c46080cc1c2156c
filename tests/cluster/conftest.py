"""A three-node Apache Kafka cluster (KRaft, replication 3, min.insync.replicas 2) for the
tests of this folder, and helpers to find and fail its brokers."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from streamkit.devbroker import free_port
from streamkit.kafkabroker import KafkaCluster, start_kafka
from streamkit.testing.kafka import admin_client

ROOT = str(Path(__file__).resolve().parents[2])

# Faster failure detection than Kafka's defaults (9 s to fence a broker, 30 s to drop a
# replica from the ISR), so that a test sees a failover within seconds; the cleaner looks
# for work often, so that compaction happens within a test.
OVERRIDES = {"broker.session.timeout.ms": 4000, "broker.heartbeat.interval.ms": 1000,
             "replica.lag.time.max.ms": 5000, "log.cleaner.backoff.ms": 200}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> KafkaCluster:
    c = start_kafka(3, data_dir=tmp_path_factory.mktemp("kafka3"), overrides=OVERRIDES,
                    timeout=120)
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def healthy(cluster):
    """The cluster with every node up before and after the test (a test may kill or pause
    nodes; they are brought back for the next one)."""
    heal(cluster)
    yield cluster
    heal(cluster)


def heal(cluster: KafkaCluster) -> None:
    for node in cluster.nodes:
        cluster.resume(node.node_id)
        if not node.alive():
            cluster.restart(node.node_id, timeout=120)
    cluster.wait_ready(120)


def cluster_env(cluster: KafkaCluster, data_dir: Path, **extra: str) -> dict[str, str]:
    """A worker on the cluster: every node as a bootstrap server, three copies of every
    topic it creates."""
    return {"STREAMKIT_BROKER": cluster.url, "STREAMKIT_REPLICATION_FACTOR": "3",
            "STREAMKIT_DATA_DIR": str(data_dir), "STREAMKIT_WEB_PORT": str(free_port()),
            "PYTHONPATH": ROOT, **extra}


def leader_of(cluster: KafkaCluster, topic: str, partition: int) -> int:
    async def ask():
        async with admin_client(cluster.bootstrap) as admin:
            (desc,) = await admin.describe_topics([topic])
            return next(p["leader"] for p in desc["partitions"] if p["partition"] == partition)
    return asyncio.run(ask())


def coordinator_of(cluster: KafkaCluster, group: str) -> int:
    async def ask():
        async with admin_client(cluster.bootstrap) as admin:
            return await admin.find_coordinator(group)
    return asyncio.run(ask())


def replicas_in_sync(cluster: KafkaCluster, topic: str) -> list[int]:
    """The ISR size of each partition of topic."""
    async def ask():
        async with admin_client(cluster.bootstrap) as admin:
            (desc,) = await admin.describe_topics([topic])
            return [len(p["isr"]) for p in sorted(desc["partitions"], key=lambda p: p["partition"])]
    return asyncio.run(ask())


def until(fn, timeout: float = 60.0, every: float = 0.2):
    """fn()'s first truthy result; AssertionError with the last one after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met in {timeout}s; last value {last!r}")
