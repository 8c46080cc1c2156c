"""Stream-stream windowed join benchmark: joined pairs/s of an inner join of two topics,
and the worker's peak RSS.

    python bench/stream_join.py [--records 150000] [--keys 10000] [--window-ms 5000]
                                [--grace-ms 1000] [--reps 1] [--broker HOST:PORT] [--out FILE]
                                [--cases streamkit,kafka-streams,kafka-streams-1s,...]

Without --broker it starts a dev broker. Results: "join <case>" ({"pairs_per_s",
"input_eps", "pairs", "rss_mb", "runs", "ratio_to_kafka_streams", "ratio_to_kafka_streams_1s"})
and "meta".

The workload: two fresh 4-partition topics ("left" and "right") of --records records each
(keys "k<i>" over --keys keys, seeded, partitioned by Kafka's default murmur2
partitioner; values orjson {"n": i, "amount": 1..9}). Record i of each side has the event
time base + i ms, up to 200 ms earlier (out of order within each partition, never past
grace), as its record timestamp; so each key has a record every --keys ms on average
per side, and with 10,000 keys and a +-5 s window each record joins about one record of
the other side. The expected number of joined pairs is computed by brute force.

The case runs as a subprocess of this file (`--case`), one worker in that process:
app.source(left).join_window(app.source(right), JoinWindows(5 s, 5 s, grace 1 s),
joiner, how="inner", name="pairs").to(<out topic>), the profile's defaults. The Kafka Streams
cases run the Join main of bench/kafka_streams (java, heap KAFKA_STREAMS_HEAP):
left.join(right, joiner, JoinWindows.ofTimeDifferenceAndGrace(5 s, 1 s)).to(<out topic>),
Kafka Streams' default 30 s commit interval (kafka-streams) or streamkit's 1 s
(kafka-streams-1s; kafka-streams-1s-2t with two stream threads). A case counts the pairs
it emits (they must equal the expected number, with no late record), and the driver checks
that the output topic holds that many records and that the case's group committed the end
offsets of both input topics.

Timing as W1: from the first record to the end of the commit covering the last one.
pairs/s = expected pairs / that time; input_eps = input records (both sides) / that time.
Peak RSS: VmHWM of the worker process.
"""
from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "cases")]

from _common import (fail, records_done, report, run_worker, stop_self,  # noqa: E402
                     streamkit_settings, when_started)
from common import (KAFKA_STREAMS_HEAP, PARTITIONS, BenchFailed, add_common_args,  # noqa: E402
                    add_ratios, base_meta, bench_broker, create_topic, drop_kafka_streams_on_dev,
                    install_sigterm_as_interrupt, json_bytes, kafka_streams_command, produce,
                    run_json_case, verify_commits, write_results)

JITTER_MS = 200
# case name -> the options of bench/kafka_streams' Join main.
KAFKA_STREAMS_CASES = {
    "kafka-streams": (),
    "kafka-streams-1s": ("--commit-interval-ms", "1000"),
    "kafka-streams-1s-2t": ("--commit-interval-ms", "1000", "--threads", "2"),
}
# Every case gets ratio_to_<base> (of pairs/s) for these.
RATIO_BASES = ("kafka-streams", "kafka-streams-1s")
CASES = ("streamkit", *KAFKA_STREAMS_CASES)
OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "stream_join.json"


# --------------------------------------------------------------------------- workload

def side(records: int, keys: int, seed: int, base: int):
    """(key bytes, value bytes, timestamp) of one input."""
    rng = random.Random(seed)
    out = []
    for i in range(records):
        key = f"k{rng.randrange(keys)}"
        out.append((key.encode(), json_bytes({"n": i, "amount": rng.randint(1, 9)}),
                    base + i - rng.randrange(JITTER_MS)))
    return out


