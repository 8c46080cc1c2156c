"""The whole system (customer, basket, orders, gateway) on the real broker, under a prefix
of the test's own."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from streamkit.devbroker import free_port

ROOT = str(Path(__file__).resolve().parents[2])
SERVICES = ["apps.customer.app", "apps.basket.app", "apps.orders.app"]


class System:
    def __init__(self, gateway, prefix: str, workers: list) -> None:
        self.gateway, self.prefix, self.workers = gateway, prefix, workers

    def call(self, method: str, path: str, body=None, timeout: float = 30) -> tuple[int, object]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.gateway.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")


@pytest.fixture
def start_system(broker, app_id, workers, tmp_path):
    def start(per_service: int = 1, **env: str) -> System:
        prefix = f"{app_id}-"
        base = {"STREAMKIT_BROKER": f"kafka://{broker}", "STREAMKIT_PROFILE": "dev",
                "APPS_PREFIX": prefix, "PYTHONPATH": ROOT, **env}
        started = []
        for module in SERVICES:
            for i in range(per_service):
                name = f"{module.split('.')[1]}{i}"
                w = workers(module, {**base, "STREAMKIT_WEB_PORT": str(free_port()),
                                     "STREAMKIT_DATA_DIR": str(tmp_path / name)}, name)
                w.wait_ready()  # one group after another: the dev broker's coordinator likes it
                started.append(w)
        gw = workers("apps.gateway", {**base, "STREAMKIT_WEB_PORT": str(free_port()),
                                      "STREAMKIT_DATA_DIR": str(tmp_path / "gateway")}, "gateway")
        gw.wait_ready()
        return System(gw, prefix, started)

    return start
