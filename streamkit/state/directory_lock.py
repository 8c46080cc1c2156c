"""One worker per state directory: `<data dir>/<app id>` is locked while a worker of the app
uses it.

Two workers of an app given one data directory would each open the RocksDB stores of the
partitions the group gives them, and fail, or not, depending on which partitions move
between them: RocksDB refuses a store another process has open, and the worker that meets
it stops half way with an I/O error about a LOCK file. The lock turns that into a refusal
at start, naming the directory and the worker that holds it (Kafka Streams refuses a
second instance in its state directory the same way). It is an advisory lock (flock) on
`<app dir>/.lock`, which the kernel lets go of when its process ends however it ends, so a
worker killed by SIGKILL is restarted on its directory at once (unless a process forked
from it without exec, which shares the lock, outlives it). Stateless apps (a gateway) take
no lock."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import StateDirectoryInUse

LOCK_FILE = ".lock"


class DirectoryLock:
    """The lock of one state directory, held by this process between acquire() and
    release()."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StateDirectoryInUse at once if another worker holds it."""
        if self._fd is not None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            who = ("this process (the app was started twice in it)"
                   if holder == str(os.getpid()) else f"another worker of this app (pid {holder})")
            raise StateDirectoryInUse(
                f"the state directory {self.directory} is in use by {who}; give each "
                "worker of an app its own STREAMKIT_DATA_DIR") from None
        except BaseException:
            os.close(fd)
            raise
        # Who holds it, for the message above (the lock, not this text, is what counts).
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor of the lock lets it go

    @property
    def held(self) -> bool:
        return self._fd is not None