def expected_pairs(left, right, before: int, after: int) -> int:
    times: dict[bytes, list[int]] = {}
    for k, _v, ts in right:
        times.setdefault(k, []).append(ts)
    for ts_list in times.values():
        ts_list.sort()
    n = 0
    for k, _v, ts in left:
        rs = times.get(k)
        if rs:
            n += bisect.bisect_right(rs, ts + after) - bisect.bisect_left(rs, ts - before)
    return n


async def count_records(bootstrap: str, topic: str) -> int:
    """Records in topic, read to the high watermark of each fetch (the dev broker's
    ListOffsets answers cannot be trusted: docs/architecture.md)."""
    from streamkit.testing.kafka import read_topic_async

    return len(await read_topic_async(bootstrap, topic, timeout=120))


# --------------------------------------------------------------------------- the case

def streamkit_case(args) -> None:
    from streamkit import App, JoinWindows

    expected = json.loads((args.workdir / "expected.json").read_text())
    app = App(f"sjoin-{uuid.uuid4().hex[:10]}",
              settings=streamkit_settings(args.bootstrap, args.workdir))
    counted = [0]

    def count(_key, _value):
        counted[0] += 1

    windows = JoinWindows(args.window_ms, args.window_ms, args.grace_ms)
    (app.source(f"{args.topic}-left")
        .join_window(app.source(f"{args.topic}-right"), windows,
                     lambda lv, rv: {"l": lv["n"], "r": rv["n"], "amount": lv["amount"] + rv["amount"]},
                     how="inner", name="pairs")
        .peek(count)
        .to(f"{args.topic}-out"))
    state = {"result": None, "error": None}

    async def finisher():
        runner = app.processors
        try:
            seconds = await records_done(runner, 2 * args.events)
            late = sum(t.late_records for t in runner.tasks.values())
            problem = None
            if counted[0] != expected["pairs"] or late:
                problem = (f"{counted[0]} pairs joined, {expected['pairs']} expected; "
                           f"{late} late records")
            state["result"] = {"seconds": seconds, "group": runner.group_id,
                               "pairs": counted[0], "problem": problem,
                               "commits": runner.counters["commits"]}
        except Exception as exc:
            state["error"] = repr(exc)
        finally:
            stop_self(state)

    when_started(app, finisher)
    run_worker(app)
    if state["error"]:
        fail(state["error"])
    res = state["result"]
    if res is None:
        fail("worker stopped before the result was known")
    if res["problem"]:
        fail(res["problem"])
    report(2 * args.events, res["seconds"], True, group=res["group"], pairs=res["pairs"],
           pairs_per_s=res["pairs"] / res["seconds"], commits=res["commits"],
           profile=app.settings.profile,
           settings=f"streamkit profile defaults; JoinWindows({args.window_ms}, "
                    f"{args.window_ms}, grace {args.grace_ms}), inner, to a topic")


