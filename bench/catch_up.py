"""A global table's catch-up, alone: how long GlobalTables.catch_up (what a worker runs
before a fetched batch whose records look a global table up) takes, --count times in a
row, on a 4-partition global topic of --keys records; once with nothing new to read each
time (a table that changes less often than its lookups) and once with one record written
(acks=all) just before each.

    python bench/catch_up.py [--count 1000] [--keys 1000] [--broker HOST:PORT] [--out FILE]

The worker's own clients, with the profile of the broker (STREAMKIT_PROFILE; `dev` on a
given broker): the probe reads with STREAMKIT_READ_TO_END_WAIT_MS. Without --broker it
starts a dev broker. Writes --out (default <tmp>/streamkit-bench/catch_up.json): per case
p50/p90/p99/max in ms and the process's CPU per catch-up. bench/run.py does not run it.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from common import add_common_args, bench_broker, latency_stats, produce  # noqa: E402

from streamkit.clients import Clients  # noqa: E402
from streamkit.config import Settings  # noqa: E402
from streamkit.serde import resolve  # noqa: E402
from streamkit.state.global_tables import GlobalSpec, GlobalTable, GlobalTables  # noqa: E402
from streamkit.topics import TopicAdmin, TopicSpec  # noqa: E402

PARTITIONS = 4


async def measure(bootstrap: str, profile: str, count: int, keys: int) -> dict:
    topic = f"catch-up-{uuid.uuid4().hex[:8]}"
    settings = Settings(broker=f"kafka://{bootstrap}", profile=profile)
    async with TopicAdmin(settings) as admin:
        await admin.ensure([TopicSpec(topic, PARTITIONS, compact=True)])
    await produce(bootstrap, topic, ((b"k%d" % i, b'{"level": "gold"}') for i in range(keys)))
    clients = Clients(settings)
    tail = clients.reader(settings.global_fetch_wait_ms)
    probe = clients.reader(settings.read_to_end_wait_ms)
    producer = clients.producer()
    for client in (tail, probe, producer):
        await client.start()
    tables = GlobalTables([GlobalTable(GlobalSpec("t", topic, resolve("str"), resolve("json")))],
                          Path(tempfile.mkdtemp(prefix="catch-up-")), None,
                          settings.read_to_end_wait_ms, settings.isolation_level == "read_committed")
    try:
        loaded = await tables.start(probe, tail, {topic: PARTITIONS})
        if loaded != keys:
            raise RuntimeError(f"the table loaded {loaded} records, expected {keys}")
        out = {}
        for case, write in (("nothing new", False), ("a record before each", True)):
            took, cpu0, read0 = [], time.process_time(), tables.catch_ups_read
            for i in range(count):
                if write:
                    await producer.send_and_wait(topic, key=b"new%d" % i, value=b'{"level": "new"}')
                t0 = time.perf_counter()
                if not await tables.catch_up(probe, tail, 10.0):
                    raise RuntimeError("a catch-up timed out")
                took.append((time.perf_counter() - t0) * 1000)
                if write and tables.tables[0].get(f"new{i}") != {"level": "new"}:
                    raise RuntimeError(f"new{i} was written before the catch-up and is missing")
            out[case] = {**latency_stats(took), "read": tables.catch_ups_read - read0,
                         "cpu_ms_per_catch_up": round((time.process_time() - cpu0) * 1000 / count, 3)}
        return out
    finally:
        for client in (tail, probe, producer):
            await client.stop()
        tables.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--keys", type=int, default=1000)
    add_common_args(p, Path(tempfile.gettempdir()) / "streamkit-bench" / "catch_up.json")
    args = p.parse_args()
    with bench_broker(args) as broker:
        cases = asyncio.run(measure(broker.bootstrap, broker.profile, args.count, args.keys))
    for case, figures in cases.items():
        print(f"{case:<22} " + "  ".join(f"{k} {v}" for k, v in figures.items()), flush=True)
    out = {"broker": broker.description, "profile": broker.profile, "count": args.count,
           "keys": args.keys, "cases": cases}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
