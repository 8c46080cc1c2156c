"""Interactive queries: GET-by-key requests/s on one worker against a bare aiohttp handler
that returns the same JSON, with the same load generator in the same run; and p50/p99 of a
GET that one worker forwards to the owner of the key.

    python bench/queries.py [--seconds 8] [--rounds 3] [--connections 32] [--keys 10000]
                            [--fetch-wait-ms 500]

The load generator is a separate process (wrk -t1 when installed, else an aiohttp client;
keep-alive, --connections concurrent requests in a closed loop over random keys); the
servers under test run in their own processes. The bare handler and the worker are
measured in alternation, --rounds times each, and the medians are compared, so that a
slow moment of the machine does not fall on one side only.

The worker's table is loaded before the measurement, so its consumers only poll. It runs
with the production profile's fetch wait (500 ms): the dev profile's 10 ms exists because
the dev broker answers a fetch only when the wait runs out, and polling it 100 times a
second costs the worker a share of its CPU that it does not spend against Apache Kafka,
where a fetch returns as soon as records arrive. `--fetch-wait-ms 10` measures it anyway.
Writes bench/results/queries.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BARE_SERVER = r'''
import sys, orjson
from aiohttp import web
async def get(request):
    key = request.match_info["key"]
    body = {"key": key, "value": {"name": "item-" + key, "price": 7}, "partition": 0}
    return web.Response(body=orjson.dumps(body), content_type="application/json",
                        headers={"X-Streamkit-Served-By": "bare"})
app = web.Application()
app.router.add_get("/tables/items/keys/{key}", get)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
'''

LOADGEN = r'''
import asyncio, json, random, sys, time
import aiohttp
url, keys, seconds, conns = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
async def main():
    lat, errors = [], 0
    conn = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=conn) as s:
        end = time.perf_counter() + seconds
        async def worker(seed):
            nonlocal errors
            rng = random.Random(seed)
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                async with s.get(url + "i%05d" % rng.randrange(keys)) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                lat.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(conns)))
        took = time.perf_counter() - t0
    lat.sort()
    print(json.dumps({"rps": len(lat) / took, "requests": len(lat), "errors": errors,
                      "p50_ms": lat[len(lat) // 2] * 1000, "p99_ms": lat[int(len(lat) * 0.99)] * 1000}))
asyncio.run(main())
'''


WRK_SCRIPT = """
math.randomseed(1)
request = function()
  return wrk.format("GET", string.format("PATHi%05d", math.random(0, LAST)))
