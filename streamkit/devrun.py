"""`streamkit dev APP_MODULE...`: the dev broker and one worker per app, until Ctrl-C.

Workers start one after another, each waiting for /ready, because the dev broker's
group coordinator copes badly with several groups rebalancing at once.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from . import devbroker
from .config import DEFAULT_BROKER
from .errors import BrokerStartError
from .testing.worker import WorkerProcess


def stop_on_signals() -> Callable[[], bool]:
    """Catch SIGINT and SIGTERM; the returned function says whether one arrived."""
    flag = {"now": False}

    def _stop(*_):
        flag["now"] = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    return lambda: flag["now"]


def run(modules: list[str], base_port: int = 6066, state_dir: str = ".run",
        gateway: str | None = None, gateway_port: int = 8080) -> int:
    root = Path(state_dir)
    (root / "logs").mkdir(parents=True, exist_ok=True)
    broker = None
    env = dict(os.environ)
    if "STREAMKIT_BROKER" not in env:
        try:
            broker = devbroker.start(port=9092, log_dir=str(root / "logs"))
        except BrokerStartError as exc:
            print(f"streamkit dev: {exc}", file=sys.stderr)
            return 1
        env["STREAMKIT_BROKER"] = DEFAULT_BROKER
        print(f"dev broker  {broker.url} (pid {broker.pid}, topics in memory only)", flush=True)
    env.setdefault("STREAMKIT_PROFILE", "dev")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.getcwd(), env.get("PYTHONPATH")]))
    workers: list[WorkerProcess] = []
    stopped = stop_on_signals()
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
            workers.append(w.start())
            w.wait_ready(timeout=120)
            print(f"worker      {module:28s} {w.url}  (log {w.log_path})", flush=True)
        print("\nready. Try:", flush=True)
        if gateway:
            gw = workers[-1].url
            print(f"  curl {gw}/ready\n  curl {gw}/apps\n  curl {gw}/ui\n  make demo", flush=True)
        else:
            for w in workers:
                print(f"  curl {w.url}/ready", flush=True)
        print("Stop with Ctrl-C.", flush=True)
        while not stopped() and all(w.alive() for w in workers):
            time.sleep(0.2)
        for w in workers:
            if not w.alive():
                print(f"worker {w.module} exited; see {w.log_path}", file=sys.stderr)
    finally:
        for w in reversed(workers):
            w.stop()
        if broker is not None:
            broker.stop()
        print("stopped.", flush=True)
    return 0
