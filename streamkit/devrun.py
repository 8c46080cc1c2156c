"""`streamkit dev APP_MODULE...`: a local broker and one worker per app, until Ctrl-C.

The broker is Apache Kafka (one KRaft node, topics kept under <state dir>/kafka) where Java
17+ is installed, else the in-memory dev broker (`--broker kafka|dev` chooses; with
STREAMKIT_BROKER set, that broker is used and none is started). Workers start one after
another, each waiting for /ready, because the dev broker's group coordinator copes badly
with several groups rebalancing at once. A worker that
exits is started again after a back-off (1 s, doubling up to 30 s; reset once it has run
for a minute), and the others keep running: with the in-memory dev broker, stopping
everything would lose every topic. Only Ctrl-C (or SIGTERM) stops them all.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from . import devbroker, kafkabroker
from .errors import BrokerStartError
from .worker_process import WorkerProcess

Broker = devbroker.DevBroker | kafkabroker.KafkaCluster

MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0  # a worker up this long is healthy again: its back-off starts over


def stop_on_signals() -> Callable[[], bool]:
    """Catch SIGINT and SIGTERM; the returned function says whether one arrived."""
    flag = {"now": False}

    def _stop(*_):
        flag["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return lambda: flag["now"]


def broker_alive(broker: Broker) -> bool:
    if isinstance(broker, kafkabroker.KafkaCluster):
        return all(n.alive() for n in broker.nodes)
    return broker.alive()


def say(message: str, err: bool = False) -> None:
    print(message, file=sys.stderr if err else sys.stdout, flush=True)


@dataclass
class Supervised:
    """A worker and its restart state."""

    worker: WorkerProcess
    started_at: float = field(default_factory=time.monotonic)
    failures: int = 0
    restart_at: float | None = None

    def check(self, now: float) -> None:
        """Notice an exit and schedule a restart; restart when its time has come."""
        w = self.worker
        if self.restart_at is None:
            if w.alive():
                return
            if now - self.started_at >= STABLE_AFTER_S:
                self.failures = 0
            delay = min(MAX_BACKOFF_S, 2.0 ** self.failures)
            self.failures += 1
            self.restart_at = now + delay
            say(f"worker {w.module} (pid {w.pid}) exited with code {w.returncode}; "
                f"restarting in {delay:.0f}s (log {w.log_path})", err=True)
        elif now >= self.restart_at:
            w.start()
            self.started_at, self.restart_at = now, None
            say(f"worker {w.module} restarted (pid {w.pid}, log {w.log_path})", err=True)


def kafka_available() -> str | None:
    """Why Apache Kafka cannot run here, or None when it can (Java 17+, and Maven or the
    jars assembled before)."""
    try:
        kafkabroker.find_java()
    except BrokerStartError as exc:
        return str(exc)
    if (kafkabroker.cache_dir() / "complete").exists() or os.environ.get("STREAMKIT_KAFKA_HOME"):
        return None
    return None if shutil.which("mvn") else "mvn not found (Maven fetches Kafka once)"


def start_broker(kind: str, port: int, root: Path) -> tuple[Broker, str] | None:
    """Start the broker `kind` (auto, kafka or dev) on port; (broker, profile), or None
    after saying why it could not start."""
    if kind == "auto":
        why_not = kafka_available()
        kind = "kafka" if why_not is None else "dev"
        if why_not:
            say(f"Apache Kafka cannot run here ({why_not}); using the dev broker")
    try:
        if kind == "kafka":
            cluster = kafkabroker.start_kafka(1, port=port, data_dir=root / "kafka",
                                              on_download=say)
            say(f"broker      Apache Kafka {cluster.version} at {cluster.url} (KRaft, pid "
                f"{cluster.pids[0]}, heap {cluster.heap_mb} MB, data {root / 'kafka'})")
            return cluster, "dev"
        b = devbroker.start(port=port, log_dir=str(root / "logs"))
        say(f"broker      dev broker at {b.url} (pid {b.pid}, topics in memory only)")
        return b, "devbroker"
    except BrokerStartError as exc:
        say(f"streamkit dev: {exc}", err=True)
        return None


def run(modules: list[str], base_port: int = 6066, state_dir: str = ".run",
        gateway: str | None = None, gateway_port: int = 8080, broker_kind: str = "auto",
        broker_port: int = 9092) -> int:
    root = Path(state_dir)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    broker: Broker | None = None
    env = dict(os.environ)
    if "STREAMKIT_BROKER" not in env:
        started = start_broker(broker_kind, broker_port, root)
        if started is None:
            return 1
        broker, profile = started
        env["STREAMKIT_BROKER"] = broker.url
        env.setdefault("STREAMKIT_PROFILE", profile)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    supervised: list[Supervised] = []
    stopped = stop_on_signals()
    code = 0
    try:
        ports = [base_port + i for i in range(len(modules))]
        if gateway:
            # The gateway goes last, so that its /ready means the whole system is up.
            modules, ports = [*modules, gateway], [*ports, gateway_port]
        for module, port in zip(modules, ports):
            name = module.replace(".", "-")
            w = WorkerProcess(module, {**env, "STREAMKIT_WEB_PORT": str(port),
                                       "STREAMKIT_DATA_DIR": str(root / "data" / name)},
                              root / "logs" / f"{name}.log")
            supervised.append(Supervised(w.start()))
            w.wait_ready(timeout=120)
            say(f"worker      {module:28s} {w.url}  (pid {w.pid}, log {w.log_path})")
        say("\nready. Try:")
        if gateway:
            gw = supervised[-1].worker.url
            say(f"  curl {gw}/ready\n  curl {gw}/apps\n  curl {gw}/ui\n  make demo")
        else:
            for s in supervised:
                say(f"  curl {s.worker.url}/ready")
        say("A worker that exits is restarted. Stop everything with Ctrl-C.")
        while not stopped():
            if broker is not None and not broker_alive(broker):
                say("the broker exited; see its log under " + str(root), err=True)
                code = 1
                break
            now = time.monotonic()
            for s in supervised:
                s.check(now)
            time.sleep(0.2)
    finally:
        for s in reversed(supervised):
            s.worker.stop()
        if broker is not None:
            broker.stop()
        say("stopped.")
    return code