end
"""


def load(url: str, keys: int, seconds: float, conns: int) -> dict:
    """wrk (one thread, --latency) when installed, else the aiohttp client above."""
    if shutil.which("wrk"):
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.netloc}"
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(WRK_SCRIPT.replace("PATH", parts.path).replace("LAST", str(keys - 1)))
        out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--latency",
                              "-s", f.name, base], capture_output=True, text=True, check=True).stdout
        os.unlink(f.name)
        return {"generator": "wrk -t1", "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                "p50_ms": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),
                "p99_ms": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),
                "non_2xx": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0}
    out = subprocess.run([sys.executable, "-c", LOADGEN, url, str(keys), str(seconds), str(conns)],
                         capture_output=True, text=True, check=True)
    return {"generator": "aiohttp client", **json.loads(out.stdout.strip().splitlines()[-1])}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> None:
    from streamkit import devbroker
    from streamkit.testing.kafka import produce
    from streamkit.testing.worker import WorkerProcess

    p = argparse.ArgumentParser()
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--fetch-wait-ms", type=int, default=500)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="streamkit-qbench-"))
    b = devbroker.start()
    procs: list = []
    try:
        app_id = f"qbench-{uuid.uuid4().hex[:6]}"
        produce(b.bootstrap, f"{app_id}-items",
                ((f"i{i:05d}", {"name": f"item-{i}", "price": 7}) for i in range(args.keys)))

        def worker(name: str) -> WorkerProcess:
            env = {"STREAMKIT_BROKER": f"kafka://{b.bootstrap}", "STREAMKIT_PROFILE": "dev",
                   "STREAMKIT_DATA_DIR": str(tmp / name), "STREAMKIT_WEB_PORT": str(devbroker.free_port()),
                   "STREAMKIT_FETCH_MAX_WAIT_MS": str(args.fetch_wait_ms),
                   "CATALOG_APP_ID": app_id, "PYTHONPATH": str(ROOT)}
            w = WorkerProcess("tests.integration.apps.catalog", env, tmp / f"{name}.log", cwd=str(ROOT))
            procs.append(w)
            w.start().wait_ready()
            return w

        one = worker("one")
        deadline = time.monotonic() + 60
        while one.get(f"/tables/items/keys/i{args.keys - 1:05d}")[0] != 200:
            assert time.monotonic() < deadline, "table not filled"
            time.sleep(0.2)
        bare_port = devbroker.free_port()
        bare = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
        procs.append(bare)
        time.sleep(1.0)
        targets = {"bare aiohttp": f"http://127.0.0.1:{bare_port}/tables/items/keys/",
                   "streamkit get": f"{one.url}/tables/items/keys/"}
        for url in targets.values():  # warm-up, not counted: caches, connections, memos
            load(url, args.keys, 2, args.connections)
        runs: dict[str, list[dict]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, url in targets.items():
                runs[name].append(load(url, args.keys, args.seconds, args.connections))
        results = {name: _median_run(r) for name, r in runs.items()}
        # A second worker takes half the partitions: about half of its reads are forwarded.
        two = worker("two")
        deadline = time.monotonic() + 60
        while not (one.get("/ready")[0] == 200 and two.get("/ready")[0] == 200
                   and one.get("/ready")[1]["tasks"] and two.get("/ready")[1]["tasks"]):
            assert time.monotonic() < deadline, "second worker did not join"
            time.sleep(0.2)
        meta = two.get("/metadata")[1]["tables"]["items"]["active"]
        from streamkit.processing.outbox import partition_for
        remote = [i for i in range(args.keys)
                  if meta[str(partition_for(f"i{i:05d}".encode(), 4))] == one.url][:2000]
        results["streamkit forwarded get"] = _forwarded(two.url, remote, args)
        ratio = results["streamkit get"]["rps"] / results["bare aiohttp"]["rps"]
        out = {"results": results, "ratio_to_bare": round(ratio, 3),
               "rounds": {name: [round(r["rps"]) for r in rs] for name, rs in runs.items()},
               "connections": args.connections, "seconds": args.seconds, "keys": args.keys,
               "worker_fetch_wait_ms": args.fetch_wait_ms, "cpu": os.cpu_count()}
        print(json.dumps(out, indent=2))
        (ROOT / "bench" / "results").mkdir(exist_ok=True)
        (ROOT / "bench" / "results" / "queries.json").write_text(json.dumps(out, indent=2) + "\n")
    finally:
        for proc in procs:
            if isinstance(proc, subprocess.Popen):
                proc.kill()
                proc.wait()
            else:
                proc.stop()
        b.stop()


def _median_run(runs: list[dict]) -> dict:
    """The run with the median rate, with every run's rate beside it."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    return {**ordered[len(ordered) // 2], "runs": len(runs)}


def _forwarded(url: str, keys: list[int], args) -> dict:
    """Latency of GETs that the asked worker forwards (one connection, sequential)."""
    import urllib.request

    lat = []
    rng = random.Random(3)
    end = time.perf_counter() + min(args.seconds, 5)
    while time.perf_counter() < end:
        i = rng.choice(keys)
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/tables/items/keys/i{i:05d}") as resp:
            resp.read()
            assert resp.headers["X-Streamkit-Served-By"] != url
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return {"requests": len(lat), "p50_ms": statistics.median(lat), "p99_ms": lat[int(len(lat) * 0.99)]}


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
