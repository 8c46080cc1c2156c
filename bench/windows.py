"""Windowed benchmark: a 60 s tumbling sum of amount per key, streamkit against a plain
Faust windowed table and Kafka Streams, on the same broker in the same run.

    python bench/windows.py [--events 300000] [--keys 10000] [--reps 1]
                            [--cases streamkit,faust,kafka-streams,...] [--broker HOST:PORT]
                            [--out FILE]

Without --broker it starts a dev broker. Results: "windows <case>" ({"eps", "rss_mb",
"runs", "ratio_to_<base>" for faust, kafka-streams-final, kafka-streams-final-1s and
kafka-streams-final-1s-2t}) and
"meta".

The events are W1's (keys "k<i>", amount 1..9, seeded), with event time spread evenly over
ten minutes ending about now (Faust expires windows on the wall clock, so older event
times would be dropped), in order, as the record timestamp and in the value ("ts").
For each repetition and case, one at a time: a fresh 4-partition topic, the events
produced into it, the expected sum per (key, window start) in <workdir>/expected.json,
and the case run as a subprocess of this file (`--case NAME`), which prints one JSON
line (bench/cases/_common.py's contract); the driver then checks that the case's group
committed every partition's end offset.

- streamkit: app.source(topic).group_by_key().windowed_by(Tumbling(60 s, grace 5 s))
  .aggregate(..., emit="final", to=<topic>-sums): the windowed table and its changelog,
  plus a final result per closed window written to a topic. Checked: the finals read back
  from that topic plus the windows still open in the stores equal the expected sums.
- faust: app.Table("sums", default=int).tumbling(60, expires=1 h).relative_to_stream(),
  one agent doing table[key] += amount (settings as bench/cases/faust_table.py).
  Checked: the table's windows equal the expected sums.
- kafka-streams, kafka-streams-1s, kafka-streams-final, kafka-streams-final-1s,
  kafka-streams-final-1s-2t: the Windows main of bench/kafka_streams (java, heap
  KAFKA_STREAMS_HEAP):
  groupByKey().windowedBy(TimeWindows.ofSizeAndGrace(60 s, 5 s)).aggregate(...) to
  <topic>-sums, the -final cases through suppress(untilWindowCloses(unbounded())) first;
  Kafka Streams' default 30 s commit interval, the -1s cases streamkit's 1 s, -2t with two
  stream threads. Checked: the
  last value per window read back from that topic (plus, -final, the windows the store
  still holds that were not emitted) equal the expected sums.
- streamkit-2p: two streamkit workers as above, processes of one app started at once
  (bench/group_run.py): they split the partitions, and are timed from the first record
  either took to the moment the driver saw the group's commits at the end of the input
  (polled every 50 ms). Checked: the finals in the topic (a window whose final came again
  after a rebalance must have the same value each time: counted as `duplicates`) plus the
  windows both processes' stores hold open equal the expected sums. Apache Kafka only (the group's offsets and
  members are read with admin requests); `rss_mb` the larger process's, `rss_mb_total`
  both.

Timing as W1: from the first record to the end of the commit covering the last one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH / "cases")]

import w1  # noqa: E402  (bench/w1.py: the W1 events)
from _common import (  # noqa: E402
    faust_app,
    faust_commit_through,
    finish,
    peak_rss_mb,
    records_done,
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
    summarize_runs,
    verify_commits,
    write_results,
)
from group_run import run_app_processes  # noqa: E402

SIZE_MS, GRACE_MS, SPAN_MS = 60_000, 5_000, 600_000
PYTHON_CASES = ("streamkit", "faust")
# case name -> the options of bench/kafka_streams' Windows main.
KAFKA_STREAMS_CASES = {
    "kafka-streams": (),
    "kafka-streams-1s": ("--commit-interval-ms", "1000"),
    "kafka-streams-final": ("--final", "true"),
    "kafka-streams-final-1s": ("--final", "true", "--commit-interval-ms", "1000"),
    "kafka-streams-final-1s-2t": ("--final", "true", "--commit-interval-ms", "1000",
                                  "--threads", "2"),
}
# Cases of several worker processes of one app (bench/group_run.py), started at once.
PROCESSES = {"streamkit-2p": 2}
CASES = (*PYTHON_CASES, *PROCESSES, *KAFKA_STREAMS_CASES)
# Every case gets ratio_to_<base> for these (streamkit emits final results, as -final does).
RATIO_BASES = ("faust", "kafka-streams-final", "kafka-streams-final-1s",
               "kafka-streams-final-1s-2t")
OUT_DEFAULT = Path(tempfile.gettempdir()) / "streamkit-bench" / "windows.json"


# --------------------------------------------------------------------------- workload

def workload(events: int, keys: int, seed: int, end_ms: int):
    records, _ = w1.make_workload(events, keys, seed)
    base = end_ms - SPAN_MS
    out, expected = [], {}
    for i, (kb, vb) in enumerate(records):
        ts = base + i * SPAN_MS // events
        value = orjson.loads(vb)
        value["ts"] = ts
        out.append((kb, json_bytes(value), ts))
        w = f"{value['key']}|{ts - ts % SIZE_MS}"
        expected[w] = expected.get(w, 0) + value["amount"]
    return out, expected


def compare(actual: dict[str, int], expected: dict[str, int]) -> str | None:
    if actual == expected:
        return None
    wrong = [(k, actual.get(k), v) for k, v in expected.items() if actual.get(k) != v]
    extra = [k for k in actual if k not in expected]
    return f"{len(wrong)} windows wrong or missing (e.g. {wrong[:3]}), {len(extra)} unexpected"


# --------------------------------------------------------------------------- the cases

def windowed_sum(app, topic: str, out_topic: str):
    """The streamkit topology of this benchmark: the sums table, finals to out_topic."""
    from streamkit import Tumbling

    return (app.source(topic).group_by_key()
               .windowed_by(Tumbling(size_ms=SIZE_MS, grace_ms=GRACE_MS))
               .aggregate("sums", initial=0, add=lambda acc, ev: acc + ev["amount"],
                          emit="final", to=out_topic))


async def final_sums(bootstrap: str, out_topic: str) -> tuple[dict[str, int], int, str | None]:
    """The final results in out_topic, as "key|start" -> sum; how many windows' finals came
    again (at least once: after a rebalance); and what is wrong if a window's finals
    differ."""
    from streamkit.testing.kafka import read_topic_async

    got: dict[str, int] = {}
    again, differ = 0, []
    for rec in await read_topic_async(bootstrap, out_topic):
        w = orjson.loads(rec.key)
        window, value = f"{w['key']}|{w['start']}", int(rec.value)
        if window in got:
            again += 1
            if got[window] != value:
                differ.append((window, got[window], value))
        got[window] = value
    problem = f"{len(differ)} windows with differing finals, e.g. {differ[:3]}" if differ else None
    return got, again, problem


def streamkit_case(args) -> None:
    """One worker; with --index, one of the processes of streamkit-2p (app id --app-id),
    which works until the driver writes WORKDIR/done and leaves the windows its stores hold
    open in WORKDIR/p<index>-open.json for the driver's check."""
    from streamkit import App
    from streamkit.windows.codec import Agg

    alone = args.index is None
    app = App(f"win-streamkit-{uuid.uuid4().hex[:10]}" if alone else args.app_id,
              settings=streamkit_settings(args.bootstrap, args.workdir if alone
                                          else args.workdir / f"p{args.index}"))
    out_topic = f"{args.topic}-sums"
    sums = windowed_sum(app, args.topic, out_topic)
    state = {"result": None, "error": None}

    def open_windows(runner) -> dict[str, int]:
        got: dict[str, int] = {}
        for task in runner.tasks.values():
            store = task.stores[sums.name]
            for kb, vb in store.raw_items(prefix=b"w"):
                key, start, _end = store.keys.decode(kb)
                agg = store.values.decode(vb)
                if type(agg) is Agg and agg.closed is None:
                    got[f"{key}|{start}"] = agg.value
        return got

    async def finisher():
        runner = app.processors
        try:
            if alone:
                seconds = await records_done(runner, args.events)
                finals, _again, problem = await final_sums(args.bootstrap, out_topic)
                got = {**finals, **open_windows(runner)}
                problem = problem or compare(got, _expected(args))
            else:
                await until_done(runner, args.workdir, restored=True)
                seconds, got, problem = 0.0, open_windows(runner), None  # the driver checks
                (args.workdir / f"p{args.index}-open.json").write_bytes(orjson.dumps(got))
            state["result"] = {"seconds": seconds, "group": runner.group_id, "keys": len(got),
                               "problem": problem, "commits": runner.counters["commits"],
                               "records": runner.counters["records"],
                               "first_record_at": runner.first_record_at}
        except Exception as exc:
            state["error"] = repr(exc)
        finally:
            stop_self(state)

    when_started(app, finisher)
    run_worker(app)
    res = state["result"] or {}
    finish(state, args.events if alone else res.get("records", 0), commits=res.get("commits"),
           first_record_at=res.get("first_record_at"), profile=app.settings.profile,
           settings="streamkit profile defaults; Tumbling(60 s, grace 5 s), emit=final to a topic")


