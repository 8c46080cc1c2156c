"""The event-driven gateway variant through the example services: checkouts that answer once
the new order is validated, `POST /api/basket/{customer}/checkout?wait_for=state:VALIDATED,FAILED`.

    python bench/wait_for.py [--rate 100] [--seconds 30] [--warmup 2] [--broker HOST:PORT]
                             [--out FILE]

1. Starts (unless --broker) a dev broker, then the customer, basket and orders services
   (apps/*/app.py) and the gateway (apps/gateway.py), each a `python -m faust -A apps.<x>...
   worker` process under a prefix of its own (APPS_PREFIX), one after another.
2. Not timed: registers rate x (warmup + seconds) customers (gold level) through the gateway
   and puts two items in each one's basket, then waits until every basket shows its items
   (the checkout reads the basket table).
3. Offers --rate checkouts/s, open loop (bench/common.py's open_loop: request i is due at
   start + i/rate whatever happened to the earlier ones; latency from when it was due), each
   on a customer of its own, first --warmup seconds (not measured) and then --seconds.
   Every answer must be 200 with the order in state VALIDATED, its customer and total right;
   anything else fails the benchmark, and so does an order whose states in the orders topic
   go back (a CREATED after its VALIDATED).

Results: "wait_for streamkit" ({"p50_ms", "p99_ms", "max_ms", "count", "rate", ...,
"work": per process, over the measured checkouts (warm-up included): "cpu_ms_per_checkout"
(its CPU time from /proc) and "commits" (streamkit_commit_seconds_count: commits of its
processing path, the prompt ones that make an awaited state durable included), "slices": p99
and max of the checkouts due in each 5 s}) and "meta".
"""
from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from common import (  # noqa: E402
    BenchFailed,
    Workers,
    add_common_args,
    base_meta,
    bench_broker,
    install_sigterm_as_interrupt,
    open_loop,
    slices_text,
    write_results,
)

OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "wait_for.json"
SERVICES = ["apps.customer.app", "apps.basket.app", "apps.orders.app"]
ITEMS = [{"sku": "tea", "qty": 2, "price": 4.5}, {"sku": "cup", "qty": 1, "price": 11}]
TOTAL = round((2 * 4.5 + 11) * 0.9, 2)  # gold: 10% off (apps/orders/rules.py)
JSON = {"Content-Type": "application/json"}


async def call_all(base: str, calls: list[tuple[str, str, object]], concurrency: int = 32,
                   timeout: float = 60.0) -> list[tuple[int, object]]:
    """(status, decoded body) of each (method, path, body), `concurrency` at a time."""
    import aiohttp

    sem = asyncio.Semaphore(concurrency)

    async def one(session, method: str, path: str, body) -> tuple[int, object]:
        async with sem:
            data = None if body is None else orjson.dumps(body)
            async with session.request(method, base + path, data=data, headers=JSON) as resp:
                raw = await resp.read()
                try:
                    return resp.status, orjson.loads(raw) if raw else None
                except orjson.JSONDecodeError:
                    return resp.status, raw[:200]

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        return await asyncio.gather(*(one(session, *c) for c in calls))


def prepare(gateway_url: str, prefix: str, n: int) -> list[str]:
    """Register n customers and fill their baskets; return their ids once every basket
    shows its items."""
    t0 = time.monotonic()
    answers = asyncio.run(call_all(gateway_url, [
        ("POST", "/api/customer", {"name": f"bench {i}", "email": f"b{i}@example.org",
                                   "level": "gold"}) for i in range(n)]))
    bad = [a for a in answers if a[0] != 201]
    if bad:
        raise BenchFailed(f"{len(bad)} of {n} customer registrations failed, e.g. {bad[:3]}")
    ids = [body["id"] for _, body in answers]
    for item in ITEMS:
        answers = asyncio.run(call_all(gateway_url, [
            ("POST", f"/api/basket/{cid}/items", item) for cid in ids]))
        bad = [a for a in answers if a[0] != 202]
        if bad:
            raise BenchFailed(f"{len(bad)} of {n} basket items failed, e.g. {bad[:3]}")
    # The checkout reads the baskets table, which shows the items once the basket service
    # has committed them (and orders must know each customer: its global table).
    pending = list(ids)
    deadline = time.monotonic() + 120
    while pending:
        answers = asyncio.run(call_all(gateway_url, [
            ("GET", f"/apps/{prefix}basket/tables/baskets/keys/{cid}", None) for cid in pending]))
        pending = [cid for cid, (status, body) in zip(pending, answers)
                   if not (status == 200 and len(body["value"]["items"]) == len(ITEMS))]
        if pending and time.monotonic() > deadline:
            raise BenchFailed(f"{len(pending)} baskets still incomplete after 120 s, e.g. {pending[:3]}")
        if pending:
            time.sleep(0.5)
    print(f"prepared {n} customers with filled baskets in {time.monotonic() - t0:.1f} s", flush=True)
    return ids


def checkouts(base: str, ids: list[str]):
    """fire(i, client) for open_loop: the checkout of customer ids[i], waiting for the order."""
    async def fire(i: int, client) -> str | None:
        cid = ids[i]
        status, raw = await client.request(
            "POST", f"{base}/api/basket/{cid}/checkout?wait_for=state:VALIDATED,FAILED")
        if status != 200:
            return f"{status}: {raw[:200]!r}"
        value = (orjson.loads(raw) or {}).get("value") or {}
        if value.get("state") != "VALIDATED":
            return f"state_{value.get('state')}: {raw[:300]!r}"
        if value.get("customer_id") != cid or value.get("total") != TOTAL:
            return f"wrong_order: {raw[:300]!r}"
        return None

    return fire


