"""Round trips through the request-response gateway, against a direct HTTP call, in one run.

    python bench/gateway.py [--rate 500] [--seconds 20] [--broker HOST:PORT]

1. Starts a dev broker (unless --broker), one echo service (tests/integration/apps/
   gateway_echo.py, written with the service helper) and one gateway instance, each a
   `python -m faust -A ... worker` process, and a plain aiohttp server whose handler does
   the same work as the echo service (decode the JSON body, build the same answer).
2. Offers a fixed load, open loop: request i is due at start + i/rate whatever happened to
   the earlier ones, and its latency runs from when it was due, so a stall is not hidden
   (no coordinated omission). First --warmup seconds at the same rate, not measured.
3. Gateway first, then direct, each for --seconds; every answer is checked against the
   request. Writes p50, p99, max, answered requests/s and errors of each to --out
   (bench/results/gateway.json); the goal is gateway p99 <= 25 ms on loopback.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import orjson  # noqa: E402
from aiohttp import web  # noqa: E402

from streamkit import devbroker  # noqa: E402
from streamkit.config import Settings  # noqa: E402
from streamkit.gateway.settings import GatewaySettings  # noqa: E402
from streamkit.testing.worker import WorkerProcess  # noqa: E402
from streamkit.topics import TopicAdmin, TopicSpec  # noqa: E402

GOAL_P99_MS = 25.0


def echo_answer(method: str, path: str, query: dict, body) -> dict:
    """What the echo service answers (tests/integration/apps/gateway_echo.py)."""
    return {"method": method, "path": path, "query": query, "body": body,
            "double": body["n"] * 2 if isinstance(body, dict) and "n" in body else None}


def serve_direct(port: int) -> None:
    """The baseline: an aiohttp handler doing the echo service's work, on 127.0.0.1."""
    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        answer = echo_answer(request.method, request.match_info["path"], dict(request.query), body)
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/api/echo/{path:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def offer(base: str, rate: int, seconds: float, tag: str) -> dict:
    """Open-loop load at `rate` req/s for `seconds`; latencies in ms from each due time."""
    n = int(rate * seconds)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    loop = asyncio.get_running_loop()

    async def one(i: int, due: float, session: aiohttp.ClientSession) -> None:
        path = f"{tag}{i}"
        try:
            async with session.post(f"{base}/api/echo/{path}", data=orjson.dumps({"n": i}),
                                    headers={"Content-Type": "application/json"}) as resp:
                payload = await resp.read()
                done = loop.time()
                if resp.status != 200:
                    errors[str(resp.status)] = errors.get(str(resp.status), 0) + 1
                elif orjson.loads(payload) != echo_answer("POST", path, {}, {"n": i}):
                    errors["wrong_answer"] = errors.get("wrong_answer", 0) + 1
                else:
                    latencies.append((done - due) * 1000)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=30)) as session:
        tasks = []
        start = loop.time() + 0.05
        for i in range(n):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due, session)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    latencies.sort()

    def pct(p: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

    return {"offered_rps": rate, "seconds": seconds, "requests": n, "ok": len(latencies),
            "errors": errors, "answered_rps": round(len(latencies) / elapsed, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "max_ms": round(latencies[-1], 2) if latencies else None,
            "mean_ms": round(statistics.fmean(latencies), 2) if latencies else None}


async def create_topics(bootstrap: str, topics: list[TopicSpec]) -> None:
    async with TopicAdmin(Settings(broker=f"kafka://{bootstrap}")) as admin:
        await admin.ensure(topics)


def wait_until(fn, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fn():
            return
        time.sleep(0.1)
    raise TimeoutError("condition not met")


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--broker", help="HOST:PORT of a running broker (default: start a dev broker)")
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "gateway.json"))
    p.add_argument("--serve-direct", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_direct:
        serve_direct(args.serve_direct)
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="streamkit-bench-gateway-"))
    broker = None if args.broker else devbroker.start()
    bootstrap = args.broker or broker.bootstrap
    run = f"bench-gw-{uuid.uuid4().hex[:6]}"
    procs: list[WorkerProcess] = []
    direct = None
    try:
        asyncio.run(create_topics(bootstrap, [TopicSpec(f"{run}-echo", 4),
                                              TopicSpec(f"{run}-counted", 4),
                                              TopicSpec(f"{run}-gw-responses", 12)]))
        profile = "production" if args.broker else "dev"
        # The dev profile is what makes the request and response consumers poll briefly,
        # which the dev broker needs (streamkit/gateway/settings.py).
        common = {"STREAMKIT_BROKER": f"kafka://{bootstrap}", "STREAMKIT_PROFILE": profile,
                  "PYTHONPATH": str(ROOT)}
        svc = WorkerProcess("tests.integration.apps.gateway_echo", {
            **common, "STREAMKIT_DATA_DIR": str(tmp / "svc"),
            "STREAMKIT_WEB_PORT": str(devbroker.free_port()), "ECHO_APP_ID": f"{run}-svc",
            "ECHO_TOPIC": f"{run}-echo", "COUNTED_TOPIC": f"{run}-counted"}, tmp / "svc.log",
            cwd=str(ROOT))
        procs.append(svc.start())
        svc.wait_ready(120)
        wait_until(lambda: svc.get("/services/stats")[1]["assigned"])
        gw = WorkerProcess("tests.integration.apps.gateway_front", {
            **common, "STREAMKIT_DATA_DIR": str(tmp / "gw"),
            "STREAMKIT_WEB_PORT": str(devbroker.free_port()), "STREAMKIT_GATEWAY_ID": f"{run}-gw",
            "STREAMKIT_GATEWAY_SERVICES": f"echo={run}-echo"}, tmp / "gw.log", cwd=str(ROOT))
        procs.append(gw.start())
        gw.wait_ready(120)
        port = devbroker.free_port()
        direct = subprocess.Popen(
            [sys.executable, __file__, "--serve-direct", str(port)], cwd=str(ROOT))
        direct_url = f"http://127.0.0.1:{port}"
        wait_until(lambda: devbroker.port_in_use("127.0.0.1", port), 30)

        async def measure() -> dict:
            out = {}
            for name, base in (("gateway", gw.url), ("direct", direct_url)):
                await offer(base, args.rate, args.warmup, f"warm-{name}-")
                # The load generator's own full garbage collections (this process holds
                # the imported framework) would show as latency of whatever is measured.
                gc.collect()
                gc.freeze()
                out[name] = await offer(base, args.rate, args.seconds, f"{name}-")
                print(f"{name:8} {json.dumps(out[name])}", flush=True)
            return out

        results = asyncio.run(measure())
        stats = gw.get("/gateway/stats")[1]
        results["gateway_stats"] = {k: stats[k] for k in (
            "parked", "peak", "completed", "timed_out", "late", "handed_off", "id_misses")}
        results["goal_p99_ms"] = GOAL_P99_MS
        results["goal_met"] = (results["gateway"]["p99_ms"] or 1e9) <= GOAL_P99_MS \
            and not results["gateway"]["errors"]
        results["meta"] = {
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "python": platform.python_version(),
            "cpus": os.cpu_count(), "broker": "external" if args.broker else "dev broker (Tansu)",
            "profile": profile,
            "fetch_wait_ms": GatewaySettings.from_env({}, profile=profile).fetch_wait_ms,
            "service_partitions": 4,
            "response_partitions": 12, "instances": {"gateway": 1, "service": 1},
            "latency_from": "the time each request was due (open loop)",
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {args.out}; gateway p99 {results['gateway']['p99_ms']} ms "
              f"(goal {GOAL_P99_MS}), direct p99 {results['direct']['p99_ms']} ms")
        return 0 if results["goal_met"] else 1
    finally:
        if direct is not None:
            direct.terminate()
            direct.wait(10)
        for w in procs:
            w.stop()
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    sys.exit(main())
