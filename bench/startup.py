"""Worker start-up: time to /ready, and the restore of a 1,000,000-key table from its
changelog into an empty data directory.

    python bench/startup.py [--cases ready,recovery,ready-kafka-streams] [--reps 3]
                            [--recovery-keys 1000000] [--broker HOST:PORT] [--out FILE]

The worker is `python -m faust -A tests.integration.apps.counter worker` (a table `totals`
aggregated per key from the topic `<app id>-events`), with the profile of the broker
(STREAMKIT_PROFILE; `dev` on Apache Kafka) and default commit settings. Without --broker it
starts a dev broker.

- ready: from spawning the worker of a new app (empty tables, new consumer groups) until
  /ready answers 200; the median of --reps, each with an app of its own.
- ready-kafka-streams: the same for Kafka Streams (the Ready main of bench/kafka_streams:
  W1's groupByKey().aggregate() over an empty 4-partition topic, a new application id):
  from spawning its JVM until the client is RUNNING; the median of --reps.
- recovery: the changelog topic `<app id>-totals-changelog` (4 partitions, compacted, as
  streamkit creates it) is filled directly, with what the worker itself would have written:
  key "key<i>" as UTF-8 (the table's string keys), value orjson {"count": 1, "sum": i % 10}
  (the JSON value serde), in the partition Kafka's default partitioner (murmur2) gives the
  key, as for the source topic; confluent-kafka batches, not timed. Then, --reps times, a worker of
  that app starts with an empty data directory and restores the table. restore_s is the
  time the worker logs for it ("restored N tasks (M changelog records) in X s": reading each
  changelog partition from the beginning to its high watermark and writing RocksDB); ready_s
  is spawn-to-/ready of that start. Every rep checks that M is the number of keys and reads
  a sample of 200 keys over HTTP.

Results: "startup streamkit" ({"ready_s": median, "runs"}), "startup kafka-streams"
({"ready_s": median, "runs", "rss_mb"}), "recovery streamkit" ({"keys", "restore_s": median,
"ready_s": median, "runs"}) and "meta".
"""
from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import orjson  # noqa: E402
from common import (  # noqa: E402
    KAFKA_STREAMS_HEAP,
    PARTITIONS,
    BenchFailed,
    Workers,
    add_common_args,
    base_meta,
    bench_broker,
    create_topic,
    drop_kafka_streams_on_dev,
    install_sigterm_as_interrupt,
    kafka_streams_command,
    produce,
    run_json_case,
    write_results,
)

MODULE = "tests.integration.apps.counter"
OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "startup.json"
RESTORED = re.compile(r"restored (\d+) tasks \((\d+) changelog records\) in ([\d.]+)s")


def start_timed(workers: Workers, app_id: str, name: str) -> tuple[object, float]:
    t0 = time.monotonic()
    w = workers.start(MODULE, name, wait=False, COUNTER_APP_ID=app_id,
                      COUNTER_SOURCE=f"{app_id}-events")
    w.wait_ready(timeout=600)
    return w, time.monotonic() - t0


def ready_case(args, workers: Workers) -> dict:
    runs = []
    for r in range(args.reps):
        w, took = start_timed(workers, f"ready-{uuid.uuid4().hex[:6]}", f"ready{r}")
        w.stop()
        runs.append(round(took, 3))
        print(f"ready rep {r + 1}: {took:.2f} s", flush=True)
    return {"ready_s": round(statistics.median(runs), 3), "runs": runs, "reps": args.reps}


def kafka_streams_ready_case(args, broker, tmp: Path) -> dict:
    runs = []
    for r in range(args.reps):
        topic = f"ready-ks-{uuid.uuid4().hex[:6]}-events"
        asyncio.run(create_topic(broker.bootstrap, topic, PARTITIONS))
        workdir = tmp / f"ready-kafka-streams-{r}"
        workdir.mkdir()
        cmd = kafka_streams_command("Ready", "--bootstrap", broker.bootstrap, "--topic", topic,
                                    "--events", "0", "--workdir", str(workdir), "--spawned-at-ms")
        cmd.append(str(int(time.time() * 1000)))  # after the build and the java lookup
        result = run_json_case(cmd, workdir, 300)
        runs.append({"ready_s": round(result["ready_s"], 3), "rss_mb": result["rss_mb"]})
        print(f"ready-kafka-streams rep {r + 1}: {result['ready_s']:.2f} s", flush=True)
    return {"ready_s": round(statistics.median(r["ready_s"] for r in runs), 3),
            "rss_mb": max(r["rss_mb"] for r in runs), "runs": runs, "reps": args.reps}


def value(i: int) -> dict:
    return {"count": 1, "sum": i % 10}


