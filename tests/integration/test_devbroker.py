import re
import signal
import subprocess
import sys
import threading

import pytest

from streamkit import BrokerStartError, devbroker
from streamkit.devbroker import free_port
from tests.apps.test_devrun import alive

from .test_tables import wait_for

READY = re.compile(r"^dev broker ready at kafka://127\.0\.0\.1:(\d+) \(pid (\d+)\)")


def test_dev_broker_starts_answers_and_stops_by_pid():
    b = devbroker.start()
    try:
        assert b.alive()
        assert devbroker.metadata_answers(b.host, b.port)
        with pytest.raises(BrokerStartError, match="already in use"):
            devbroker.start(port=b.port)
    finally:
        b.stop()
    assert not b.alive()
    assert not devbroker.metadata_answers(b.host, b.port, timeout=0.5)


def broker_command(port: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "streamkit.cli", "broker", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


class BrokerCommand:
    """A `streamkit broker --port N` process and the lines it prints."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamkit.cli", "broker", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []

    def ready(self) -> int:
        """The PID of the broker it started, once it says it is ready on its port."""
        threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True).start()
        found = wait_for(lambda: next(filter(None, map(READY.match, list(self.lines))), None),
                         timeout=30, every=0.05)
        assert int(found[1]) == self.port
        return int(found[2])

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def test_streamkit_broker_command_serves_its_port_until_sigint_or_sigterm_stops_it():
    commands = [BrokerCommand(free_port()), BrokerCommand(free_port())]
    try:
        pids = [c.ready() for c in commands]
        for c, pid in zip(commands, pids):
            assert alive(pid) and devbroker.metadata_answers("127.0.0.1", c.port)
        # Another one on a port in use says so and exits.
        taken = subprocess.run([sys.executable, "-m", "streamkit.cli", "broker", "--port",
                                str(commands[0].port)], capture_output=True, text=True, timeout=60)
        assert taken.returncode == 1 and "already in use" in taken.stderr, taken
        for c, sig in zip(commands, (signal.SIGINT, signal.SIGTERM)):
            c.proc.send_signal(sig)
            assert c.proc.wait(30) == 0
    finally:
        for c in commands:
            c.kill()
    # The brokers they started are stopped too, and their ports are free again.
    for c, pid in zip(commands, pids):
        assert not alive(pid)
        assert not devbroker.metadata_answers("127.0.0.1", c.port, timeout=0.5)