def faust_case(args) -> None:
    from datetime import timedelta

    group = f"win-faust-{uuid.uuid4().hex[:10]}"
    app = faust_app(group, args.bootstrap, args.workdir)
    source = app.topic(args.topic, key_serializer="raw", value_serializer="json", partitions=4)
    table = app.Table("sums", default=int, partitions=4).tumbling(
        SIZE_MS / 1000, expires=timedelta(hours=1)).relative_to_stream()
    state = {"n": 0, "t0": None, "last": {}, "result": None, "error": None}
    settings = ("store=rocksdb://, tumbling(60, expires=1 h).relative_to_stream(), "
                "producer_linger=0.005")

    @app.agent(source)
    async def summer(stream):
        last = state["last"]
        async for value in stream:
            if state["t0"] is None:
                state["t0"] = time.perf_counter()
            table[value["key"]] += value["amount"]
            msg = stream.current_event.message
            last[msg.tp] = msg.offset
            state["n"] += 1

    @app.task
    async def finisher():
        try:
            while state["n"] < args.events:
                await asyncio.sleep(0.005)
            await faust_commit_through(app, state["last"])
            await app.producer.flush()
            seconds = time.perf_counter() - state["t0"]
            got = {f"{key}|{round(rng[0] * 1000)}": v for (key, rng), v in table.table.items()}
            state["result"] = {"seconds": seconds, "group": group, "keys": len(got),
                               "problem": compare(got, _expected(args)),
                               "rss_mb_at_end": round(peak_rss_mb(), 1)}
        except Exception as exc:
            state["error"] = repr(exc)
        finally:
            stop_self(state, on_stuck=lambda: finish(state, args.events, settings=settings))

    run_worker(app)
    finish(state, args.events, settings=settings)


