"""Scaling benchmark: W1 (sum of amount per key) with 1, 2 and 4 worker processes of one
streamkit app on an 8-partition topic, and Kafka Streams with 1, 2 and 4 stream threads.

    python bench/scaling.py [--events 1000000] [--keys 10000] [--reps 1]
                            [--processes 1,2,4] [--cases streamkit,kafka-streams]
                            [--broker HOST:PORT] [--out FILE]

One 8-partition topic is produced once (W1's events) and read by every run, each under an
application id of its own. For each repetition and each count N:

- streamkit-<N>p: N processes of bench/cases/streamkit_scaling.py started at once, one app
  id: they join one group and split the 8 partitions (bench/group_run.py: the driver polls
  the group's committed offsets every 50 ms; once they reach every partition's end it tells
  the processes to stop with a file), and each checks the sums its stores hold against the
  expected ones. The driver checks that their keys together are every key, and that the
  last value per key in the changelog topic is the expected sum.
- kafka-streams-<N>t: bench/kafka_streams' W1 main with --threads N and 1 s commits (the
  W1 Kafka Streams case, which checks its store and changelog itself).

Figures per case: `eps` (all events / from the first record any process took to the
commit that covered the last one: group formation and rebalances included, as a user starting
N workers sees them), `eps_per_process` (eps / N), `steady_eps` (streamkit: the records
committed per second by all processes together from one second after the last process took
its first record until the first process ran out of input, read from their samples: the rate
once the group has settled), `records_per_process`, `rss_mb` (peak RSS, the largest process)
and `rss_mb_total`, `cpu_s_total` (streamkit: the processes' CPU seconds, start-up
included); `speedup` is eps / eps of the same system with 1, and a streamkit case's
`ratio_to_kafka_streams` its eps / that of Kafka Streams with as many threads. Results:
"scaling streamkit-1p", ..., "scaling kafka-streams-4t" and "meta".
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
from common import (
    KAFKA_STREAMS_HEAP,
    TOPIC_CONFIGS,
    BenchFailed,
    add_common_args,
    base_meta,
    bench_broker,
    create_topic,
    install_sigterm_as_interrupt,
    kafka_streams_command,
    produce,
    run_json_case,
    verify_commits,
    write_results,
)
from group_run import run_app_processes
from w1 import make_workload

BENCH = Path(__file__).resolve().parent
CASE = BENCH / "cases" / "streamkit_scaling.py"
OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "scaling.json"
PARTITIONS = 8
SETTLE_S = 1.0  # steady_eps starts this long after the last process took its first record
MIN_WINDOW_S = 3.0


# --------------------------------------------------------------------------- results

async def changelog_sums(bootstrap: str, topic: str) -> dict[str, int]:
    from streamkit.testing.kafka import read_topic_async

    return {rec.key.decode(): int(rec.value) for rec in await read_topic_async(bootstrap, topic)}


def steady_rate(results: list[dict]) -> tuple[float | None, float]:
    """Records committed per second by all processes together between SETTLE_S after the
    last process's first record and the moment the first process stopped committing more
    (its input ran out), from the processes' (monotonic time, committed records) samples;
    and the length of that window. None when it is shorter than MIN_WINDOW_S: records are
    counted when committed (every 20,000 records or 1 s), too coarse for a shorter one."""
    def at(samples: list[list[float]], t: float) -> float:
        prev = samples[0]
        for s in samples:
            if s[0] >= t:
                if s[0] == prev[0]:
                    return s[1]
                return prev[1] + (s[1] - prev[1]) * (t - prev[0]) / (s[0] - prev[0])
            prev = s
        return samples[-1][1]

    def last_growth(samples: list[list[float]]) -> float:
        final = samples[-1][1]
        return next(t for t, n in samples if n == final)

    if any(r["first_record_at"] is None or not r["samples"] for r in results):
        return None, 0.0
    start = max(r["first_record_at"] for r in results) + SETTLE_S
    end = min(last_growth(r["samples"]) for r in results)
    if end - start < MIN_WINDOW_S:
        return None, max(0.0, end - start)
    done = sum(at(r["samples"], end) - at(r["samples"], start) for r in results)
    return done / (end - start), end - start


# --------------------------------------------------------------------------- one run of each system

def run_streamkit(n: int, args, broker, topic: str, ends: dict[int, int],
                  expected: dict[str, int], workdir: Path, timeout: float) -> dict:
    bootstrap = broker.bootstrap
    (workdir / "expected.json").write_bytes(orjson.dumps(expected))
    figures, results = run_app_processes(
        [args.python, str(CASE), "--bootstrap", bootstrap, "--topic", topic, "--events",
         str(args.events), "--workdir", str(workdir)], n, f"scale-{uuid.uuid4().hex[:10]}",
        workdir, broker, {(topic, p): end for p, end in ends.items()}, timeout, args.events)

    keys = [k for r in results for k in r["stored_keys"]]
    if sorted(keys) != sorted(expected):
        raise BenchFailed(f"the processes' stores hold {len(keys)} keys ({len(set(keys))} "
                          f"distinct), expected each of {len(expected)} once")
    changelog = asyncio.run(changelog_sums(bootstrap, results[0]["changelog"]))
    wrong = [k for k, v in expected.items() if changelog.get(k) != v]
    if wrong or len(changelog) != len(expected):
        raise BenchFailed(f"changelog: {len(wrong)} keys differ from the expected sums, "
                          f"{len(changelog)} keys vs {len(expected)}")
    steady, window = steady_rate(results)
    return {**figures, "eps_per_process": figures["eps"] / n, "steady_eps": steady,
            "steady_window_s": round(window, 2),
            "tasks_per_process": [len(r["tasks"]) for r in results],
            "commit_p99_ms": max((r.get("commit_p99_ms") or 0) for r in results)}


def run_kafka_streams(n: int, args, bootstrap: str, topic: str, ends: dict[int, int],
                      expected: dict[str, int], workdir: Path, timeout: float) -> dict:
    (workdir / "expected.json").write_bytes(orjson.dumps(expected))
    cmd = kafka_streams_command("W1", "--bootstrap", bootstrap, "--topic", topic, "--events",
                                str(args.events), "--workdir", str(workdir),
                                "--commit-interval-ms", "1000", "--threads", str(n))
    result = run_json_case(cmd, workdir, timeout)
    verify_commits(bootstrap, topic, result, ends)
    return {"eps": result["eps"], "seconds": round(result["seconds"], 3),
            "eps_per_process": result["eps"], "eps_per_thread": result["eps"] / n,
            "processed_seconds": result.get("processed_seconds"), "rss_mb": result["rss_mb"],
            "rss_mb_total": result["rss_mb"], "threads": n, "processes": 1}


# --------------------------------------------------------------------------- main

def summarize(runs: dict[str, list[dict]]) -> dict[str, dict]:
    summary = {}
    for case, rs in runs.items():
        if not rs:
            continue
        s = {"eps": statistics.median(r["eps"] for r in rs),
             "rss_mb": max(r["rss_mb"] for r in rs), "runs": rs}
        for name in ("eps_per_process", "steady_eps"):
            xs = [r[name] for r in rs if r.get(name) is not None]
            s[name] = statistics.median(xs) if xs else None
        summary[case] = s
    for case, s in summary.items():
        system = case.rsplit("-", 1)[0]
        one = next((summary[c] for c in summary if c.rsplit("-", 1)[0] == system
                    and c.rsplit("-", 1)[1] in ("1p", "1t")), None)
        s["speedup"] = s["eps"] / one["eps"] if one else None
        if system == "streamkit":  # against Kafka Streams with as many stream threads
            threads = summary.get(f"kafka-streams-{case.rsplit('-', 1)[1][:-1]}t")
            s["ratio_to_kafka_streams"] = s["eps"] / threads["eps"] if threads else None
    return summary


def print_table(summary: dict[str, dict], order: list[str], failed: dict[str, str]) -> None:
    def num(x, fmt=",.0f"):
        return "-" if x is None else format(x, fmt)

    print()
    print(f"{'case':<20} {'events/s':>10} {'per process':>12} {'steady':>10} {'speedup':>8} "
          f"{'peak RSS MB':>12}")
    for case in order:
        if case in summary:
            s = summary[case]
            print(f"{case:<20} {num(s['eps']):>10} {num(s['eps_per_process']):>12} "
                  f"{num(s['steady_eps']):>10} {num(s['speedup'], '.2f'):>8} {s['rss_mb']:>12.0f}")
        elif case in failed:
            print(f"{case:<20} FAILED {failed[case][:200]}")
    print("(events/s: all events / first record to the commit of the last; steady: the "
          "group's rate once settled; speedup: / the same system with 1)")
    print()


def main() -> int:
    p = argparse.ArgumentParser(description="scaling benchmark: W1 with 1, 2, 4 processes")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--processes", default="1,2,4", help="worker processes / stream threads")
    p.add_argument("--cases", default="streamkit,kafka-streams")
    add_common_args(p, OUT_DEFAULT)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--python", default=sys.executable, help="interpreter for the workers")
    args = p.parse_args()
    counts = [int(x) for x in args.processes.split(",") if x.strip()]
    systems = [c.strip() for c in args.cases.split(",") if c.strip()]
    if any(s not in ("streamkit", "kafka-streams") for s in systems):
        p.error("--cases: streamkit, kafka-streams")
    timeout = 300 + args.events / 500
    install_sigterm_as_interrupt()

    print(f"scaling: {args.events:,} events, {args.keys:,} keys, {PARTITIONS} partitions, "
          f"{counts} processes/threads, {args.reps} rep(s), {systems}", flush=True)
    records, expected = make_workload(args.events, args.keys, args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="scaling-"))
    order = [f"{s}-{n}{'p' if s == 'streamkit' else 't'}" for s in systems for n in counts]
    runs: dict[str, list[dict]] = {c: [] for c in order}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, scratch) as broker:
            bootstrap = broker.bootstrap
            if broker.started_here:
                # The group's committed offsets and members are read with admin requests
                # whose answers the dev broker gets wrong (bench/README.md).
                print("the scaling benchmark needs Apache Kafka: --broker HOST:PORT",
                      file=sys.stderr)
                return 2
            topic = f"scaling-{uuid.uuid4().hex[:8]}"
            t0 = time.perf_counter()
            asyncio.run(create_topic(bootstrap, topic, PARTITIONS, TOPIC_CONFIGS))
            ends = asyncio.run(produce(bootstrap, topic, records))
            if sum(ends.values()) != args.events:
                raise BenchFailed(f"produced {sum(ends.values())} records, expected {args.events}")
            print(f"{broker.description}; topic {topic} produced in "
                  f"{time.perf_counter() - t0:.1f}s", flush=True)
            for rep in range(1, args.reps + 1):
                for case in order:
                    if case in failed:
                        continue
                    system, n = case.rsplit("-", 1)[0], int(case.rsplit("-", 1)[1][:-1])
                    workdir = scratch / f"{case}-r{rep}"
                    workdir.mkdir()
                    print(f"rep {rep} {case:<18}", end="", flush=True)
                    try:
                        if system == "streamkit":
                            r = run_streamkit(n, args, broker, topic, ends, expected, workdir,
                                              timeout)
                        else:
                            r = run_kafka_streams(n, args, bootstrap, topic, ends, expected,
                                                  workdir, timeout)
                        r["rep"] = rep
                        runs[case].append(r)
                        steady = r.get("steady_eps")
                        print(f" {r['eps']:>10,.0f} events/s in {r['seconds']:.2f}s"
                              + (f", steady {steady:,.0f}" if steady else "")
                              + f", peak RSS {r['rss_mb']:.0f} MB", flush=True)
                    except BenchFailed as exc:
                        failed[case] = f"rep {rep}: {exc}"
                        print(f" FAILED: {exc}", flush=True)
                    finally:
                        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    summary = summarize(runs)
    print_table(summary, order, failed)
    results = {f"scaling {c}": summary[c] for c in order if c in summary}
    meta = base_meta(
        broker, workload="W1 (sum of amount per key) on one 8-partition topic read by every run",
        events=args.events, keys=args.keys, partitions=PARTITIONS, reps=args.reps,
        counts=counts, cases=order, cpus_note="the machine's cores are shared by every process",
        streamkit="N processes of one app (bench/cases/streamkit_scaling.py), profile defaults",
        kafka_streams=f"bench/kafka_streams W1, one JVM (-Xmx{KAFKA_STREAMS_HEAP}), N stream "
                      "threads, 1 s commit interval",
        failed={f"scaling {c}": why for c, why in failed.items()})
    return write_results(args.out, results, meta, failed)


if __name__ == "__main__":
    sys.exit(main())
