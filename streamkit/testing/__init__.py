"""Testing streamkit apps: the in-process TopologyTestDriver (docs/testing.md), the pytest
fixtures (`pytest_plugins = ["streamkit.testing.pytest_plugin"]`: a broker per session, an
app id per test, worker processes stopped by PID), and helpers that produce to and read
from topics. Nothing shipped imports this package."""
from typing import Any

from ..worker_process import WorkerProcess
from .driver import OutputRecord, TopologyTestDriver
from .kafka import produce, read_topic

__all__ = ["TopologyTestDriver", "OutputRecord", "WorkerProcess", "produce", "read_topic",
           "broker", "app_id", "workers"]

_FIXTURES = ("broker", "app_id", "workers")


def __getattr__(name: str) -> Any:
    # The fixtures need pytest; the driver and the topic helpers do not (benchmarks and
    # scripts use them without it).
    if name in _FIXTURES:
        from . import pytest_plugin
        return getattr(pytest_plugin, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
