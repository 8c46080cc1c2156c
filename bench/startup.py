"""Worker start-up on the dev broker: time to /ready, and recovery of a 100,000-key table.

    python bench/startup.py [--keys 100000] [--reps 3]

1. ready: from spawning `python -m faust -A tests.integration.apps.counter worker` for a new
   app (empty tables, new consumer groups) until /ready answers 200; median of --reps.
2. recovery: the same app after it counted --keys distinct keys, stopped, and lost its
   RocksDB directory: the restore time the worker logs (changelog read to the high watermark
   and written to RocksDB), and spawn-to-/ready; median of --reps. Every restored value is
   checked over HTTP on a sample of keys.
The dev profile (4 s session timeout) and default commit settings are used throughout.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamkit import devbroker  # noqa: E402
from streamkit.testing.kafka import produce  # noqa: E402
from streamkit.testing.worker import WorkerProcess  # noqa: E402

MODULE = "tests.integration.apps.counter"


def worker(broker: str, app_id: str, data: Path, log: Path) -> WorkerProcess:
    env = {"STREAMKIT_BROKER": f"kafka://{broker}", "STREAMKIT_PROFILE": "dev",
           "STREAMKIT_DATA_DIR": str(data), "STREAMKIT_WEB_PORT": str(devbroker.free_port()),
           "COUNTER_APP_ID": app_id, "COUNTER_SOURCE": f"{app_id}-events", "PYTHONPATH": str(ROOT)}
    return WorkerProcess(MODULE, env, log, cwd=str(ROOT))


def time_to_ready(w: WorkerProcess) -> float:
    t0 = time.monotonic()
    w.start()
    w.wait_ready(timeout=180)
    return time.monotonic() - t0


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--keys", type=int, default=100_000)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="streamkit-startup-"))
    b = devbroker.start()
    try:
        ready = []
        for r in range(args.reps):
            w = worker(b.bootstrap, f"ready-{uuid.uuid4().hex[:6]}", tmp / f"ready{r}", tmp / f"ready{r}.log")
            try:
                ready.append(time_to_ready(w))
            finally:
                w.stop()
        app_id = f"recover-{uuid.uuid4().hex[:6]}"
        data = tmp / "recover"
        produce(b.bootstrap, f"{app_id}-events",
                ((f"key{i}", {"amount": 1}) for i in range(args.keys)))
        w = worker(b.bootstrap, app_id, data, tmp / "fill.log")
        try:
            time_to_ready(w)
            deadline = time.monotonic() + 120
            last = f"key{args.keys - 1}"
            while w.get(f"/tables/totals/keys/{last}")[0] != 200 and time.monotonic() < deadline:
                time.sleep(0.2)
            time.sleep(1.5)  # one more commit interval, so every key is in the changelog
        finally:
            w.stop()
        restore_s, recover_ready = [], []
        for r in range(args.reps):
            shutil.rmtree(data / app_id / "totals")
            w = worker(b.bootstrap, app_id, data, tmp / f"recover{r}.log")
            try:
                recover_ready.append(time_to_ready(w))
                for i in range(0, args.keys, max(1, args.keys // 200)):
                    status, body = w.get(f"/tables/totals/keys/key{i}")
                    assert status == 200 and body["value"]["count"] == 1, (i, status, body)
                m = re.search(r"restored \d+ tasks \((\d+) changelog records\) in ([\d.]+)s",
                              w.log_tail(200_000))
                assert m and int(m.group(1)) >= args.keys, m and m.group(0)
                restore_s.append(float(m.group(2)))
            finally:
                w.stop()
        result = {
            "ready_s_median": round(statistics.median(ready), 2), "ready_s": [round(x, 2) for x in ready],
            "recovery_keys": args.keys,
            "restore_s_median": round(statistics.median(restore_s), 2),
            "restore_s": restore_s,
            "recovery_ready_s_median": round(statistics.median(recover_ready), 2),
        }
        print(json.dumps(result, indent=2))
        out = ROOT / "bench" / "results"
        out.mkdir(exist_ok=True)
        (out / "startup.json").write_text(json.dumps(result, indent=2) + "\n")
    finally:
        b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
