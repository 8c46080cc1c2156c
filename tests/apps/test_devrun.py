"""`streamkit dev` (what `make run` runs) keeps a local deployment running: it starts a
broker, a worker that dies is started again while the others keep running, and only Ctrl-C
stops them all."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

from streamkit.devbroker import free_port, free_ports_in_a_row, port_in_use

from .conftest import ROOT, SERVICES, System, eventually

WORKER_LINE = re.compile(r"^worker\s+(\S+)\s+(http://\S+)\s+\(pid (\d+),")
RESTARTED = re.compile(r"^worker (\S+) restarted \(pid (\d+),")
BROKER_LINE = re.compile(r"^broker\s+(.+) at (kafka://\S+) \(")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


class Dev:
    """A `streamkit dev` process of the example services and the lines it prints (with
    `make`: the command that runs it, in checkout)."""

    def __init__(self, tmp_path, prefix: str, env: dict[str, str], *args: str,
                 make: list[str] | None = None, checkout: str = ROOT) -> None:
        base = free_ports_in_a_row(len(SERVICES) + 1)
        self.gateway_port = base + len(SERVICES)
        self.lines: list[str] = []
        ports = ["--base-port", str(base),
                 "--gateway-port", str(self.gateway_port)]
        if make is None:
            argv = [sys.executable, "-m", "streamkit.cli", "dev", *SERVICES, "--gateway",
                    "apps.gateway", *ports, "--state-dir", str(tmp_path), *args]
        else:
            argv = [*make, "RUN_ARGS=" + " ".join([*ports, *args])]
        self.proc = subprocess.Popen(
            argv, env={**env, "APPS_PREFIX": prefix, "PYTHONPATH": checkout}, cwd=checkout,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.system = System(SimpleNamespace(url=f"http://127.0.0.1:{self.gateway_port}"),
                             prefix, [], None)

    def _read(self) -> None:
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    def wait(self, pattern: re.Pattern, count: int = 1, timeout: float = 180) -> list[re.Match]:
        """The first `count` printed lines that match pattern, once they are there."""
        def matches():
            found = [m for m in map(pattern.match, list(self.lines)) if m]
            return found if len(found) >= count else None

        found = eventually(matches, timeout)
        assert found, f"no {count} lines like {pattern.pattern!r}:\n" + "\n".join(self.lines)
        return found[:count]

    def workers(self) -> dict[str, int]:
        return {m[1]: int(m[3]) for m in self.wait(WORKER_LINE, len(SERVICES) + 1)}

    def stop(self) -> int:
        """Ctrl-C, as a user stops it (the terminal signals the whole process group that
        this test started); the exit code."""
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(90)


def journey(s: System) -> None:
    """Register, fill a basket, check out and pay, through the gateway."""
    status, customer = s.call("POST", "/api/customer", {"name": "Ada", "email": "a@x.org",
                                                        "level": "gold"})
    assert status == 201, customer
    cid = customer["id"]
    assert s.call("GET", f"/api/customer/{cid}") == (200, customer)
    assert s.call("POST", f"/api/basket/{cid}/items", {"sku": "tea", "qty": 2, "price": 5})[0] == 202
    view = f"/apps/{s.prefix}basket/tables/baskets/keys/{cid}"
    assert eventually(lambda: s.call("GET", view)[0] == 200)
    status, done = s.call("POST", f"/api/basket/{cid}/checkout?wait_for=state:VALIDATED,FAILED",
                          timeout=90, headers={"X-Timeout-Ms": "60000"})
    assert status == 200 and done["value"]["state"] == "VALIDATED", done
    assert done["value"]["total"] == 9.0  # gold: 10% off 2 x 5
    status, paid = s.call("POST", f"/api/orders/{done['value']['id']}/payments?wait_for=state:PAID",
                          {"amount": done["value"]["total"]})
    assert status == 200 and paid["value"]["state"] == "PAID", paid


def test_a_worker_killed_under_streamkit_dev_comes_back_and_the_journey_goes_on(
        broker, app_id, tmp_path):
    dev = Dev(tmp_path, f"{app_id}-", {**os.environ, "STREAMKIT_BROKER": f"kafka://{broker}"})
    pids: list[int] = []
    try:
        started = dev.workers()
        pids += started.values()
        assert set(started) == {*SERVICES, "apps.gateway"}
        s = dev.system
        status, customer = s.call("POST", "/api/customer", {"name": "Bo", "email": "b@x.org"})
        assert status == 201

        os.kill(started["apps.orders.app"], signal.SIGKILL)
        (restarted,) = dev.wait(RESTARTED)
        pids.append(int(restarted[2]))
        assert restarted[1] == "apps.orders.app"
        assert all(alive(pid) for module, pid in started.items() if module != "apps.orders.app")
        # Nothing was lost, and the journey works through the restarted orders service.
        assert s.call("GET", f"/api/customer/{customer['id']}") == (200, customer)
        journey(s)
    finally:
        code = dev.stop()
    assert code == 0, "\n".join(dev.lines)
    assert dev.lines[-1] == "stopped."
    assert len(pids) == len(SERVICES) + 2
    assert not [pid for pid in pids if alive(pid)]


def checkout_copy(dest: Path) -> Path:
    """The checkout's files (git ls-files), as a user's clone has them."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(ROOT) / name, dest / name)
    return dest


def test_make_run_and_make_demo_in_a_copy_of_the_checkout(tmp_path):
    # make run's path where Java is absent (BROKER=dev: it starts the dev broker itself), in a
    # copy of the checkout that reuses the installed environment (-o: make installs nothing).
    copy = str(checkout_copy(tmp_path / "checkout"))
    venv = sys.prefix
    env = {k: v for k, v in os.environ.items()
           if k not in ("STREAMKIT_BROKER", "STREAMKIT_PROFILE", "MAKEFLAGS", "MAKELEVEL")}
    dev = Dev(tmp_path, "", env, "--broker-port", str(free_port()), checkout=copy,
              make=["make", "-o", f"{venv}/.installed", "run", f"VENV={venv}", "BROKER=dev"])
    try:
        (line,) = dev.wait(BROKER_LINE)
        assert line[1] == "dev broker"
        pids = list(dev.workers().values())
        assert not Path(copy, ".venv").exists()
        demo = subprocess.run(["make", "demo"], cwd=copy, capture_output=True, text=True,
                              timeout=180, env={**env, "GATEWAY_URL": dev.system.gateway.url})
    finally:
        dev.stop()
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "stopped." in dev.lines, "\n".join(dev.lines)
    assert not [pid for pid in pids if alive(pid)]
    assert not port_in_use("127.0.0.1", int(line[2].rsplit(":", 1)[1]))
    # What the demo printed: the customer, the two items, the basket, the validated order,
    # the paid order, and the views.
    answers = [json.loads(x) for x in demo.stdout.splitlines() if x.startswith("{")]
    customer, tea, cup, basket, checkout, paid, view, gold, page = answers
    assert customer["level"] == "gold" and (tea["sku"], cup["sku"]) == ("tea", "cup")
    assert sorted(basket["items"]) == ["cup", "tea"]
    order = checkout["value"]
    assert (order["state"], order["total"], order["customer_id"]) == ("VALIDATED", 18.0,
                                                                    customer["id"])
    assert paid["value"]["state"] == view["value"]["state"] == "PAID"
    assert view["key"] == order["id"] and gold["value"] == 1
    assert order["id"] in [item["key"] for item in page["items"]]
