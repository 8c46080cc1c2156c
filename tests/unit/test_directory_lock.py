"""The state directory's lock: one holder at a time, refused at once with the holder's PID,
and free again once its holder lets it go or its process ends."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import streamkit
from streamkit import StateDirectoryInUse
from streamkit.state.directory_lock import DirectoryLock


def test_a_second_holder_is_refused_with_the_first_ones_pid_until_it_lets_go(tmp_path):
    first, second = DirectoryLock(tmp_path / "app"), DirectoryLock(tmp_path / "app")
    first.acquire()
    assert (tmp_path / "app" / ".lock").read_text() == f"{os.getpid()}\n"
    with pytest.raises(StateDirectoryInUse, match=r"app is in use by this process"):
        second.acquire()
    assert first.held and not second.held
    other = DirectoryLock(tmp_path / "other")
    other.acquire()  # another directory is another lock
    other.release()
    first.release()
    second.acquire()
    assert second.held
    second.release()


def test_the_lock_of_a_killed_process_is_free_at_once(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from streamkit.state.directory_lock import DirectoryLock; "
         f"DirectoryLock({str(tmp_path / 'app')!r}).acquire(); print('held', flush=True); "
         "sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(Path(streamkit.__file__).parents[1])})
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(StateDirectoryInUse, match=rf"\(pid {holder.pid}\)"):
            DirectoryLock(tmp_path / "app").acquire()
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        lock = DirectoryLock(tmp_path / "app")
        lock.acquire()
        assert lock.held
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait(10)
