"""Windowed benchmark: a 60 s tumbling sum of amount per key, streamkit against a plain
Faust windowed table, on the same dev broker in the same run.

    python bench/windows.py [--events 300000] [--keys 10000] [--reps 1]
                            [--cases streamkit,faust] [--broker HOST:PORT]
                            [--out bench/results/windows.json]

The events are W1's (keys "k<i>", amount 1..9, seeded), with event time spread evenly over
ten minutes ending about now (Faust expires windows on the wall clock, so older event
times would be dropped), in order, as the record timestamp and in the value ("ts").
For each repetition and case, one at a time: a fresh 4-partition topic, the events
produced into it, the expected sum per (key, window start) in <workdir>/expected.json,
and the case run as a subprocess of this file (`--case NAME`), which prints one JSON
line (bench/cases/_common.py's contract); the driver then checks that the case's group
committed every partition's end offset.

- streamkit: app.stream(topic).group_by_key().windowed_by(Tumbling(60 s, grace 5 s))
  .aggregate(..., emit="final", to=<topic>-sums): the windowed table and its changelog,
  plus a final result per closed window written to a topic. Checked: the finals read back
  from that topic plus the windows still open in the stores equal the expected sums.
- faust: app.Table("sums", default=int).tumbling(60, expires=1 h).relative_to_stream(),
  one agent doing table[key] += amount (settings as bench/cases/faust_table.py).
  Checked: the table's windows equal the expected sums.

Timing as W1: from the first record to the end of the commit covering the last one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(BENCH / "cases"), str(REPO)]

import w1  # noqa: E402  (bench/w1.py: topic creation, commit check, versions)
from _common import finish, peak_rss_mb  # noqa: E402

SIZE_MS, GRACE_MS, SPAN_MS = 60_000, 5_000, 600_000
CASES = ("streamkit", "faust")
STOP_GRACE = 60.0


# --------------------------------------------------------------------------- workload

def workload(events: int, keys: int, seed: int, end_ms: int):
    records, _ = w1.make_workload(events, keys, seed)
    base = end_ms - SPAN_MS
    out, expected = [], {}
    for i, (kb, vb) in enumerate(records):
        ts = base + i * SPAN_MS // events
        value = orjson.loads(vb)
        value["ts"] = ts
        out.append((kb, orjson.dumps(value), ts))
        w = f"{value['key']}|{ts - ts % SIZE_MS}"
        expected[w] = expected.get(w, 0) + value["amount"]
    return out, expected


async def produce(bootstrap: str, topic: str, records) -> dict[int, int]:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=256 * 1024, acks=1)
    await producer.start()
    ends: dict[int, int] = {}
    try:
        for i in range(0, len(records), 20_000):
            futs = [await producer.send(topic, value=v, key=k, timestamp_ms=ts)
                    for k, v, ts in records[i:i + 20_000]]
            for md in await asyncio.gather(*futs):
                ends[md.partition] = max(ends.get(md.partition, 0), md.offset + 1)
    finally:
        await producer.stop()
    return ends


def compare(actual: dict[str, int], expected: dict[str, int]) -> str | None:
    if actual == expected:
        return None
    wrong = [(k, actual.get(k), v) for k, v in expected.items() if actual.get(k) != v]
    extra = [k for k in actual if k not in expected]
    return f"{len(wrong)} windows wrong or missing (e.g. {wrong[:3]}), {len(extra)} unexpected"


# --------------------------------------------------------------------------- the cases

def streamkit_case(args) -> None:
    import faust

    from streamkit import App, Settings, Tumbling
    from streamkit.devbroker import free_port
    from streamkit.testing.kafka import read_topic_async
    from streamkit.windows.codec import Agg

    app = App(f"win-streamkit-{uuid.uuid4().hex[:10]}", settings=Settings.from_env({
        "STREAMKIT_BROKER": f"kafka://{args.bootstrap}", "STREAMKIT_PROFILE": "dev",
        "STREAMKIT_DATA_DIR": str(args.workdir / "data"),
        "STREAMKIT_WEB_PORT": str(free_port())}))
    out_topic = f"{args.topic}-sums"
    sums = (app.stream(args.topic).group_by_key()
               .windowed_by(Tumbling(size_ms=SIZE_MS, grace_ms=GRACE_MS))
               .aggregate("sums", initial=0, add=lambda acc, ev: acc + ev["amount"],
                          emit="final", to=out_topic))
    state = {"result": None, "error": None}

    @app.task
    async def finisher():
        runner = app.processors
        try:
            while runner.counters["records"] < args.events:
                if runner.failed is not None:
                    raise runner.failed
                await asyncio.sleep(0.002)
            seconds = runner.last_commit_at - runner.first_record_at
            got: dict[str, int] = {}
            for rec in await read_topic_async(args.bootstrap, out_topic):
                w = orjson.loads(rec.key)
                got[f"{w['key']}|{w['start']}"] = int(rec.value)
            for task in runner.tasks.values():
                store = task.stores[sums.name]
                for kb, vb in store.raw_items(prefix=b"w"):
                    key, start, _end = store.keys.decode(kb)
                    agg = store.values.decode(vb)
                    if type(agg) is Agg and agg.closed is None:
                        got[f"{key}|{start}"] = agg.value
            state["result"] = {"seconds": seconds, "group": runner.group_id, "keys": len(got),
                               "problem": compare(got, _expected(args)),
                               "commits": runner.counters["commits"]}
        except Exception as exc:
            state["error"] = repr(exc)
        finally:
            state["stop_at"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGTERM)

    _run_worker(faust, app)
    finish(state, args.events, commits=(state["result"] or {}).get("commits"),
           settings="streamkit dev profile defaults; Tumbling(60 s, grace 5 s), "
                    "emit=final to a topic")


def faust_case(args) -> None:
    from datetime import timedelta

    import faust

    group = f"win-faust-{uuid.uuid4().hex[:10]}"
    app = faust.App(group, broker=f"kafka://{args.bootstrap}", store="rocksdb://",
                    datadir=str(args.workdir / "faust-data"), broker_session_timeout=6,
                    broker_heartbeat_interval=1, producer_linger=0.005, topic_partitions=4,
                    web_enabled=False)
    source = app.topic(args.topic, key_serializer="raw", value_serializer="json", partitions=4)
    table = app.Table("sums", default=int, partitions=4).tumbling(
        SIZE_MS / 1000, expires=timedelta(hours=1)).relative_to_stream()
    state = {"n": 0, "t0": None, "last": {}, "result": None, "error": None}

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
            target = {tp: off + 1 for tp, off in state["last"].items()}
            deadline = time.monotonic() + 60
            while True:  # as bench/cases/faust_table.py: commit until every end offset is
                await app.consumer.commit()
                committed = app.consumer._committed_offset
                if all((committed.get(tp) or 0) >= end for tp, end in target.items()):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"commit did not reach {target}")
                await asyncio.sleep(0.005)
            await app.producer.flush()
            seconds = time.perf_counter() - state["t0"]
            got = {f"{key}|{round(rng[0] * 1000)}": v for (key, rng), v in table.table.items()}
            state["result"] = {"seconds": seconds, "group": group, "keys": len(got),
                               "problem": compare(got, _expected(args)),
                               "rss_mb_at_end": round(peak_rss_mb(), 1)}
        except Exception as exc:
            state["error"] = repr(exc)
        finally:
            state["stop_at"] = time.perf_counter()
            t = threading.Timer(STOP_GRACE, lambda: (finish(state, args.events), os._exit(0)))
            t.daemon = True
            t.start()
            os.kill(os.getpid(), signal.SIGTERM)

    _run_worker(faust, app)
    finish(state, args.events, settings="store=rocksdb://, tumbling(60, expires=1 h)"
                                        ".relative_to_stream(), producer_linger=0.005")


def _run_worker(faust, app) -> None:
    import logging

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False,
                          stdout=sys.stderr)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    logging.getLogger().setLevel(logging.WARNING)


def _expected(args) -> dict[str, int]:
    return json.loads((args.workdir / "expected.json").read_text())


# --------------------------------------------------------------------------- the driver

def run_case(case: str, bootstrap: str, topic: str, events: int, workdir: Path,
             timeout: float) -> dict:
    cmd = [sys.executable, str(Path(__file__)), "--case", case, "--bootstrap", bootstrap,
           "--topic", topic, "--events", str(events), "--workdir", str(workdir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [str(REPO), os.environ.get("PYTHONPATH", "")] if p)}
    with open(workdir / "stderr.log", "wb") as err:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=err, env=env,
                              cwd=str(workdir), timeout=timeout)
    lines = [ln for ln in proc.stdout.decode(errors="replace").splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        tail = (workdir / "stderr.log").read_text(errors="replace")[-1500:]
        raise w1.CaseFailed(f"exit {proc.returncode}: {tail}")
    result = json.loads(lines[-1])
    if result.get("checked") is not True:
        raise w1.CaseFailed(f"not checked: {result}")
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=1)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--broker", default=None)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--out", default=str(BENCH / "results" / "windows.json"))
    p.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    p.add_argument("--bootstrap", help=argparse.SUPPRESS)
    p.add_argument("--topic", help=argparse.SUPPRESS)
    p.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        (streamkit_case if args.case == "streamkit" else faust_case)(args)
        return 0

    cases = [c for c in args.cases.split(",") if c]
    end_ms = int(time.time() * 1000) // SIZE_MS * SIZE_MS
    records, expected = workload(args.events, args.keys, args.seed, end_ms)
    print(f"windows: {args.events:,} events, {args.keys:,} keys, {w1.PARTITIONS} partitions, "
          f"60 s tumbling windows over {SPAN_MS // 60_000} min of event time, cases {cases}",
          flush=True)
    scratch = Path(tempfile.mkdtemp(prefix="bench-windows-"))
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    failed: dict[str, str] = {}
    broker = None
    try:
        if args.broker:
            bootstrap, broker_desc = args.broker, f"external broker {args.broker}"
        else:
            from streamkit import devbroker

            broker = devbroker.start(log_dir=str(scratch))
            bootstrap = broker.bootstrap
            broker_desc = f"Tansu dev broker (memory storage) at {bootstrap}"
        for rep in range(1, args.reps + 1):
            for case in cases:
                workdir = scratch / f"{case}-r{rep}"
                workdir.mkdir()
                topic = f"win-{uuid.uuid4().hex[:8]}-{case}"
                try:
                    asyncio.run(w1.create_topic(bootstrap, topic, w1.PARTITIONS))
                    ends = asyncio.run(produce(bootstrap, topic, records))
                    (workdir / "expected.json").write_bytes(orjson.dumps(expected))
                    result = run_case(case, bootstrap, topic, args.events, workdir,
                                      120 + args.events / 500)
                    w1.verify_commits(bootstrap, topic, result, ends)
                    runs[case].append(result)
                    print(f"rep {rep} {case:<10} {result['eps']:>10,.0f} events/s "
                          f"({result['seconds']:.2f} s, peak RSS {result['rss_mb']:.0f} MB)",
                          flush=True)
                except (w1.CaseFailed, subprocess.TimeoutExpired) as exc:
                    failed[case] = f"rep {rep}: {exc}"
                    print(f"rep {rep} {case}: FAILED: {exc}", flush=True)
    finally:
        if broker is not None:
            broker.stop()
        shutil.rmtree(scratch, ignore_errors=True)

    summary = {c: {"eps": statistics.median(r["eps"] for r in rs),
                   "rss_mb": max(r["rss_mb"] for r in rs), "runs": rs}
               for c, rs in runs.items() if rs and c not in failed}
    ratio = (summary["streamkit"]["eps"] / summary["faust"]["eps"]
             if "streamkit" in summary and "faust" in summary else None)
    for case, s in summary.items():
        print(f"{case:<10} {s['eps']:>10,.0f} events/s (median), peak RSS {s['rss_mb']:.0f} MB")
    if ratio is not None:
        print(f"streamkit / faust: {ratio:.1f}x")
    results = {f"windows {c}": s for c, s in summary.items()}
    results["ratio_streamkit_to_faust"] = ratio
    results["meta"] = {
        "workload": "60 s tumbling sum of amount per key (W1 events, event time over 10 min)",
        "events": args.events, "keys": args.keys, "partitions": w1.PARTITIONS,
        "reps": args.reps, "seed": args.seed, "broker": broker_desc, "failed": failed,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
        "versions": w1.versions(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
