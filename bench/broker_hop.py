"""One hop through the broker alone, as its topic grows: a producer (linger 0, acks=all) sends
--rate records/s for --seconds to a 4-partition topic and a consumer (fetch wait as in the dev
profile, 10 ms) reads them; prints the hop latency (consumer receipt minus record timestamp)
per 10 s window, and the CPU this process (the aiokafka producer and consumer) spent per
record while it sent. With aiokafka no streamkit code is on the path: this measures the
broker the other benchmarks run on, and the least a hop costs a Python process that uses
aiokafka; `--client streamkit-wire` makes the same hop with the produce and fetch requests
of the gateway's and the services' path (streamkit.wire, over aiokafka's connections).

    python bench/broker_hop.py [--rate 500] [--seconds 60] [--partitions 4]
                               [--client aiokafka|streamkit-wire|confluent-kafka]
                               [--broker HOST:PORT] [--out FILE]

Without --broker it starts a dev broker. Writes --out (default bench/results/broker_hop.json,
the dev broker's figures that bench/README.md cites). bench/run.py does not run it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer  # noqa: E402
from common import add_common_args, bench_broker  # noqa: E402

from streamkit.clients import Rebalance  # noqa: E402
from streamkit.config import Settings  # noqa: E402
from streamkit.topics import TopicAdmin, TopicSpec  # noqa: E402
from streamkit.wire import RequestConsumer, RequestProducer  # noqa: E402


async def new_topic(bootstrap: str, partitions: int) -> str:
    """A topic of its own for this run."""
    topic = f"broker-hop-{time.time_ns()}"
    async with TopicAdmin(Settings(broker=f"kafka://{bootstrap}")) as admin:
        await admin.ensure([TopicSpec(topic, partitions)])
    return topic


async def measure(bootstrap: str, rate: int, seconds: int, fetch_wait_ms: int,
                  partitions: int, wire: bool = False) -> tuple[list[dict], dict]:
    """The hop's latency per 10 s window, and this process's CPU per record sent; with
    wire, through streamkit's request-path clients (streamkit.wire) over aiokafka's."""
    topic = await new_topic(bootstrap, partitions)
    producer: Any = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0, acks="all")
    consumer: Any = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=topic,
                                     fetch_max_wait_ms=fetch_wait_ms, auto_offset_reset="latest")
    if wire:
        producer = RequestProducer(producer)
        consumer = RequestConsumer(consumer, fetch_wait_ms, read_committed=False, reset="latest")
    await producer.start()
    await consumer.start()
    consumer.subscribe([topic], listener=Rebalance(lambda: None, lambda tps: None))
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
        used = resource.getrusage(resource.RUSAGE_SELF)
        for i in range(rate * seconds):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await producer.send(topic, b"x" * 300, key=str(i).encode())
        # Until the last record is read, so that its fetch counts as the others' did.
        while len(hops) < rate * seconds and time.monotonic() - start < seconds + 10:
            await asyncio.sleep(0.05)
        after = resource.getrusage(resource.RUSAGE_SELF)
        reader.cancel()
    finally:
        await consumer.stop()
        await producer.stop()
    return summary(hops, t0, seconds, used, after)


def measure_librdkafka(bootstrap: str, rate: int, seconds: int, fetch_wait_ms: int,
                       partitions: int) -> tuple[list[dict], dict]:
    """The same hop with confluent-kafka (librdkafka, a benchmark dependency that streamkit
    does not use): its producer sends from its own thread, its consumer is polled from a
    thread of this process; the CPU counted is all of this process's threads."""
    import threading

    from confluent_kafka import Consumer, Producer

    topic = asyncio.run(new_topic(bootstrap, partitions))
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "acks": "all"})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic,
                         "fetch.wait.max.ms": fetch_wait_ms, "auto.offset.reset": "latest",
                         "enable.auto.commit": False})
    consumer.subscribe([topic])
    hops: list[tuple[int, float]] = []
    assigned, stop = threading.Event(), threading.Event()

    def consume() -> None:
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if consumer.assignment():
                assigned.set()
            if msg is not None and not msg.error():
                ts = msg.timestamp()[1]
                hops.append((ts, time.time() * 1000 - ts))

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    try:
        if not assigned.wait(30):
            raise RuntimeError("the consumer got no assignment within 30 s")
        start, t0 = time.monotonic(), time.time() * 1000
        used = resource.getrusage(resource.RUSAGE_SELF)
        for i in range(rate * seconds):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            producer.produce(topic, b"x" * 300, key=str(i).encode())
            producer.poll(0)  # delivery reports, as an application would serve them
        producer.flush()
        while len(hops) < rate * seconds and time.monotonic() - start < seconds + 10:
            time.sleep(0.05)
        after = resource.getrusage(resource.RUSAGE_SELF)
    finally:
        stop.set()
        reader.join()
        consumer.close()
    return summary(hops, t0, seconds, used, after)


def summary(hops: list[tuple[int, float]], t0: float, seconds: int, used, after
            ) -> tuple[list[dict], dict]:
    """Latency per 10 s window (by the records' timestamps) and CPU per record sent."""
    windows = []
    for w in range(0, seconds, 10):
        xs = sorted(h for ts, h in hops if t0 + w * 1000 <= ts < t0 + (w + 10) * 1000)
        if xs:
            windows.append({"from_s": w, "to_s": w + 10, "records": len(xs),
                            "p50_ms": round(xs[len(xs) // 2], 1),
                            "p99_ms": round(xs[int(len(xs) * 0.99)], 1), "max_ms": round(xs[-1], 1)})
    n = len(hops) or 1
    cpu = {"user_ms": round((after.ru_utime - used.ru_utime) * 1000 / n, 3),
           "sys_ms": round((after.ru_stime - used.ru_stime) * 1000 / n, 3)}
    return windows, cpu


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rate", type=int, default=500)
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--fetch-wait-ms", type=int, default=10)
    p.add_argument("--partitions", type=int, default=4, help="of the topic, all read by the consumer")
    p.add_argument("--client", choices=("aiokafka", "streamkit-wire", "confluent-kafka"), default="aiokafka",
                   help="the Kafka client of the producer and the consumer")
    add_common_args(p, ROOT / "bench" / "results" / "broker_hop.json")
    args = p.parse_args()
    with bench_broker(args) as broker:
        if args.client in ("aiokafka", "streamkit-wire"):
            windows, cpu = asyncio.run(measure(broker.bootstrap, args.rate, args.seconds,
                                               args.fetch_wait_ms, args.partitions,
                                               wire=args.client == "streamkit-wire"))
        else:
            windows, cpu = measure_librdkafka(broker.bootstrap, args.rate, args.seconds,
                                              args.fetch_wait_ms, args.partitions)
    for w in windows:
        print(json.dumps(w))
    print(f"CPU of the {args.client} producer and consumer per record: {cpu}")
    out = {"broker": broker.description, "client": args.client, "rate": args.rate,
           "partitions": args.partitions,
           "fetch_wait_ms": args.fetch_wait_ms, "windows": windows,
           "client_cpu_per_record": cpu}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
