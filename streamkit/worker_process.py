"""A `faust -A <module> worker` process: start it, wait for /ready, stop it by its PID
(used by `streamkit dev` and by the tests)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Mapping


class WorkerProcess:
    """One worker process this process started (stop it in a finally block)."""

    def __init__(self, module: str, env: Mapping[str, str], log_path: Path,
                 cwd: str | None = None) -> None:
        self.module, self.log_path, self.cwd = module, Path(log_path), cwd
        self.env = {**os.environ, **env}
        self.port = int(self.env["STREAMKIT_WEB_PORT"])
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = self.env.get("STREAMKIT_API_TOKEN") or None
        self.proc: subprocess.Popen | None = None

    def start(self) -> "WorkerProcess":
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "faust", "-A", self.module, "worker", "-l", "info",
                 "--web-port", str(self.port)],
                env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.cwd, start_new_session=True)
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self._running().pid

    def _running(self) -> subprocess.Popen:
        assert self.proc is not None, "the worker was never started"
        return self.proc

    @property
    def returncode(self) -> int | None:
        """The exit code, once the process has ended."""
        return None if self.proc is None else self.proc.poll()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> dict:
        """Poll /ready until it answers 200; raise with the log tail if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"worker exited ({self._running().returncode}):\n"
                                   f"{self.stop_cause()}{self.log_tail()}")
            status, body = self.get("/ready")
            if status == 200:
                return body
            time.sleep(0.1)
        raise TimeoutError(f"worker not ready after {timeout}s:\n{self.log_tail()}")

    def tasks(self) -> list:
        """The tasks this worker runs, from one /ready answer; [] while it is not ready."""
        status, body = self.get("/ready")
        return body["tasks"] if status == 200 else []

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, Any]:
        """GET path (with the worker's own token, if it has one); (status, decoded JSON
        body), or (0, None) when nothing answers."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.url + path, headers=headers),
                                        timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            body = err.read()
            try:
                return err.code, json.loads(body or b"null")
            except ValueError:
                return err.code, body.decode(errors="replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return 0, None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM and wait (SIGKILL after timeout); returns the exit code."""
        if not self.alive():
            return None if self.proc is None else self.proc.returncode
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self._running().wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self._running().returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self._running().wait(10)

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop_cause(self, n: int = 3000) -> str:
        """The log from the error that stopped the worker on (n characters at most), and a
        separator; empty if it has none: the last error logged before the worker began
        to stop. A worker that fails at start logs its way out after the cause, so the
        tail alone may not show it."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        head = text.split("]: Stopping...", 1)[0]
        at = max(head.rfind("[ERROR]"), head.rfind("[CRITICAL]"))
        if at < 0:
            at = head.rfind("Traceback")
        return "" if at < 0 else f"{text[at:at + n]}\n...\n"
