"""The whole system (customer, basket, orders, gateway) on the real broker, under a prefix
of the test's own."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from streamkit.devbroker import free_port
from streamkit.testing.pytest_plugin import broker_kind

ROOT = str(Path(__file__).resolve().parents[2])
SERVICES = ["apps.customer.app", "apps.basket.app", "apps.orders.app"]


def eventually(fn, timeout: float = 30.0):
    """fn()'s first truthy result, or its last result once timeout has passed."""
    deadline = time.monotonic() + timeout
    while True:
        result = fn()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


class System:
    def __init__(self, gateway, prefix: str, workers: list, start_worker) -> None:
        self.gateway, self.prefix, self.workers = gateway, prefix, workers
        self._start_worker = start_worker

    def call(self, method: str, path: str, body=None, timeout: float = 30,
             headers: dict | None = None) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.gateway.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def worker(self, name: str):
        """The running worker called name (e.g. "basket0")."""
        return next(w for w in self.workers if w.name == name)

    def restart(self, name: str, lost_disk: bool = False, wait: bool = True):
        """SIGKILL worker `name` and start it again (with an empty data directory if
        lost_disk), as a crash and a supervisor would."""
        old = self.worker(name)
        old.kill()
        self.workers.remove(old)
        new = self._start_worker(old.module, name, lost_disk=lost_disk,
                                 extra=old.extra_env)
        self.workers.append(new)
        if wait:
            new.wait_ready()
        return new


@pytest.fixture
def start_system(broker, app_id, workers, tmp_path):
    restarts = {"n": 0}

    def start_worker(module: str, name: str, base: dict, lost_disk: bool = False,
                     extra: dict | None = None):
        data = tmp_path / name
        if lost_disk:
            restarts["n"] += 1
            data = tmp_path / f"{name}-disk{restarts['n']}"
        w = workers(module, {**base, **(extra or {}), "STREAMKIT_WEB_PORT": str(free_port()),
                             "STREAMKIT_DATA_DIR": str(data)}, f"{name}-{restarts['n']}")
        w.name, w.extra_env = name, dict(extra or {})
        return w

    def start(per_service: int = 1, service_env: dict[str, dict] | None = None,
              **env: str) -> System:
        """per_service workers of each service; service_env[service] adds variables to
        that service's workers only (service = "customer", "basket", "orders")."""
        prefix = f"{app_id}-"
        base = {"STREAMKIT_BROKER": f"kafka://{broker}", "APPS_PREFIX": prefix, "PYTHONPATH": ROOT, **env}
        started = []

        def one(module, name, lost_disk=False, extra=None):
            return start_worker(module, name, base, lost_disk, extra)

        # The dev broker's coordinator copes badly with several groups forming at once:
        # there, each worker starts once the one before is ready.
        one_by_one = broker_kind() == "dev"
        for module in SERVICES:
            service = module.split(".")[1]
            for i in range(per_service):
                w = one(module, f"{service}{i}", extra=(service_env or {}).get(service))
                if one_by_one:
                    w.wait_ready()
                started.append(w)
        for w in started:
            w.wait_ready()
        gw = one("apps.gateway", "gateway")
        gw.wait_ready()
        return System(gw, prefix, started, one)

    return start
