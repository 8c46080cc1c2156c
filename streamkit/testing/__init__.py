"""Testing streamkit apps: the in-process TopologyTestDriver (docs/testing.md), the pytest
fixtures (`pytest_plugins = ["streamkit.testing.pytest_plugin"]`: a broker per session, an
app id per test, worker processes stopped by PID), and helpers that produce to and read
from topics. Nothing shipped imports this package."""
from ..worker_process import WorkerProcess
from .driver import OutputRecord, TopologyTestDriver
from .kafka import produce, read_topic
from .pytest_plugin import app_id, broker, workers

__all__ = ["TopologyTestDriver", "OutputRecord", "WorkerProcess", "produce", "read_topic",
           "broker", "app_id", "workers"]
