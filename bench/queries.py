"""Interactive queries: GET-by-key requests/s on one worker against a bare aiohttp handler
that returns the same JSON, with the same load generator in the same run; and p50/p99 of a
GET that one worker forwards to the owner of the key.

    python bench/queries.py [--seconds 8] [--rounds 3] [--connections 32] [--keys 10000]
                            [--fetch-wait-ms 500] [--broker HOST:PORT] [--out FILE]

Without --broker it starts a dev broker. The load generator is a separate process (wrk -t1
when installed, else an aiohttp client; keep-alive, --connections concurrent requests in a
closed loop over random keys); the servers under test run in their own processes. The bare
handler and the worker are measured in alternation, --rounds times each, and the medians are
compared, so that a slow moment of the machine does not fall on one side only. Any answer
other than 200 fails the benchmark.

The worker's table (tests/integration/apps/catalog.py) is loaded before the measurement, so
its consumers only poll. It runs with a 500 ms fetch wait (the dev and production profiles'
value): the devbroker profile's 10 ms exists because the dev broker answers a fetch only when
the wait runs out, and polling it 100 times a second costs the worker a share of its CPU that
it does not spend against Apache Kafka, where a fetch returns as soon as records arrive.
`--fetch-wait-ms 10` measures it anyway.

Results: "queries streamkit" ({"rps", "p50_ms", "p99_ms", "ratio_to_bare", "rounds_rps",
"forwarded_p50_ms", "forwarded_p99_ms", ...}), "queries bare-aiohttp" ({"rps", "p50_ms",
"p99_ms", "rounds_rps"}) and "meta".
"""
from __future__ import annotations

import argparse
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

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BenchFailed,
    Workers,
    add_common_args,
    base_meta,
    bench_broker,
    free_port,
    install_sigterm_as_interrupt,
    wait_until,
    write_results,
)

OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "queries.json"

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
    print(json.dumps({"rps": len(lat) / took, "requests": len(lat), "non_2xx": errors,
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
        out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{max(1, int(seconds))}s", "--latency",
                              "-s", f.name, base], capture_output=True, text=True, check=True).stdout
        os.unlink(f.name)
        return {"generator": "wrk -t1", "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
                "p50_ms": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),
                "p99_ms": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),
                "non_2xx": int(m.group(1))
                if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0}
    out = subprocess.run([sys.executable, "-c", LOADGEN, url, str(keys), str(seconds), str(conns)],
                         capture_output=True, text=True, check=True)
    return {"generator": "aiohttp client", **json.loads(out.stdout.strip().splitlines()[-1])}


