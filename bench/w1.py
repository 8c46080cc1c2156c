"""W1 throughput benchmark: stateful sum of amount per key.

    python bench/w1.py [--events N] [--reps 3] [--cases ceiling,faust,quix,streamkit,...]
                       [--broker HOST:PORT] [--out FILE]

Uses the broker --broker names (bench/run.py passes it), else starts one dev broker for the
whole run, and for each repetition and each case: creates a fresh 4-partition topic,
produces the W1 events into it (keys "k<i>" as UTF-8 bytes, partitioned by Kafka's
default murmur2 partitioner, values orjson {"key": ..., "amount": 1..9}), writes the
expected final sums to <workdir>/expected.json and runs the case as a subprocess, one at a
time:

    python bench/cases/<file> --bootstrap HOST:PORT --topic T --events N --workdir DIR

The Kafka Streams cases run the same way, as `java ... streamkit.bench.W1` with the same
arguments (bench/kafka_streams, built by Maven when missing or changed; KAFKA_STREAMS_CASES
gives each case's options).

The case prints one JSON line as its last stdout line ({"eps", "seconds", "rss_mb",
"checked", "group", ...}). The driver then checks, from the broker, that the case's
consumer group committed the end offset of every partition.

Prints a table (median events/s, the ratio of each case to quix, faust, kafka-streams and
kafka-streams-1s, peak RSS) and writes the results ("W1 <case>" keys and "meta"). Exits
non-zero when a case is missing or failed.
"""
from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from common import (
    KAFKA_STREAMS_HEAP,
    PARTITIONS,
    TOPIC_CONFIGS,
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
    summarize_runs,
    verify_commits,
    write_results,
)

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CASES_DIR = BENCH / "cases"
OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "w1.json"

# case name -> script under bench/cases/. A script may not be named after the package it
# imports (bench/cases/faust.py would shadow faust, streamkit.py would shadow streamkit),
# hence the _table suffixes.
CASE_FILES = {
    "ceiling": "ceiling.py",
    "faust": "faust_table.py",
    "quix": "quix.py",
    "streamkit": "streamkit_table.py",
    "streamkit-agent": "streamkit_agent.py",
    "streamkit-eos": "streamkit_eos.py",
}
# case name -> the options of bench/kafka_streams' W1 main: Kafka Streams' default 30 s
# commit interval, streamkit's 1 s, and 1 s with two stream threads.
KAFKA_STREAMS_CASES = {
    "kafka-streams": (),
    "kafka-streams-1s": ("--commit-interval-ms", "1000"),
    "kafka-streams-1s-2t": ("--commit-interval-ms", "1000", "--threads", "2"),
    # exactly_once_v2 beside streamkit-eos: Kafka Streams' default commit interval under
    # exactly-once (100 ms), and streamkit's 1 s.
    "kafka-streams-eos": ("--guarantee", "exactly_once_v2"),
    "kafka-streams-eos-1s": ("--guarantee", "exactly_once_v2", "--commit-interval-ms", "1000"),
}
KNOWN_CASES = [*CASE_FILES, *KAFKA_STREAMS_CASES]
DEFAULT_CASES = ",".join(KNOWN_CASES)
# Every case gets ratio_to_<base> for these.
RATIO_BASES = ("quix", "faust", "kafka-streams", "kafka-streams-1s", "kafka-streams-eos-1s",
               "streamkit")
CaseFailed = BenchFailed  # the name bench/windows.py and bench/stream_join.py used


# --------------------------------------------------------------------------- workload

def make_workload(events: int, keys: int, seed: int):
    """The W1 records (key bytes, value bytes) and the expected final sums."""
    rng = random.Random(seed)
    records = []
    expected: dict[str, int] = {}
    dumps = json_bytes
    for _ in range(events):
        key = f"k{rng.randrange(keys)}"
        amount = rng.randint(1, 9)
        records.append((key.encode(), dumps({"key": key, "amount": amount})))
        expected[key] = expected.get(key, 0) + amount
    return records, expected


# --------------------------------------------------------------------------- reporting

def summarize(runs: dict[str, list[dict]], failed: dict[str, str]) -> dict[str, dict]:
    summary = {case: summarize_runs(rs) for case, rs in runs.items() if rs and case not in failed}
    add_ratios(summary, RATIO_BASES)
    return summary


def print_table(summary: dict[str, dict], failed: dict[str, str], order: list[str]) -> None:
    def ratio(x):
        return "-" if x is None else f"{x:.2f}"

    heads = {"quix": "x quix", "faust": "x faust", "kafka-streams": "x KS",
             "kafka-streams-1s": "x KS-1s", "kafka-streams-eos-1s": "x KSe-1s",
             "streamkit": "x sk"}
    print()
    print(f"{'case':<20} {'events/s (median)':>18} "
          + " ".join(f"{heads[b]:>8}" for b in RATIO_BASES) + f" {'peak RSS MB':>12}")
    for case in order:
        if case in summary:
            s = summary[case]
            ratios = " ".join(f"{ratio(s['ratio_to_' + b.replace('-', '_')]):>8}"
                              for b in RATIO_BASES)
            print(f"{case:<20} {s['eps']:>18,.0f} {ratios} {s['rss_mb']:>12.0f}")
        elif case in failed:
            print(f"{case:<20} {'FAILED':>18}   {failed[case][:200]}")
    print("(x <base>: the case's events/s / the base's; KS = kafka-streams)")
    print()


