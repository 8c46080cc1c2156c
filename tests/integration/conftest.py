"""Helpers for tests that run the counter app in worker processes."""
from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from streamkit.devbroker import free_port

COUNTER = "tests.integration.apps.counter"
ROOT = str(Path(__file__).resolve().parents[2])


def worker_env(broker: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of one test worker: the session's broker (and, inherited, its
    profile), a data directory and a web port of its own."""
    return {"STREAMKIT_BROKER": f"kafka://{broker}", "STREAMKIT_DATA_DIR": str(data_dir),
            "STREAMKIT_WEB_PORT": str(free_port()), "PYTHONPATH": ROOT, **extra}


@pytest.fixture
def counter_env(broker, app_id, tmp_path):
    """env(name, **extra) -> the environment of one counter worker of this test."""

    def env(name: str = "w0", **extra: str) -> dict[str, str]:
        return worker_env(broker, tmp_path / f"data-{name}", COUNTER_APP_ID=app_id,
                          COUNTER_SOURCE=f"{app_id}-events", **extra)

    return env


def totals(worker, keys) -> dict[str, dict]:
    """Every key's value in the totals table, read over HTTP from one worker."""
    return table_values(worker, "totals", keys)


def table_values(worker, table: str, keys) -> dict:
    """Every key's value in a table, read over HTTP from one worker (absent keys left out)."""
    out = {}
    for key in keys:
        status, body = worker.get(f"/tables/{table}/keys/{key}")
        if status == 200:
            out[key] = body["value"]
        elif status != 404:
            raise AssertionError(f"GET {key}: {status} {body}")
    return out


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of the first sample of name whose labels include labels, in Prometheus text."""
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(line.rsplit(" ", 1)[1])
    return None


def metrics_text(worker) -> str:
    """A worker's /metrics (without a token)."""
    with urllib.request.urlopen(worker.url + "/metrics", timeout=10) as resp:
        return resp.read().decode()


def records_in(worker) -> int:
    """Records this worker has processed (its /metrics), 0 while it does not answer."""
    try:
        text = metrics_text(worker)
    except OSError:
        return 0
    return sum(int(float(v)) for v in re.findall(r"^streamkit_records_in_total\{[^}]*\} (\S+)$",
                                                    text, re.M))
