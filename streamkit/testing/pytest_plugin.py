"""pytest fixtures: one dev broker per test session, and workers stopped by PID.

Use with `pytest_plugins = ["streamkit.testing.pytest_plugin"]` in a conftest.py.
Set STREAMKIT_TEST_BROKER=host:port to run the tests against another broker instead.
"""
from __future__ import annotations

import os
import uuid
from typing import Callable, Iterator

import pytest

from .. import devbroker
from .worker import WorkerProcess


@pytest.fixture(scope="session")
def broker() -> Iterator[str]:
    """bootstrap address (host:port) of the session's broker."""
    external = os.environ.get("STREAMKIT_TEST_BROKER")
    if external:
        yield external
        return
    b = devbroker.start()
    try:
        yield b.bootstrap
    finally:
        b.stop()


@pytest.fixture
def app_id(request: pytest.FixtureRequest) -> str:
    """An app id (and topic prefix) of this test's own."""
    name = request.node.name.replace("[", "-").replace("]", "").replace("_", "-")[:40]
    return f"t-{name}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def workers(tmp_path) -> Iterator[Callable[..., WorkerProcess]]:
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