async def fill_changelog(bootstrap: str, app_id: str, keys: int) -> float:
    """Create the source and changelog topics as streamkit would and write `keys` records
    into the changelog; return the seconds it took."""
    from streamkit.config import Settings
    from streamkit.topics import TopicAdmin, TopicSpec

    t0 = time.monotonic()
    async with TopicAdmin(Settings(broker=f"kafka://{bootstrap}")) as admin:
        await admin.ensure([TopicSpec(f"{app_id}-events", 4),
                            TopicSpec(f"{app_id}-totals-changelog", 4, compact=True)])
    dumps = orjson.dumps
    ends = await produce(bootstrap, f"{app_id}-totals-changelog",
                         ((f"key{i}".encode(), dumps(value(i))) for i in range(keys)))
    if sum(ends.values()) != keys:
        raise BenchFailed(f"wrote {sum(ends.values())} changelog records, expected {keys}")
    return time.monotonic() - t0


def recovery_case(args, broker, workers: Workers) -> dict:
    app_id = f"recover-{uuid.uuid4().hex[:6]}"
    fill_s = asyncio.run(fill_changelog(broker.bootstrap, app_id, args.recovery_keys))
    print(f"changelog of {args.recovery_keys:,} keys written in {fill_s:.1f} s (not timed)",
          flush=True)
    runs = []
    sample = range(0, args.recovery_keys, max(1, args.recovery_keys // 200))
    for r in range(args.reps):
        w, took = start_timed(workers, app_id, f"recover{r}")  # a new, empty data directory
        try:
            # One line per assignment: more than one if the group rebalanced meanwhile.
            lines = RESTORED.findall(w.log_tail(10_000_000))
            if not lines:
                raise BenchFailed(f"the worker logged no restore line: {w.log_tail(1500)}")
            tasks, records = sum(int(t) for t, _, _ in lines), sum(int(n) for _, n, _ in lines)
            restore_s = round(sum(float(x) for _, _, x in lines), 3)
            if records != args.recovery_keys:
                raise BenchFailed(f"restored {records} changelog records, expected "
                                  f"{args.recovery_keys}: {lines}")
            for i in sample:
                status, body = w.get(f"/tables/totals/keys/key{i}")
                if status != 200 or body["value"] != value(i):
                    raise BenchFailed(f"key{i}: {status} {body}, expected {value(i)}")
        finally:
            w.stop()
        runs.append({"restore_s": restore_s, "ready_s": round(took, 3), "tasks": tasks,
                     "records": records, "restore_lines": len(lines)})
        print(f"recovery rep {r + 1}: restored {records} records in {restore_s} s, "
              f"ready after {took:.2f} s", flush=True)
    return {"keys": args.recovery_keys,
            "restore_s": round(statistics.median(r["restore_s"] for r in runs), 3),
            "ready_s": round(statistics.median(r["ready_s"] for r in runs), 3),
            "changelog_fill_s": round(fill_s, 2), "runs": runs, "reps": args.reps,
            "restore_s_is": "the worker's own log line: changelog read to the high watermark "
                            "and written to RocksDB (median of reps)"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", default="ready,recovery")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--recovery-keys", type=int, default=1_000_000)
    add_common_args(p, OUT_DEFAULT)
    args = p.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if set(cases) - {"ready", "recovery", "ready-kafka-streams"}:
        p.error("--cases takes ready, recovery and/or ready-kafka-streams")
    install_sigterm_as_interrupt()
    tmp = Path(tempfile.mkdtemp(prefix="streamkit-startup-"))
    results: dict = {}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, tmp) as broker, Workers(broker, tmp) as workers:
            drop_kafka_streams_on_dev(broker, cases)
            for case in cases:
                try:
                    if case == "ready":
                        results["startup streamkit"] = ready_case(args, workers)
                    elif case == "ready-kafka-streams":
                        results["startup kafka-streams"] = kafka_streams_ready_case(args, broker, tmp)
                    else:
                        results["recovery streamkit"] = recovery_case(args, broker, workers)
                except (BenchFailed, TimeoutError, RuntimeError) as exc:
                    key = {"ready": "startup", "recovery": "recovery"}.get(case, case)
                    failed[key] = f"{type(exc).__name__}: {exc}"[-2000:]
                    print(f"{case}: FAILED: {failed[key]}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, r in results.items():
        print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("runs", "restore_s_is")))
    meta = base_meta(broker, app=MODULE, cases=cases, reps=args.reps,
                     recovery_keys=args.recovery_keys,
                     ready_s_is="spawn of `python -m faust -A ... worker` to the first 200 of /ready"
                                "; kafka-streams: spawn of its JVM (heap -Xmx"
                                f"{KAFKA_STREAMS_HEAP}) to state RUNNING",
                     failed=failed)
    write_results(args.out, results, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
