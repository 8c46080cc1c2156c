"""Round trips through the request-response gateway against a direct HTTP call, in one run:
a stepped sweep of offered load, and the same at 500 and 1000 req/s with three gateway
instances and two service workers.

    python bench/gateway.py [--rates 500,1000,1500,2000,3000] [--seconds 20] [--warmup 2]
                            [--settle 60] [--threshold-ms 100] [--cluster-rates 500,1000]
                            [--no-cluster] [--broker HOST:PORT] [--out FILE]

1. Starts (unless --broker) a dev broker, one echo service (tests/integration/apps/
   gateway_echo.py, written with the service helper) and one gateway instance
   (tests/integration/apps/gateway_front.py), each a `python -m faust -A ... worker`
   process, and a plain aiohttp server whose handler does the same work as the echo service
   (decode the JSON body, build the same answer): "direct".
2. Settles: --settle seconds of gateway round trips at 1000 req/s, not measured. A broker
   just started compiles its request paths (the JVM's JIT) while the first steps run: on a
   fresh Kafka node the first 20 s at 500 req/s had a p99 of 26-91 ms, the same step after
   it 12-17 ms. A broker in service has long done so. The settling step's own figures are
   in the results ("settle" of "gateway streamkit"), so the cold start is not hidden.
3. Offers a fixed load, open loop (bench/common.py's open_loop: request i is due at
   start + i/rate whatever happened to the earlier ones, and its latency runs from when it
   was due, so a stall is not hidden). For each rate of --rates in turn, gateway then
   direct, each for --seconds after --warmup seconds at the same rate (not measured). A
   target's sweep stops after the first rate at which its p99 exceeds --threshold-ms (or
   some requests fail: 5xx, time-outs), except that 500 and 1000 req/s are always measured.
   Every answer is checked against the request; a wrong answer fails the benchmark, and so
   does any failed request at the lowest rate.
4. Then two more gateway instances (same gateway id: one group over the response topic) and
   a second echo worker join; requests go round-robin to the three gateways, at each rate of
   --cluster-rates.

Results: "gateway streamkit" and "gateway direct" ({"p50_ms_500", "p99_ms_500",
"p99_ms_1000", "p99_crosses_100ms_at_rps" (the first offered rate whose p99 exceeded the
threshold, null if none did), "steps": [...]; the gateway's also "settle"}), "gateway
streamkit 3x2" ({"p50_ms_500", "p99_ms_500", "p50_ms_1000", "p99_ms_1000", "steps"}) and
"meta".
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
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
    free_port,
    install_sigterm_as_interrupt,
    open_loop,
    slices_text,
    wait_until,
    write_results,
)

from streamkit.config import Settings  # noqa: E402

OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "gateway.json"
REQUEST_PARTITIONS, RESPONSE_PARTITIONS = 4, 12
ALWAYS = (500, 1000)  # rates measured even after a crossing (the fixed points of the results)


def echo_answer(method: str, path: str, query: dict, body) -> dict:
    """What the echo service answers (tests/integration/apps/gateway_echo.py)."""
    return {"method": method, "path": path, "query": query, "body": body,
            "double": body["n"] * 2 if isinstance(body, dict) and "n" in body else None}


def serve_direct(port: int) -> None:
    """The baseline: an aiohttp handler doing the echo service's work, on 127.0.0.1."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        body = orjson.loads(raw) if raw else None
        answer = echo_answer(request.method, request.match_info["path"], dict(request.query), body)
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/api/echo/{path:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def start_echo_deployment(broker, workers: Workers, run: str) -> tuple:
    """The topics of run, one echo service (assigned) and one gateway instance in front of
    it: (service, gateway, the service's environment, the gateway's), the environments
    for more instances of either."""
    from streamkit.topics import TopicAdmin, TopicSpec

    async def create_topics() -> None:
        async with TopicAdmin(Settings(broker=broker.url)) as admin:
            await admin.ensure([TopicSpec(f"{run}-echo", REQUEST_PARTITIONS),
                                TopicSpec(f"{run}-counted", REQUEST_PARTITIONS),
                                TopicSpec(f"{run}-gw-responses", RESPONSE_PARTITIONS)])

    asyncio.run(create_topics())
    svc_env = {"ECHO_APP_ID": f"{run}-svc", "ECHO_TOPIC": f"{run}-echo",
               "COUNTED_TOPIC": f"{run}-counted"}
    gw_env = {"STREAMKIT_GATEWAY_ID": f"{run}-gw",
              "STREAMKIT_GATEWAY_SERVICES": f"echo={run}-echo"}
    svc = workers.start("tests.integration.apps.gateway_echo", "svc0", **svc_env)
    wait_until(lambda: svc.get("/services/stats")[1]["assigned"], 60,
               "the echo service's assignment")
    gw = workers.start("tests.integration.apps.gateway_front", "gw0", **gw_env)
    return svc, gw, svc_env, gw_env


def echo_requests(bases: list[str], tag: str):
    """fire(i, client) for open_loop: POST {"n": i} to /api/echo/<tag><i> on bases[i % n]."""

    async def fire(i: int, client) -> str | None:
        path = f"{tag}{i}"
        status, payload = await client.request("POST", f"{bases[i % len(bases)]}/api/echo/{path}",
                                               orjson.dumps({"n": i}))
        if status != 200:
            return f"{status}: {payload[:200]!r}"
        if orjson.loads(payload) != echo_answer("POST", path, {}, {"n": i}):
            return f"wrong_answer: {payload[:200]!r}"
        return None

    return fire


async def step(name: str, bases: list[str], rate: int, seconds: float, warmup: float) -> dict:
    if warmup > 0:
        await open_loop(rate, warmup, echo_requests(bases, f"warm-{name}-{rate}-"))
    out = await open_loop(rate, seconds, echo_requests(bases, f"{name}-{rate}-"))
    if out["errors"].get("wrong_answer"):
        raise BenchFailed(f"{name} at {rate} req/s: wrong answers: {out['error_examples']}")
    print(f"{name:<22} {rate:>5} req/s  p50 {out['p50_ms']} ms  p99 {out['p99_ms']} ms  "
          f"max {out['max_ms']} ms  ok {out['ok']}/{out['requests']}  errors {out['errors']}"
          f"  {slices_text(out)}", flush=True)
    return out


def crossed(out: dict, threshold_ms: float) -> bool:
    return bool(out["errors"]) or out["p99_ms"] is None or out["p99_ms"] > threshold_ms


async def sweep(targets: dict[str, list[str]], rates: list[int], seconds: float, warmup: float,
                threshold_ms: float) -> dict[str, dict]:
    """Each target's steps over rates (interleaved by rate) and its summary fields."""
    steps: dict[str, list[dict]] = {name: [] for name in targets}
    first_cross: dict[str, int | None] = {name: None for name in targets}
    for rate in rates:
        for name, bases in targets.items():
            if first_cross[name] is not None and rate not in ALWAYS:
                continue
            out = await step(name, bases, rate, seconds, warmup)
            if rate == rates[0] and out["errors"]:
                raise BenchFailed(f"{name} at {rate} req/s (the lowest rate): failed requests "
                                  f"{out['errors']}: {out['error_examples']}")
            steps[name].append(out)
            if first_cross[name] is None and crossed(out, threshold_ms):
                first_cross[name] = rate
        if all(c is not None for c in first_cross.values()) and all(rate >= r for r in ALWAYS):
            break
    results = {}
    for name, ss in steps.items():
        at = {s["offered_rps"]: s for s in ss}
        results[name] = {
            "p50_ms_500": at.get(500, {}).get("p50_ms"),
            "p99_ms_500": at.get(500, {}).get("p99_ms"),
            "p99_ms_1000": at.get(1000, {}).get("p99_ms"),
            f"p99_crosses_{threshold_ms:g}ms_at_rps": first_cross[name],
            "steps": ss,
        }
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="500,1000,1500,2000,3000",
                   help="offered loads of the sweep, req/s, ascending")
    p.add_argument("--seconds", type=float, default=20.0, help="measured seconds per step")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each step")
    p.add_argument("--settle", type=float, default=60.0,
                   help="unmeasured seconds at 1000 req/s through the gateway before the sweep")
    p.add_argument("--threshold-ms", type=float, default=100.0)
    p.add_argument("--cluster-rates", default="500,1000",
                   help="rates for three gateways and two service workers")
    p.add_argument("--no-cluster", action="store_true", help="skip the 3x2 measurement")
    add_common_args(p, OUT_DEFAULT)
    p.add_argument("--serve-direct", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve_direct:
        serve_direct(args.serve_direct)
        return 0
    install_sigterm_as_interrupt()
    rates = sorted(int(r) for r in args.rates.split(",") if r)
    cluster_rates = sorted(int(r) for r in args.cluster_rates.split(",") if r)

    tmp = Path(tempfile.mkdtemp(prefix="streamkit-bench-gateway-"))
    run = f"bench-gw-{uuid.uuid4().hex[:6]}"
    results: dict = {}
    failed: dict[str, str] = {}
    stats: dict = {}
    try:
        with bench_broker(args, tmp) as broker, Workers(broker, tmp) as workers:
            try:
                svc, gw, svc_env, gw_env = start_echo_deployment(broker, workers, run)
                port = free_port()
                workers.popen([sys.executable, __file__, "--serve-direct", str(port)])
                from streamkit.devbroker import port_in_use

                wait_until(lambda: port_in_use("127.0.0.1", port), 30, "the direct server listens")
                settled = (asyncio.run(step("gateway settle", [gw.url], max(ALWAYS), args.settle, 0))
                           if args.settle > 0 else None)
                one = asyncio.run(sweep({"gateway streamkit": [gw.url],
                                         "gateway direct": [f"http://127.0.0.1:{port}"]},
                                        rates, args.seconds, args.warmup, args.threshold_ms))
                one["gateway streamkit"]["settle"] = settled
                results.update(one)
                stats["gateway"] = gw.get("/gateway/stats")[1]
                if not args.no_cluster:
                    results["gateway streamkit 3x2"] = cluster(args, workers, gw, svc, svc_env,
                                                               gw_env, cluster_rates, stats)
            except (BenchFailed, TimeoutError, RuntimeError) as exc:
                failed["gateway"] = f"{type(exc).__name__}: {exc}"[-2000:]
                print(f"FAILED: {failed['gateway']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    meta = base_meta(
        broker, rates=rates, seconds_per_step=args.seconds, warmup_s=args.warmup,
        settle_s=args.settle,
        threshold_ms=args.threshold_ms, cluster_rates=cluster_rates,
        fetch_wait_ms=Settings.from_env({"STREAMKIT_PROFILE": broker.profile}).fetch_max_wait_ms,
        service_partitions=4, response_partitions=12,
        instances={"gateway streamkit": {"gateway": 1, "service": 1},
                   "gateway streamkit 3x2": {"gateway": 3, "service": 2}},
        latency_from="the time each request was due (open loop)",
        sweep_rule=f"rates in order; a target stops after the first rate whose p99 exceeds "
                   f"{args.threshold_ms:g} ms or that has failed requests; 500 and 1000 req/s "
                   "are always measured",
        gateway_stats=stats, failed=failed)
    write_results(args.out, results, meta)
    return 1 if failed else 0


def cluster(args, workers: Workers, gw, svc, svc_env: dict, gw_env: dict, rates: list[int],
            stats: dict) -> dict:
    """Three gateway instances and two echo workers; requests round-robin over the gateways."""
    # Every request partition of the echo app (each of its services' topics), all on svc
    # until the second worker joins.
    requests = len(svc.get("/services/stats")[1]["partitions"])
    svc1 = workers.start("tests.integration.apps.gateway_echo", "svc1", **svc_env)
    gws = [gw] + [workers.start("tests.integration.apps.gateway_front", f"gw{i}", **gw_env)
                  for i in (1, 2)]

    def settled() -> bool:
        g = [w.get("/gateway/stats") for w in gws]
        s = [w.get("/services/stats") for w in (svc, svc1)]
        if any(code != 200 for code, _ in g + s):
            return False
        owned = [len(body["partitions"]) for _, body in g]
        served = [len(body["partitions"]) for _, body in s]
        return (all(body["ready"] for _, body in g) and all(owned)
                and sum(owned) == RESPONSE_PARTITIONS and all(served) and sum(served) == requests)

    wait_until(settled, 120, "three gateways and two services sharing the partitions", 0.2)
    out = asyncio.run(sweep({"gateway streamkit 3x2": [w.url for w in gws]}, rates,
                            args.seconds, args.warmup, float("inf")))["gateway streamkit 3x2"]
    stats["gateway 3x2"] = [w.get("/gateway/stats")[1] for w in gws]
    at = {s["offered_rps"]: s for s in out["steps"]}
    return {"p50_ms_500": at.get(500, {}).get("p50_ms"), "p99_ms_500": at.get(500, {}).get("p99_ms"),
            "p50_ms_1000": at.get(1000, {}).get("p50_ms"),
            "p99_ms_1000": at.get(1000, {}).get("p99_ms"), "steps": out["steps"]}


if __name__ == "__main__":
    sys.exit(main())
