"""Stream-stream windowed join benchmark: joined pairs/s of an inner join of two topics,
and the worker's peak RSS.

    python bench/stream_join.py [--records 150000] [--keys 10000] [--window-ms 5000]
                                [--grace-ms 1000] [--reps 1] [--broker HOST:PORT] [--out FILE]
                                [--cases streamkit,streamkit-2p,kafka-streams,...]

Without --broker it starts a dev broker. Results: "join <case>" ({"pairs_per_s",
"input_eps", "pairs", "rss_mb", "runs", "ratio_to_kafka_streams", "ratio_to_kafka_streams_1s",
"ratio_to_kafka_streams_1s_2t"})
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

streamkit-2p: two such worker processes of one app, started at once (bench/group_run.py):
they join one group and split the partitions, and are timed from the first record either
took to the moment the driver saw the group's commits at the end of both inputs (polled
every 50 ms). A rebalance while they start may have a record joined twice (at least
once): the driver checks that the output topic holds every expected pair (computed by
brute force, by the records' "n") and no other, and reports the extra records as
`duplicates`. Apache Kafka only (the group's offsets and members are read with admin
requests). Its `rss_mb` is the larger process's, `rss_mb_total` both together.

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

from _common import (  # noqa: E402
    fail,
    records_done,
    report,
    run_worker,
    stop_self,
    streamkit_settings,
    until_done,
    when_started,
)
from common import (  # noqa: E402
    KAFKA_STREAMS_HEAP,
    PARTITIONS,
    BenchFailed,
    add_common_args,
    add_ratios,
    base_meta,
    bench_broker,
    create_topic,
    drop_kafka_streams_on_dev,
    install_sigterm_as_interrupt,
    json_bytes,
    kafka_streams_command,
    produce,
    run_json_case,
    verify_commits,
    write_results,
)
from group_run import run_app_processes  # noqa: E402

JITTER_MS = 200
PAIR_BASE = 1 << 24  # a pair as one int (left n * PAIR_BASE + right n): up to 16 M per side
# case name -> the options of bench/kafka_streams' Join main.
KAFKA_STREAMS_CASES = {
    "kafka-streams": (),
    "kafka-streams-1s": ("--commit-interval-ms", "1000"),
    "kafka-streams-1s-2t": ("--commit-interval-ms", "1000", "--threads", "2"),
}
# Every case gets ratio_to_<base> (of pairs/s) for these.
RATIO_BASES = ("kafka-streams", "kafka-streams-1s", "kafka-streams-1s-2t")
# streamkit-2p: two worker processes of one app (bench/group_run.py), started at once.
PROCESSES = {"streamkit": 1, "streamkit-2p": 2}
CASES = (*PROCESSES, *KAFKA_STREAMS_CASES)
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


def expected_pair_set(left, right, before: int, after: int) -> set[int]:
    """The joined pairs as left index * PAIR_BASE + right index (the values' "n")."""
    times: dict[bytes, list[tuple[int, int]]] = {}
    for n, (k, _v, ts) in enumerate(right):
        times.setdefault(k, []).append((ts, n))
    for entries in times.values():
        entries.sort()
    pairs = set()
    for n, (k, _v, ts) in enumerate(left):
        entries = times.get(k, ())
        lo = bisect.bisect_left(entries, (ts - before, -1))
        hi = bisect.bisect_right(entries, (ts + after, PAIR_BASE))
        pairs.update(n * PAIR_BASE + m for _t, m in entries[lo:hi])
    return pairs


async def output_records(bootstrap: str, topic: str) -> list:
    """The records of topic, read to the high watermark of each fetch (the dev broker's
    ListOffsets answers cannot be trusted: docs/architecture.md)."""
    from streamkit.testing.kafka import read_topic_async

    return await read_topic_async(bootstrap, topic, timeout=120)


def check_output(bootstrap: str, topic: str, pairs: int, expected: set[int] | None) -> int:
    """Check the output topic: `pairs` records, or with `expected` (several processes:
    a rebalance may emit a pair again, at least once) every expected pair and no other.
    Returns the number of records."""
    records = asyncio.run(output_records(bootstrap, topic))
    if expected is None:
        if len(records) != pairs:
            raise BenchFailed(f"the output topic holds {len(records)} records, {pairs} expected")
        return len(records)
    got = set()
    for rec in records:
        value = orjson.loads(rec.value)
        got.add(value["l"] * PAIR_BASE + value["r"])
    if got != expected:
        raise BenchFailed(f"the output topic holds {len(got)} distinct pairs "
                          f"({len(got - expected)} unexpected), {len(expected)} expected "
                          f"({len(expected - got)} missing)")
    return len(records)


def run_processes(n: int, options: list[str], args, broker, topic: str,
                  ends: dict[str, dict[int, int]], workdir: Path) -> dict:
    """streamkit-<n>p: n processes of one app, timed from the first record any of them took
    to the moment the group's commits were seen at the end of both inputs."""
    result, each = run_app_processes(
        [sys.executable, str(Path(__file__)), "--case", *options, "--records", str(args.records)],
        n, f"sjoin-{uuid.uuid4().hex[:10]}", workdir, broker,
        {(f"{topic}-{name}", p): end for name, e in ends.items() for p, end in e.items()},
        120 + args.records / 250, 2 * args.records)
    result["pairs_emitted"] = [r["pairs"] for r in each]
    return result


# --------------------------------------------------------------------------- the case

def streamkit_case(args) -> None:
    """One worker; with --index, one of the processes of streamkit-2p (app id --app-id),
    which works until the driver writes WORKDIR/done and reports the pairs it emitted."""
    from streamkit import App, JoinWindows

    expected = json.loads((args.workdir / "expected.json").read_text())
    alone = args.index is None
    app = App(f"sjoin-{uuid.uuid4().hex[:10]}" if alone else args.app_id,
              settings=streamkit_settings(args.bootstrap, args.workdir if alone
                                          else args.workdir / f"p{args.index}"))
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
            if alone:
                seconds = await records_done(runner, 2 * args.events)
            else:
                await until_done(runner, args.workdir)
                seconds = 0.0  # the driver times the group
            late = runner.late_records  # with those of tasks moved away in a rebalance
            problem = None
            if (alone and counted[0] != expected["pairs"]) or late:
                problem = (f"{counted[0]} pairs joined, {expected['pairs']} expected; "
                           f"{late} late records")
            state["result"] = {"seconds": seconds, "group": runner.group_id,
                               "pairs": counted[0], "problem": problem,
                               "commits": runner.counters["commits"],
                               "records": runner.counters["records"],
                               "first_record_at": runner.first_record_at}
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
    report(2 * args.events if alone else res["records"], res["seconds"], True,
           group=res["group"], pairs=res["pairs"], first_record_at=res["first_record_at"],
           pairs_per_s=res["pairs"] / res["seconds"] if alone else None, commits=res["commits"],
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
    p.add_argument("--app-id", help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, help=argparse.SUPPRESS)
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
    pair_set = expected_pair_set(left, right, args.window_ms, args.window_ms)
    pairs = len(pair_set)
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
                        several = PROCESSES.get(case, 1) > 1
                        if several:
                            result = run_processes(PROCESSES[case], options, args, broker,
                                                   topic, ends, workdir)
                        else:
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
                        written = check_output(bootstrap, f"{topic}-out", pairs,
                                               pair_set if several else None)
                        if several:
                            result["pairs_per_s"] = pairs / result["seconds"]
                            result["duplicates"] = written - pairs
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
    for case in ("streamkit", "streamkit-2p"):
        for base in RATIO_BASES:
            ratio = summary.get(case, {}).get(f"ratio_to_{base.replace('-', '_')}")
            if ratio is not None:
                print(f"{case} / {base}: {ratio:.2f}x")
    results = {f"join {c}": s for c, s in summary.items()}
    meta = base_meta(
        broker,
        workload="stream-stream inner join, window +-window_ms, record i at base + i ms "
                 f"minus up to {JITTER_MS} ms, per side",
        records_per_side=args.records, keys=args.keys, partitions=PARTITIONS,
        window_ms=args.window_ms, grace_ms=args.grace_ms, expected_pairs=pairs,
        reps=args.reps, seed=args.seed, failed=failed, cases=cases,
        streamkit="profile defaults; streamkit-2p: two worker processes of one app",
        kafka_streams=f"bench/kafka_streams (Kafka Streams 4.4.0), JVM heap -Xmx{KAFKA_STREAMS_HEAP}; "
                      "kafka-streams: default 30 s commit interval, -1s: 1 s, -2t: 2 stream threads")
    write_results(args.out, results, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