def _expected(args) -> dict[str, int]:
    return json.loads((args.workdir / "expected.json").read_text())


# --------------------------------------------------------------------------- the driver

def run_processes(n: int, contract: list[str], args, broker, topic: str, ends: dict[int, int],
                  workdir: Path) -> dict:
    """streamkit-<n>p: n processes of one app, timed from the first record any of them took
    to the moment the group's commits were seen at the end of the input."""
    result, _ = run_app_processes([sys.executable, str(Path(__file__)), "--case", "streamkit",
                                   *contract], n, f"win-streamkit-{uuid.uuid4().hex[:10]}",
                                  workdir, broker, {(topic, p): end for p, end in ends.items()},
                                  120 + args.events / 500, args.events)
    return result


def check_processes(bootstrap: str, topic: str, workdir: Path, n: int,
                    expected: dict[str, int]) -> int:
    """The final results in the output topic (a window's finals all equal) plus the windows
    the processes' stores hold open must be the expected sums. Returns how many finals
    came again."""
    got, again, problem = asyncio.run(final_sums(bootstrap, f"{topic}-sums"))
    for i in range(n):
        got.update(orjson.loads((workdir / f"p{i}-open.json").read_bytes()))
    problem = problem or compare(got, expected)
    if problem:
        raise BenchFailed(problem)
    return again


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--cases", default=",".join(CASES))
    add_common_args(p, OUT_DEFAULT)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--case", choices=PYTHON_CASES, help=argparse.SUPPRESS)
    p.add_argument("--bootstrap", help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--app-id", help=argparse.SUPPRESS)
    p.add_argument("--index", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        (streamkit_case if args.case == "streamkit" else faust_case)(args)
        return 0

    install_sigterm_as_interrupt()
    cases = [c for c in args.cases.split(",") if c]
    end_ms = int(time.time() * 1000) // SIZE_MS * SIZE_MS
    records, expected = workload(args.events, args.keys, args.seed, end_ms)
    print(f"windows: {args.events:,} events, {args.keys:,} keys, {PARTITIONS} partitions, "
          f"60 s tumbling windows over {SPAN_MS // 60_000} min of event time, cases {cases}",
          flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-windows-"))
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    failed: dict[str, str] = {}
    try:
        with bench_broker(args, scratch) as broker:
            bootstrap = broker.bootstrap
            drop_kafka_streams_on_dev(broker, cases)
            for rep in range(1, args.reps + 1):
                for case in cases:
                    if case in failed:
                        continue
                    workdir = scratch / f"{case}-r{rep}"
                    workdir.mkdir()
                    topic = f"win-{uuid.uuid4().hex[:8]}-{case}"
                    try:
                        asyncio.run(create_topic(bootstrap, topic, PARTITIONS))
                        ends = asyncio.run(produce(bootstrap, topic, records))
                        (workdir / "expected.json").write_bytes(orjson.dumps(expected))
                        contract = ["--bootstrap", bootstrap, "--topic", topic,
                                    "--events", str(args.events), "--workdir", str(workdir)]
                        if case in PROCESSES:
                            result = run_processes(PROCESSES[case], contract, args, broker,
                                                   topic, ends, workdir)
                            result["duplicates"] = check_processes(
                                bootstrap, topic, workdir, PROCESSES[case], expected)
                        else:
                            if case in KAFKA_STREAMS_CASES:
                                cmd = kafka_streams_command(
                                    "Windows", *contract, "--size-ms", str(SIZE_MS),
                                    "--grace-ms", str(GRACE_MS), *KAFKA_STREAMS_CASES[case])
                            else:
                                cmd = [sys.executable, str(Path(__file__)), "--case", case,
                                       *contract]
                            result = run_json_case(cmd, workdir, 120 + args.events / 500,
                                                   env={"STREAMKIT_PROFILE": broker.profile})
                        verify_commits(bootstrap, topic, result, ends)
                        result["rep"] = rep
                        runs[case].append(result)
                        print(f"rep {rep} {case:<22} {result['eps']:>10,.0f} events/s "
                              f"({result['seconds']:.2f} s, peak RSS {result['rss_mb']:.0f} MB)",
                              flush=True)
                    except (BenchFailed, subprocess.TimeoutExpired) as exc:
                        failed[case] = f"rep {rep}: {exc}"
                        print(f"rep {rep} {case}: FAILED: {exc}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    summary = {c: summarize_runs(rs) for c, rs in runs.items() if rs and c not in failed}
    add_ratios(summary, RATIO_BASES)
    for case, s in summary.items():
        print(f"{case:<22} {s['eps']:>10,.0f} events/s (median), peak RSS {s['rss_mb']:.0f} MB")
    for case in ("streamkit", "streamkit-2p"):
        for base in RATIO_BASES:
            ratio = summary.get(case, {}).get(f"ratio_to_{base.replace('-', '_')}")
            if ratio is not None:
                print(f"{case} / {base}: {ratio:.2f}x")
    meta = base_meta(
        broker, workload="60 s tumbling sum of amount per key (W1 events, event time over 10 min)",
        events=args.events, keys=args.keys, partitions=PARTITIONS, reps=args.reps,
        seed=args.seed, failed={f"windows {c}": why for c, why in failed.items()},
        streamkit="profile defaults; streamkit-2p: two worker processes of one app",
        kafka_streams=f"bench/kafka_streams (Kafka Streams 4.4.0), JVM heap -Xmx{KAFKA_STREAMS_HEAP}; "
                      "-final: suppress(untilWindowCloses); default 30 s commit interval, -1s: 1 s, "
                      "-2t: 2 stream threads")
    write_results(args.out, {f"windows {c}": s for c, s in summary.items()}, meta)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
