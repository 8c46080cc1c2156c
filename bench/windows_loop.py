"""The windows benchmark's processing without a broker: its topology (a 60 s tumbling sum
per key with a final result per window) run by the engine's own Task.process and Commit
through the test driver's tasks, so that the engine's per-record cost can be measured and
profiled apart from the broker and the Kafka clients.

    python bench/windows_loop.py [--events 3000000] [--keys 10000] [--batch 500]
                                 [--commit-every 80000]

The events and the topology are bench/windows.py's (`workload`, `windowed_sum`), the
events in 4 partitions by Kafka's default partitioner, handed to the tasks in batches of
--batch records of each partition in turn, with a commit (changelog records to the driver's
in-memory topics, RocksDB writes) after every --commit-every records, as a worker
committing once a second at about that rate would. Prints events/s and the process's CPU
seconds; checks nothing (bench/windows.py checks the results).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]

import windows  # noqa: E402  (bench/windows.py: the workload and topology)
from common import PARTITIONS  # noqa: E402

from streamkit import App, Settings  # noqa: E402
from streamkit.partitioner import kafka_partition  # noqa: E402
from streamkit.testing import TopologyTestDriver  # noqa: E402


def partitioned(events: int, keys: int) -> dict[int, list[ConsumerRecord]]:
    records, _ = windows.workload(events, keys, seed=1, end_ms=windows.SPAN_MS)
    out: dict[int, list[ConsumerRecord]] = {p: [] for p in range(PARTITIONS)}
    for kb, vb, ts in records:
        p = kafka_partition(kb, PARTITIONS)
        out[p].append(ConsumerRecord("ev", p, len(out[p]), ts, 0, kb, vb, None, len(kb),
                                     len(vb), ()))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=3_000_000)
    ap.add_argument("--keys", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--commit-every", type=int, default=80_000)
    args = ap.parse_args()
    app = App("windows-loop", settings=Settings.from_env({}))
    windows.windowed_sum(app, "ev", "out")
    per_partition = partitioned(args.events, args.keys)
    with TopologyTestDriver(app, partitions=PARTITIONS, auto_commit=False) as driver:
        tasks = {t.partition: t for t in driver.tasks.values()}
        next_at = dict.fromkeys(per_partition, 0)
        since_commit = 0
        wall, cpu = time.perf_counter(), time.process_time()
        while any(next_at[p] < len(per_partition[p]) for p in per_partition):
            for p, records in per_partition.items():
                batch = records[next_at[p]:next_at[p] + args.batch]
                if not batch:
                    continue
                next_at[p] += len(batch)
                tasks[p].process(TopicPartition("ev", p), batch, lambda *_: None, "continue")
                since_commit += len(batch)
            if since_commit >= args.commit_every:
                driver.commit()
                since_commit = 0
        driver.commit()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"{args.events / wall:,.0f} events/s ({wall:.2f} s, CPU {cpu:.2f} s)")


if __name__ == "__main__":
    main()
