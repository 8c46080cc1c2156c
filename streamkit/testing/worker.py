"""Worker processes for tests: streamkit.worker_process.WorkerProcess, re-exported."""
from ..worker_process import WorkerProcess

__all__ = ["WorkerProcess"]
