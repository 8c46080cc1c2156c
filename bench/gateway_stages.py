"""Where a gateway round trip spends its time: each request split into three stages by the
timestamps its two records carry, at a fixed offered load.

    python bench/gateway_stages.py [--rates 200,500] [--seconds 10] [--warmup 2]
                                   [--broker HOST:PORT] [--out FILE]

The set-up of bench/gateway.py (one echo service, one gateway instance), offered load
open loop as there. Every request's record (the request topic) and its reply's record
(the response topic) carry the time their producer's send() was called (CreateTime: the
gateway's producer and the echo service's); the load generator notes when it sent the
request and when the answer was read, all on one clock. Per request:

- intake: the client's send to the gateway's send() of the request record (the HTTP
  request read and routed, and the gateway's batching window, STREAMKIT_GATEWAY_LINGER_MS);
- service: that send() to the echo service's send() of the reply (the gateway's produce
  request, the broker, the service's fetch, the handler);
- back: the reply's send() to the answer read by the client (the service's produce request,
  the broker, the gateway's fetch of the response topic, the HTTP answer).

Record timestamps are whole milliseconds. Results: "gateway_stages streamkit" ({"<rate>":
{"total": stats, "intake": ..., "service": ..., "back": ...}}, stats as p50_ms, p90_ms,
p99_ms, max_ms, mean_ms) and "meta". Not part of run.py: an instrument for reading the
latency of bench/gateway.py, not a figure of its own.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
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
    latency_stats,
    open_loop,
    write_results,
)
from gateway import echo_requests, start_echo_deployment  # noqa: E402

from streamkit.testing.kafka import read_topic  # noqa: E402

OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "gateway_stages.json"


async def timed_load(base: str, rate: int, seconds: float, tag: str) -> tuple[dict, dict]:
    """open_loop's result, and per request number (sent, answered) in wall-clock ms."""
    fire = echo_requests([base], tag)
    times: dict[int, tuple[float, float]] = {}

    async def timed(i: int, client) -> str | None:
        sent = time.time() * 1000
        err = await fire(i, client)
        times[i] = (sent, time.time() * 1000)
        return err

    return await open_loop(rate, seconds, timed), times


def stages(tag: str, times: dict, requests: list, replies: list) -> dict:
    """The stages of every answered request of this tag (module docstring)."""
    sent_at: dict[str, tuple[int, int]] = {}  # request id -> (request number, its CreateTime)
    for rec in requests:
        envelope = orjson.loads(rec.value)
        path = str(envelope.get("path", ""))
        if path.startswith(tag):
            sent_at[envelope["id"]] = (int(path[len(tag):]), rec.timestamp)
    out: dict[str, list[float]] = {"total": [], "intake": [], "service": [], "back": []}
    for rec in replies:
        reply_id = orjson.loads(rec.value).get("id")
        if reply_id not in sent_at:
            continue
        i, request_ts = sent_at[reply_id]
        if i not in times:
            continue
        client_sent, answered = times[i]
        out["total"].append(answered - client_sent)
        out["intake"].append(request_ts - client_sent)
        out["service"].append(rec.timestamp - request_ts)
        out["back"].append(answered - rec.timestamp)
    if len(out["total"]) != len(times):
        raise BenchFailed(f"{len(times)} requests answered, {len(out['total'])} found with "
                          f"both records")
    return {name: latency_stats(xs) for name, xs in out.items()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rates", default="200,500", help="offered loads, req/s")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per rate")
    p.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each")
    add_common_args(p, OUT_DEFAULT)
    args = p.parse_args()
    install_sigterm_as_interrupt()
    rates = [int(r) for r in args.rates.split(",") if r]
    tmp = Path(tempfile.mkdtemp(prefix="streamkit-bench-gwstages-"))
    run = f"bench-gws-{uuid.uuid4().hex[:6]}"
    # The topics start_echo_deployment makes.
    requests_topic, responses_topic = f"{run}-echo", f"{run}-gw-responses"
    results: dict = {}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, tmp) as broker, Workers(broker, tmp) as workers:
            try:
                _svc, gw, _svc_env, _gw_env = start_echo_deployment(broker, workers, run)
                measured: dict[int, tuple[str, dict]] = {}
                for rate in rates:
                    if args.warmup > 0:
                        asyncio.run(timed_load(gw.url, rate, args.warmup, f"warm-{rate}-"))
                    tag = f"m-{rate}-"
                    out, times = asyncio.run(timed_load(gw.url, rate, args.seconds, tag))
                    if out["errors"]:
                        raise BenchFailed(f"at {rate} req/s: {out['errors']}: "
                                          f"{out['error_examples']}")
                    measured[rate] = (tag, times)
                bootstrap = broker.url.split("://")[-1]
                requests = read_topic(bootstrap, requests_topic, timeout=120)
                replies = read_topic(bootstrap, responses_topic, timeout=120)
                by_rate = {}
                for rate, (tag, times) in measured.items():
                    by_rate[str(rate)] = st = stages(tag, times, requests, replies)
                    print(f"{rate:>5} req/s  " + "  ".join(
                        f"{name} {s['p50_ms']}/{s['p99_ms']}" for name, s in st.items())
                        + "  (p50/p99 ms)", flush=True)
                results["gateway_stages streamkit"] = by_rate
            except (BenchFailed, TimeoutError, RuntimeError) as exc:
                failed["gateway_stages"] = f"{type(exc).__name__}: {exc}"[-2000:]
                print(f"FAILED: {failed['gateway_stages']}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = base_meta(broker, rates=rates, seconds=args.seconds, warmup_s=args.warmup,
                     instances={"gateway": 1, "echo service": 1})
    return write_results(args.out, results, meta, failed)


if __name__ == "__main__":
    sys.exit(main())