def case_command(case: str, python: str, bootstrap: str, topic: str, events: int,
                 workdir: Path) -> list[str]:
    """The command of one case run (a Python case script or the Kafka Streams W1 main)."""
    contract = ["--bootstrap", bootstrap, "--topic", topic, "--events", str(events),
                "--workdir", str(workdir)]
    if case in KAFKA_STREAMS_CASES:
        return kafka_streams_command("W1", *contract, *KAFKA_STREAMS_CASES[case])
    script = CASES_DIR / CASE_FILES[case]
    if not script.exists():
        raise BenchFailed(f"missing case file bench/cases/{CASE_FILES[case]}")
    return [python, str(script), *contract]


# --------------------------------------------------------------------------- main

def main() -> int:
    p = argparse.ArgumentParser(description="W1 throughput benchmark (sum per key)")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cases", default=DEFAULT_CASES,
                   help=f"comma-separated, from {','.join(KNOWN_CASES)}")
    add_common_args(p, OUT_DEFAULT)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed per case run (default 300 + events/500)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the cases")
    p.add_argument("--keep-workdir", action="store_true", help="keep the case scratch dirs")
    args = p.parse_args()

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in KNOWN_CASES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; known: {KNOWN_CASES}")
    timeout = args.timeout or 300 + args.events / 500
    install_sigterm_as_interrupt()

    print(f"W1: {args.events:,} events, {args.keys:,} keys, {PARTITIONS} partitions, "
          f"{args.reps} rep(s), cases {cases}", flush=True)
    records, expected = make_workload(args.events, args.keys, args.seed)

    scratch = Path(tempfile.mkdtemp(prefix="w1-"))
    run_id = uuid.uuid4().hex[:8]
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, scratch) as broker:
            bootstrap = broker.bootstrap
            drop_kafka_streams_on_dev(broker, cases)
            print(f"{broker.description} at {bootstrap}, profile {broker.profile}", flush=True)
            for rep in range(1, args.reps + 1):
                for case in cases:
                    if case in failed:
                        continue
                    workdir = scratch / f"{case}-r{rep}"
                    workdir.mkdir()
                    try:
                        topic = f"w1-{run_id}-{case}-r{rep}"
                        t0 = time.perf_counter()
                        asyncio.run(create_topic(bootstrap, topic, PARTITIONS))
                        ends = asyncio.run(produce(bootstrap, topic, records))
                        produced = sum(ends.values())
                        if produced != args.events:
                            raise BenchFailed(f"produced {produced} records, expected {args.events}")
                        produce_s = time.perf_counter() - t0
                        with open(workdir / "expected.json", "wb") as f:
                            f.write(orjson.dumps(expected))
                        print(f"rep {rep} {case:<10} topic {topic} produced in {produce_s:.1f}s; "
                              f"running...", end="", flush=True)
                        cmd = case_command(case, args.python, bootstrap, topic, args.events,
                                           workdir)
                        result = run_json_case(cmd, workdir, timeout,
                                               env={"STREAMKIT_PROFILE": broker.profile})
                        verify_commits(bootstrap, topic, result, ends)
                        result["rep"] = rep
                        result["topic"] = topic
                        result["produce_seconds"] = round(produce_s, 3)
                        runs[case].append(result)
                        print(f" {result['eps']:,.0f} events/s in {result['seconds']:.2f}s, "
                              f"peak RSS {result['rss_mb']:.0f} MB "
                              f"(process wall {result['wall_seconds']:.1f}s)", flush=True)
                    except BenchFailed as exc:
                        failed[case] = f"rep {rep}: {exc}"
                        print(f"\nrep {rep} {case}: FAILED: {exc}", flush=True)
                    finally:
                        if not args.keep_workdir:
                            shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if not args.keep_workdir:
            shutil.rmtree(scratch, ignore_errors=True)

    summary = summarize(runs, failed)
    print_table(summary, failed, cases)
    results = {f"W1 {case}": summary[case] for case in cases if case in summary}
    meta = base_meta(
        broker,
        workload="W1: sum of amount per key, RocksDB state with changelog (ceiling: none)",
        events=args.events, keys=args.keys, partitions=PARTITIONS, reps=args.reps,
        seed=args.seed, cases=cases,
        input_producer="confluent-kafka, linger.ms=5, batch.size=256 KiB, idempotent, "
                       "default (murmur2) partitioner",
        input_topic_configs=TOPIC_CONFIGS,
        eps="events / seconds; seconds = from the case's first record to the end of its "
            "last offset commit (after its final flush); eps is the median of reps",
        rss_mb="peak RSS (VmHWM) of the case process, max over reps",
        kafka_streams=f"bench/kafka_streams (Kafka Streams 4.4.0), JVM heap -Xmx{KAFKA_STREAMS_HEAP}; "
                      "kafka-streams: default 30 s commit interval, -1s: 1 s, -2t: 2 stream threads",
        failed={f"W1 {c}": why for c, why in failed.items()})
    return write_results(args.out, results, meta, failed)


if __name__ == "__main__":
    sys.exit(main())