# An order's states, in the order they may follow one another (apps/orders/rules.py).
STAGE = {"CREATED": 0, "VALIDATED": 1, "FAILED": 1, "PAID": 2}


def orders_gone_back(bootstrap: str, prefix: str) -> str:
    """The orders whose states in the orders topic go back to an earlier one (a CREATED
    after its VALIDATED leaves the orders table at CREATED: its checkout waits in vain),
    said in a line; "" when there are none."""
    from streamkit.testing.kafka import read_topic

    by_order: dict[bytes, list[str]] = {}
    for r in sorted(read_topic(bootstrap, f"{prefix}orders", timeout=60),
                    key=lambda r: (r.partition, r.offset)):
        by_order.setdefault(r.key, []).append(orjson.loads(r.value)["state"])
    back = [(k.decode(), states) for k, states in by_order.items()
            if any(STAGE[a] > STAGE[b] for a, b in zip(states, states[1:]))]
    return (f"{len(back)} orders went back to an earlier state in the orders topic, "
            f"e.g. {back[:3]}") if back else ""


def work(workers: Workers) -> dict[str, tuple[float, int]]:
    """Per worker: (CPU seconds so far, commits of its processing path so far)."""
    out = {}
    for w in workers.procs:
        with open(f"/proc/{w.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        with urllib.request.urlopen(w.url + "/metrics", timeout=10) as resp:
            text = resp.read().decode()
        commits = sum(int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
                      if line.startswith("streamkit_commit_seconds_count"))
        out[w.name] = (cpu_s, commits)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=float, default=100, help="checkouts per second")
    p.add_argument("--seconds", type=float, default=30, help="measured seconds")
    p.add_argument("--warmup", type=float, default=2, help="unmeasured seconds first")
    add_common_args(p, OUT_DEFAULT)
    args = p.parse_args()
    install_sigterm_as_interrupt()
    tmp = Path(tempfile.mkdtemp(prefix="streamkit-bench-waitfor-"))
    prefix = f"bwf-{uuid.uuid4().hex[:6]}-"
    results: dict = {}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, tmp) as broker, Workers(broker, tmp) as workers:
            try:
                for module in SERVICES:  # one after another (the dev broker needs it)
                    workers.start(module, module.split(".")[1], APPS_PREFIX=prefix)
                gw = workers.start("apps.gateway", "gateway", APPS_PREFIX=prefix)
                warm_n, n = int(args.rate * args.warmup), int(args.rate * args.seconds)
                ids = prepare(gw.url, prefix, warm_n + n)

                async def measure() -> dict:
                    if warm_n:
                        warm = await open_loop(args.rate, args.warmup, checkouts(gw.url, ids[:warm_n]))
                        if warm["errors"]:
                            raise BenchFailed(f"warm-up checkouts failed: {warm['errors']}: "
                                              f"{warm['error_examples']}")
                    return await open_loop(args.rate, args.seconds, checkouts(gw.url, ids[warm_n:]))

                before = work(workers)
                try:
                    out = asyncio.run(measure())
                except BenchFailed as exc:
                    # A checkout that waited in vain may be explained by the orders topic.
                    gone_back = orders_gone_back(broker.bootstrap, prefix)
                    raise BenchFailed(f"{exc}; {gone_back}" if gone_back else str(exc)) from exc
                after = work(workers)
                gone_back = orders_gone_back(broker.bootstrap, prefix)
                if gone_back:
                    raise BenchFailed(gone_back)
                print(f"wait_for: {out['ok']}/{out['requests']} checkouts VALIDATED at "
                      f"{args.rate:g}/s; p50 {out['p50_ms']} ms  p99 {out['p99_ms']} ms  "
                      f"max {out['max_ms']} ms  errors {out['errors']}", flush=True)
                print(f"  {slices_text(out)}", flush=True)
                if out["errors"] or out["ok"] != n:
                    raise BenchFailed(f"{out['requests'] - out['ok']} of {out['requests']} checkouts "
                                      f"were not answered 200 VALIDATED: {out['errors']}: "
                                      f"{out['error_examples']}")
                results["wait_for streamkit"] = {
                    "p50_ms": out["p50_ms"], "p99_ms": out["p99_ms"], "max_ms": out["max_ms"],
                    "p90_ms": out["p90_ms"], "mean_ms": out["mean_ms"], "count": out["ok"],
                    "rate": int(args.rate) if float(args.rate).is_integer() else args.rate,
                    "seconds": args.seconds,
                    "answered_rps": out["answered_rps"], "slices": out["slices"],
                    "work": {name: {"cpu_ms_per_checkout":
                                    round((after[name][0] - before[name][0]) * 1000
                                          / (warm_n + n), 2),
                                    "commits": after[name][1] - before[name][1]}
                             for name in after}}
            except (BenchFailed, TimeoutError, RuntimeError) as exc:
                failed["wait_for"] = f"{type(exc).__name__}: {exc}"[-2000:]
                print(f"FAILED: {failed['wait_for']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = base_meta(broker, rate=args.rate, seconds=args.seconds, warmup_s=args.warmup,
                     request="POST /api/basket/{customer}/checkout?wait_for=state:VALIDATED,FAILED "
                             "through apps/gateway.py; one checkout per customer, two items each",
                     instances={"customer": 1, "basket": 1, "orders": 1, "gateway": 1},
                     latency_from="the time each request was due (open loop)", failed=failed)
    write_results(args.out, results, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
