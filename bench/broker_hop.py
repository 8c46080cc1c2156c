"""One hop through the broker alone, as its topic grows: a producer (linger 0, acks=all) sends
--rate records/s for --seconds to a 4-partition topic and a consumer (fetch wait as in the dev
profile, 10 ms) reads them; prints the hop latency (consumer receipt minus record timestamp)
per 10 s window. No streamkit code is on the path: this measures the broker the other
benchmarks run on.

    python bench/broker_hop.py [--rate 500] [--seconds 60] [--broker HOST:PORT] [--out FILE]

Without --broker it starts a dev broker. Writes --out (default bench/results/broker_hop.json,
the dev broker's figures that bench/README.md cites). bench/run.py does not run it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from common import add_common_args, bench_broker  # noqa: E402

from streamkit.config import Settings  # noqa: E402
from streamkit.topics import TopicAdmin, TopicSpec  # noqa: E402


async def measure(bootstrap: str, rate: int, seconds: int, fetch_wait_ms: int) -> list[dict]:
    topic = f"broker-hop-{time.time_ns()}"
    async with TopicAdmin(Settings(broker=f"kafka://{bootstrap}")) as admin:
        await admin.ensure([TopicSpec(topic, 4)])
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=topic,
                                fetch_max_wait_ms=fetch_wait_ms, auto_offset_reset="latest")
    await producer.start()
    await consumer.start()
    hops: list[tuple[int, float]] = []

    async def consume() -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            now = time.time() * 1000
            hops.extend((r.timestamp, now - r.timestamp) for rs in batches.values() for r in rs)

    try:
        await asyncio.sleep(3)  # the group forms
        reader = asyncio.create_task(consume())
        start, t0 = time.monotonic(), time.time() * 1000
        for i in range(rate * seconds):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(topic, b"x" * 300, key=str(i).encode())
        await asyncio.sleep(1)
        reader.cancel()
    finally:
        await consumer.stop()
        await producer.stop()
    windows = []
    for w in range(0, seconds, 10):
        xs = sorted(h for ts, h in hops if t0 + w * 1000 <= ts < t0 + (w + 10) * 1000)
        if xs:
            windows.append({"from_s": w, "to_s": w + 10, "records": len(xs),
                            "p50_ms": round(xs[len(xs) // 2], 1),
                            "p99_ms": round(xs[int(len(xs) * 0.99)], 1), "max_ms": round(xs[-1], 1)})
    return windows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--fetch-wait-ms", type=int, default=10)
    add_common_args(p, ROOT / "bench" / "results" / "broker_hop.json")
    args = p.parse_args()
    with bench_broker(args) as broker:
        windows = asyncio.run(measure(broker.bootstrap, args.rate, args.seconds,
                                      args.fetch_wait_ms))
    for w in windows:
        print(json.dumps(w))
    out = {"broker": broker.description, "rate": args.rate,
           "fetch_wait_ms": args.fetch_wait_ms, "windows": windows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