# --------------------------------------------------------------------------- the driver

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=150_000, help="records per side")
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--window-ms", type=int, default=5_000, help="before_ms = after_ms")
    p.add_argument("--grace-ms", type=int, default=1_000)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--cases", default=",".join(CASES))
    add_common_args(p, OUT_DEFAULT)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--bootstrap", help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        args.events = args.records
        streamkit_case(args)
        return 0

    install_sigterm_as_interrupt()
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; known: {list(CASES)}")
    base = int(time.time() * 1000) - args.records - 120_000
    left = side(args.records, args.keys, args.seed, base)
    right = side(args.records, args.keys, args.seed + 1, base)
    pairs = expected_pairs(left, right, args.window_ms, args.window_ms)
    print(f"stream_join: 2 x {args.records:,} records, {args.keys:,} keys, "
          f"{PARTITIONS} partitions, window +-{args.window_ms} ms (grace "
          f"{args.grace_ms} ms), {pairs:,} expected pairs, cases {cases}", flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-stream-join-"))
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, scratch) as broker:
            bootstrap = broker.bootstrap
            drop_kafka_streams_on_dev(broker, cases)
            for rep in range(1, args.reps + 1):
                for case in cases:
                    if f"join {case}" in failed:
                        continue
                    workdir = scratch / f"{case}-r{rep}"
                    workdir.mkdir()
                    topic = f"sjoin-{uuid.uuid4().hex[:8]}"
                    try:
                        ends = {}
                        for name, records in (("left", left), ("right", right)):
                            asyncio.run(create_topic(bootstrap, f"{topic}-{name}", PARTITIONS))
                            ends[name] = asyncio.run(produce(bootstrap, f"{topic}-{name}", records))
                        (workdir / "expected.json").write_bytes(orjson.dumps({"pairs": pairs}))
                        options = ["--bootstrap", bootstrap, "--topic", topic, "--window-ms",
                                   str(args.window_ms), "--grace-ms", str(args.grace_ms),
                                   "--workdir", str(workdir)]
                        if case in KAFKA_STREAMS_CASES:
                            cmd = kafka_streams_command("Join", *options, "--events",
                                                        str(args.records),
                                                        *KAFKA_STREAMS_CASES[case])
                        else:
                            cmd = [sys.executable, str(Path(__file__)), "--case", *options,
                                   "--records", str(args.records)]
                        result = run_json_case(cmd, workdir, 120 + args.records / 250,
                                               env={"STREAMKIT_PROFILE": broker.profile})
                        for name in ("left", "right"):
                            verify_commits(bootstrap, f"{topic}-{name}", result, ends[name])
                        written = asyncio.run(count_records(bootstrap, f"{topic}-out"))
                        if written != pairs:
                            raise BenchFailed(f"the output topic holds {written} records, "
                                              f"{pairs} expected")
                        result["rep"] = rep
                        runs[case].append(result)
                        print(f"rep {rep} {case:<16}: {result['pairs_per_s']:>10,.0f} pairs/s, "
                              f"{result['eps']:>10,.0f} records/s ({result['seconds']:.2f} s, "
                              f"peak RSS {result['rss_mb']:.0f} MB)", flush=True)
                    except (BenchFailed, subprocess.TimeoutExpired) as exc:
                        failed[f"join {case}"] = f"rep {rep}: {exc}"
                        print(f"rep {rep} {case}: FAILED: {exc}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    summary: dict[str, dict] = {}
    for case, case_runs in runs.items():
        if case_runs and f"join {case}" not in failed:
            s = summary[case] = {
                "pairs_per_s": statistics.median(r["pairs_per_s"] for r in case_runs),
                "input_eps": statistics.median(r["eps"] for r in case_runs),
                "pairs": pairs,
                "rss_mb": max(r["rss_mb"] for r in case_runs),
                "runs": case_runs,
            }
            print(f"{case}: {s['pairs_per_s']:,.0f} pairs/s (median), "
                  f"{s['input_eps']:,.0f} input records/s, peak RSS {s['rss_mb']:.0f} MB")
    add_ratios(summary, RATIO_BASES, rate="pairs_per_s")
    for base in RATIO_BASES:
        ratio = summary.get("streamkit", {}).get(f"ratio_to_{base.replace('-', '_')}")
        if ratio is not None:
            print(f"streamkit / {base}: {ratio:.2f}x")
    results = {f"join {c}": s for c, s in summary.items()}
    meta = base_meta(
        broker,
        workload="stream-stream inner join, window +-window_ms, record i at base + i ms "
                 f"minus up to {JITTER_MS} ms, per side",
        records_per_side=args.records, keys=args.keys, partitions=PARTITIONS,
        window_ms=args.window_ms, grace_ms=args.grace_ms, expected_pairs=pairs,
        reps=args.reps, seed=args.seed, failed=failed, cases=cases,
        kafka_streams=f"bench/kafka_streams (Kafka Streams 4.4.0), JVM heap -Xmx{KAFKA_STREAMS_HEAP}; "
                      "kafka-streams: default 30 s commit interval, -1s: 1 s, -2t: 2 stream threads")
    write_results(args.out, results, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
