"""`streamkit kafka` and start_kafka(): a real Apache Kafka (KRaft) JVM on loopback.

The first run assembles Kafka's jars from Maven Central into the user's cache (needs Java 17+,
Maven and the network once); later runs are offline.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import NewTopic
from aiokafka.errors import KafkaTimeoutError, UnknownTopicOrPartitionError

from streamkit import BrokerStartError
from streamkit.config import Settings
from streamkit.devbroker import free_port
from streamkit.kafkabroker import kafka_libs, start_kafka
from streamkit.testing.kafka import admin_client, produce, read_topic, topic_names

READY = re.compile(r"Apache Kafka (\S+) ready at (\S+) \((\d+) nodes?, KRaft, pids ([\d,]+), "
                   r"heap (\d+) MB each\); STREAMKIT_BROKER=(\S+)")


def pid_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


async def create_topic(bootstrap: str, topic: str, partitions: int = 1) -> None:
    async with admin_client(bootstrap) as admin:
        await admin.create_topics([NewTopic(topic, partitions, 1)])


async def groups_commit_and_no_auto_creation(bootstrap: str) -> None:
    await create_topic(bootstrap, "orders", partitions=2)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=2000)
    await producer.start()
    try:
        for i in range(3):
            await producer.send_and_wait("orders", f"v{i}".encode(), key=f"k{i}".encode())
        # The broker answers UNKNOWN_TOPIC_OR_PARTITION instead of creating the topic: the
        # producer gives up once its metadata wait (request_timeout_ms) runs out.
        with pytest.raises((UnknownTopicOrPartitionError, KafkaTimeoutError)):
            await producer.send_and_wait("no-such-topic", b"lost")
    finally:
        await producer.stop()
    assert "no-such-topic" not in await topic_names(bootstrap)

    consumer = AIOKafkaConsumer("orders", bootstrap_servers=bootstrap, group_id="g1",
                                auto_offset_reset="earliest", enable_auto_commit=False,
                                session_timeout_ms=4000, heartbeat_interval_ms=1000)
    await consumer.start()
    try:
        got: list[bytes] = []
        deadline = time.monotonic() + 20
        while len(got) < 3 and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            got += [r.value for recs in batches.values() for r in recs]
        assert sorted(got) == [b"v0", b"v1", b"v2"]
        await consumer.commit()
        committed = [await consumer.committed(TopicPartition("orders", p)) or 0 for p in (0, 1)]
        assert sum(committed) == 3
    finally:
        await consumer.stop()


def test_one_node_serves_groups_never_auto_creates_and_stops_by_pid():
    started = time.monotonic()
    cluster = start_kafka()
    took = time.monotonic() - started
    pids, data_dir = cluster.pids, cluster.data_dir
    try:
        assert len(pids) == 1 and cluster.nodes[0].alive()
        assert cluster.bootstrap == f"127.0.0.1:{cluster.nodes[0].port}"
        assert Settings(broker=cluster.url).bootstrap_servers == [cluster.bootstrap]
        assert took < 30, f"a 1-node start took {took:.1f}s"
        asyncio.run(groups_commit_and_no_auto_creation(cluster.bootstrap))
        assert "INFO" in cluster.nodes[0].log_path.read_text()  # log4j2 writes the node's log
    finally:
        cluster.stop()
    assert all(pid_gone(pid) for pid in pids)
    assert not cluster.nodes[0].alive()
    assert not data_dir.exists()  # a temporary data dir goes with the cluster


def test_cli_runs_kafka_until_sigint_and_stops_its_jvm():
    port = free_port()
    cli = subprocess.Popen([sys.executable, "-m", "streamkit.cli", "kafka", "--port", str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        lines = []
        for line in cli.stdout:  # the CLI prints the ready line or exits
            lines.append(line)
            if m := READY.search(line):
                break
        else:
            pytest.fail(f"no ready line: {''.join(lines)} {cli.stderr.read()}")
        version, bootstrap, nodes, pid_list, heap, url = m.groups()
        pids = [int(p) for p in pid_list.split(",")]
        assert bootstrap == f"127.0.0.1:{port}" and nodes == "1" and heap == "512"
        assert url == f"kafka://127.0.0.1:{port}" and version == "4.4.0"

        asyncio.run(create_topic(bootstrap, "cli-topic"))
        produce(bootstrap, "cli-topic", [("k", {"n": 1})])
        records = read_topic(bootstrap, "cli-topic")
        assert [(r.key, r.value) for r in records] == [(b"k", b'{"n":1}')]

        cli.send_signal(signal.SIGINT)
        assert cli.wait(timeout=60) == 0
        assert all(pid_gone(pid) for pid in pids)
    finally:
        if cli.poll() is None:
            cli.send_signal(signal.SIGINT)
            cli.wait(timeout=60)
        for pid in pids:  # the CLI's JVMs, should it have failed to stop them
            if not pid_gone(pid, within=0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty PATH, an empty cache, and no Java or Kafka from the environment."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.delenv("STREAMKIT_KAFKA_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_missing_java_or_maven_says_what_to_install(tmp_path, monkeypatch):
    empty_path(tmp_path, monkeypatch)
    with pytest.raises(BrokerStartError, match=r"java not found.*Java 17 or newer and Maven"):
        start_kafka()
    # The command says the same and exits 1.
    cli = subprocess.run([sys.executable, "-m", "streamkit.cli", "kafka"], capture_output=True,
                         text=True, timeout=60)
    assert cli.returncode == 1 and "java not found" in cli.stderr and "Traceback" not in cli.stderr


def test_missing_maven_for_a_first_assembly_says_what_to_install(tmp_path, monkeypatch):
    java = os.path.realpath(shutil.which("java") or "java")
    empty_path(tmp_path, monkeypatch)
    monkeypatch.setenv("JAVA_HOME", str(Path(java).parents[1]))  # <home>/bin/java
    with pytest.raises(BrokerStartError, match=r"mvn not found.*Maven Central"):
        start_kafka()
    monkeypatch.setenv("STREAMKIT_KAFKA_HOME", str(tmp_path))
    with pytest.raises(BrokerStartError, match="STREAMKIT_KAFKA_HOME.*no kafka_2.13"):
        kafka_libs()