def _ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _median_run(runs: list[dict]) -> dict:
    """The run with the median rate, with every run's rate beside it."""
    ordered = sorted(runs, key=lambda r: r["rps"])
    med = ordered[len(ordered) // 2]
    return {"rps": round(med["rps"], 1), "p50_ms": round(med["p50_ms"], 3),
            "p99_ms": round(med["p99_ms"], 3), "generator": med["generator"],
            "rounds_rps": [round(r["rps"], 1) for r in runs],
            "non_2xx": sum(r.get("non_2xx", 0) for r in runs)}


def _forwarded(url: str, keys: list[int], seconds: float) -> dict:
    """Latency of GETs that the asked worker forwards (one connection, sequential)."""
    import urllib.request

    lat = []
    rng = random.Random(3)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        i = rng.choice(keys)
        t0 = time.perf_counter()
        with urllib.request.urlopen(f"{url}/tables/items/keys/i{i:05d}") as resp:
            resp.read()
            if resp.headers["X-Streamkit-Served-By"] == url:
                raise BenchFailed(f"key i{i:05d} was not forwarded by {url}")
        lat.append((time.perf_counter() - t0) * 1000)
    lat.sort()
    return {"requests": len(lat), "p50_ms": round(statistics.median(lat), 3),
            "p99_ms": round(lat[int(len(lat) * 0.99)], 3)}


def measure(args, broker, workers: Workers) -> dict:
    from streamkit.partitioner import kafka_partition
    from streamkit.testing.kafka import produce

    app_id = f"qbench-{uuid.uuid4().hex[:6]}"
    produce(broker.bootstrap, f"{app_id}-items",
            ((f"i{i:05d}", {"name": f"item-{i}", "price": 7}) for i in range(args.keys)))
    extra = {"STREAMKIT_FETCH_MAX_WAIT_MS": str(args.fetch_wait_ms), "CATALOG_APP_ID": app_id}
    one = workers.start("tests.integration.apps.catalog", "one", **extra)
    wait_until(lambda: (lambda r: r[0] == 200 and r[1]["count"] == args.keys)(
        one.get("/tables/items/count")), 120, "the table holds every key", 0.2)
    bare_port = free_port()
    workers.popen([sys.executable, "-c", BARE_SERVER, str(bare_port)])
    from streamkit.devbroker import port_in_use

    wait_until(lambda: port_in_use("127.0.0.1", bare_port), 30, "the bare server listens")
    targets = {"queries bare-aiohttp": f"http://127.0.0.1:{bare_port}/tables/items/keys/",
               "queries streamkit": f"{one.url}/tables/items/keys/"}
    for url in targets.values():  # warm-up, not counted: caches, connections, memos
        load(url, args.keys, min(2, args.seconds), args.connections)
    runs: dict[str, list[dict]] = {name: [] for name in targets}
    for r in range(args.rounds):
        for name, url in targets.items():
            run = load(url, args.keys, args.seconds, args.connections)
            runs[name].append(run)
            print(f"round {r + 1} {name:<22} {run['rps']:>10,.0f} req/s  p50 {run['p50_ms']:.2f} ms  "
                  f"p99 {run['p99_ms']:.2f} ms", flush=True)
    results = {name: _median_run(rs) for name, rs in runs.items()}
    bad = {name: r["non_2xx"] for name, r in results.items() if r["non_2xx"]}
    if bad:
        raise BenchFailed(f"answers other than 200: {bad}")
    sk = results["queries streamkit"]
    sk["ratio_to_bare"] = round(sk["rps"] / results["queries bare-aiohttp"]["rps"], 3)
    # A second worker takes half the partitions: about half of its reads are forwarded.
    two = workers.start("tests.integration.apps.catalog", "two", **extra)
    wait_until(lambda: one.tasks() and two.tasks(), 120, "both workers hold partitions", 0.2)
    meta = two.get("/metadata")[1]["tables"]["items"]["active"]
    remote = [i for i in range(args.keys)
              if meta[str(kafka_partition(f"i{i:05d}".encode(), 4))] == one.url][:2000]
    if not remote:
        raise BenchFailed(f"the second worker owns every partition: {meta}")
    fwd = _forwarded(two.url, remote, min(args.seconds, 5))
    sk.update({"forwarded_p50_ms": fwd["p50_ms"], "forwarded_p99_ms": fwd["p99_ms"],
               "forwarded_requests": fwd["requests"]})
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--fetch-wait-ms", type=int, default=500)
    add_common_args(p, OUT_DEFAULT)
    args = p.parse_args()
    install_sigterm_as_interrupt()
    tmp = Path(tempfile.mkdtemp(prefix="streamkit-qbench-"))
    results: dict = {}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, tmp) as broker, Workers(broker, tmp) as workers:
            try:
                results = measure(args, broker, workers)
            except (BenchFailed, TimeoutError, RuntimeError, subprocess.CalledProcessError) as exc:
                failed["queries"] = f"{type(exc).__name__}: {exc}"[-2000:]
                print(f"FAILED: {failed['queries']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, r in results.items():
        print(f"{name:<22} {r['rps']:>10,.0f} req/s (median of {args.rounds})")
    if results:
        print(f"streamkit / bare: {results['queries streamkit']['ratio_to_bare']:.3f}")
    meta = base_meta(broker, connections=args.connections, seconds=args.seconds,
                     rounds=args.rounds, keys=args.keys, worker_fetch_wait_ms=args.fetch_wait_ms,
                     generator=(next(iter(results.values()))["generator"] if results else None),
                     failed=failed)
    write_results(args.out, results, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
