"""Run every benchmark, one at a time, on one broker, and collect one results file.

    python bench/run.py [--broker kafka|dev|HOST:PORT] [--only NAMES] [--without CASES]
                        [--out FILE] [--quick]

--broker kafka (the default): one Apache Kafka KRaft node started here for the whole run
    (streamkit.kafkabroker.start_kafka: C2 JIT, heap 1024 MB, topics in a temporary
    directory) and stopped by its PID at the end; workers use STREAMKIT_PROFILE=dev.
    Before the first benchmark, W1's streamkit case runs once on it at 1,000,000 events,
    unrecorded (WARM_UP), so that no case meets a cold JVM (not with --quick).
    Results: bench/results/latest.json.
--broker dev: the in-memory dev broker (streamkit.devbroker), a fresh one for each
    benchmark (it never frees memory and slows as its topics grow); STREAMKIT_PROFILE=
    devbroker. Results: bench/results/devbroker.json.
--broker HOST:PORT: a broker that is already running (STREAMKIT_PROFILE from the
    environment, else dev). Results: bench/results/external.json.
--only w1,windows,join,scaling,queries,gateway,wait_for,startup,recovery: run these only and merge
    their keys into the existing results file (the other keys are kept; meta records what
    was rerun and when). Without --only, the file is written anew.
--without faust,quix: leave these cases out of the benchmarks whose keys are their cases (w1,
    windows, join); their keys are then missing from the file, not left from an earlier run.
    Faust's W1 and windows cases take about 45 min per run at the full size.
--quick: tiny sizes, to check that everything works end to end; the figures mean nothing.
    Unless --out is given, they go to <tmp>/streamkit-bench/quick-<broker>.json, never to
    bench/results.

Each benchmark script (bench/<script>.py) runs as a subprocess with `--broker HOST:PORT
--out <temp json>` and the profile in its environment; its output is echoed and kept in a
log file (the run's directory is printed). A benchmark that fails (its own check, a crash,
its time limit) is recorded in meta["failed"] with the reason, and run.py exits 1 at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    BENCH,
    BROKER_DESC_ENV,
    REPO,
    RESULTS,
    base_meta,
    dev_broker_description,
    needs_apache_kafka,
    now_iso,
    with_repo_on_path,
)

KAFKA_HEAP_MB = 1024
FORMAT = "streamkit-bench/1"


def case_of(key: str) -> str:
    """The case of a result key "<workload> <case>"."""
    return key.split(" ", 1)[1]


@dataclass(frozen=True)
class Benchmark:
    name: str
    script: str
    args: tuple[str, ...]          # the full-size run
    quick: tuple[str, ...]         # --quick
    keys: tuple[str, ...]          # the result keys it must write
    timeout_s: float               # full size; --quick allows 600 s
    dev_cases: str | None = None   # --cases on the dev broker: without the Kafka Streams cases
    kafka_only: bool = False       # not run on the dev broker (scaling: it reads the group's
                                   # state with admin requests the dev broker answers wrongly)
    keyed_by_case: bool = False    # each key is "<workload> <case>" of the script's --cases

    @property
    def prefix(self) -> str:
        """Every result key of this benchmark starts with it."""
        return self.keys[0].split(" ")[0] + " "

    def keys_on(self, broker_kind: str, without: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The keys it must write on this kind of broker: the Kafka Streams cases need Apache
        Kafka (on the dev broker their Kafka 4.4 clients find no group coordinator), and so
        does exactly-once (transactions). Cases named in `without` are left out."""
        keys = self.keys
        if broker_kind == "dev":
            keys = tuple(k for k in keys if not needs_apache_kafka(case_of(k)))
        if self.keyed_by_case:
            keys = tuple(k for k in keys if case_of(k) not in without)
        return keys

    def cases_on(self, broker_kind: str, without: frozenset[str] = frozenset()) -> tuple[str, ...]:
        """The --cases that replace those of the arguments on this kind of broker."""
        if self.keyed_by_case and without & {case_of(k) for k in self.keys_on(broker_kind)}:
            return ("--cases", ",".join(case_of(k) for k in self.keys_on(broker_kind, without)))
        return ("--cases", self.dev_cases) if broker_kind == "dev" and self.dev_cases else ()


BENCHMARKS = [
    # 3 million events for every system (1.5 million per side of the join), so that the JVM
    # of the Kafka Streams cases warms up; Faust alone takes about 45 min per run of W1.
    Benchmark("w1", "w1.py", ("--events", "3000000", "--reps", "3"),
              ("--events", "3000", "--reps", "1"),
              ("W1 streamkit", "W1 streamkit-agent", "W1 streamkit-eos", "W1 quix", "W1 faust",
               "W1 ceiling",
               "W1 kafka-streams", "W1 kafka-streams-1s", "W1 kafka-streams-1s-2t",
               "W1 kafka-streams-eos", "W1 kafka-streams-eos-1s"),
              8 * 3600, "ceiling,faust,quix,streamkit,streamkit-agent", keyed_by_case=True),
    Benchmark("windows", "windows.py", ("--events", "3000000", "--reps", "3"),
              ("--events", "3000", "--reps", "1"),
              ("windows streamkit", "windows streamkit-2p", "windows faust", "windows kafka-streams",
               "windows kafka-streams-1s", "windows kafka-streams-final",
               "windows kafka-streams-final-1s", "windows kafka-streams-final-1s-2t"),
              8 * 3600, "streamkit,faust", keyed_by_case=True),
    Benchmark("join", "stream_join.py", ("--records", "1500000", "--reps", "3"),
              ("--records", "2000", "--reps", "1"),
              ("join streamkit", "join streamkit-2p", "join kafka-streams",
               "join kafka-streams-1s", "join kafka-streams-1s-2t"), 4 * 3600, "streamkit",
              keyed_by_case=True),
    Benchmark("scaling", "scaling.py", ("--events", "3000000", "--reps", "1"),
              ("--events", "4000", "--reps", "1"),
              ("scaling streamkit-1p", "scaling streamkit-2p", "scaling streamkit-4p",
               "scaling kafka-streams-1t", "scaling kafka-streams-2t", "scaling kafka-streams-4t"),
              2 * 3600, kafka_only=True),
    Benchmark("queries", "queries.py", ("--seconds", "8", "--rounds", "3"),
              ("--seconds", "2", "--rounds", "1", "--keys", "1000"),
              ("queries streamkit", "queries bare-aiohttp"), 1800),
    Benchmark("gateway", "gateway.py", ("--seconds", "20", "--rates", "500,1000,1500,2000,3000",
                                        "--cluster-rates", "500,1000"),
              ("--seconds", "1", "--warmup", "0.5", "--settle", "1", "--rates", "500,1000",
               "--cluster-rates", "500,1000"),
              ("gateway streamkit", "gateway direct", "gateway streamkit 3x2"), 3600),
    Benchmark("wait_for", "wait_for.py", ("--rate", "100", "--seconds", "30"),
              ("--rate", "100", "--seconds", "2", "--warmup", "0.5"),
              ("wait_for streamkit",), 1800),
    Benchmark("startup", "startup.py", ("--cases", "ready,ready-kafka-streams", "--reps", "3"),
              ("--cases", "ready,ready-kafka-streams", "--reps", "1"),
              ("startup streamkit", "startup kafka-streams"), 1800, "ready"),
    Benchmark("recovery", "startup.py", ("--cases", "recovery", "--reps", "3",
                                         "--recovery-keys", "1000000"),
              ("--cases", "recovery", "--reps", "1", "--recovery-keys", "5000"),
              ("recovery streamkit",), 3600),
]
BY_NAME = {b.name: b for b in BENCHMARKS}
# Run once, unrecorded, on the node started for the run (not with --quick), before the
# first benchmark: a broker's JVM compiles its produce, fetch and commit paths in its first
# minutes, and the first case of the first benchmark (streamkit's, each benchmark runs its
# cases in the same order) met it cold: windows 81,839 ev/s against 153,655 and 129,239 in
# the next two repetitions (2026-12-03 14:24). A dev broker is started fresh for each
# benchmark and has no JIT; a broker given by address is the user's.
WARM_UP = Benchmark("warm-up", "w1.py", ("--events", "1000000", "--reps", "1", "--cases",
                                         "streamkit"), (), ("W1 streamkit",), 900)

# What the summary table shows of each key.
SUMMARY_FIELDS = {
    "W1 ": ("eps", "rss_mb", "ratio_to_quix", "ratio_to_faust", "ratio_to_kafka_streams",
            "ratio_to_kafka_streams_1s", "ratio_to_kafka_streams_eos_1s", "ratio_to_streamkit"),
    "windows ": ("eps", "rss_mb", "ratio_to_faust", "ratio_to_kafka_streams_final",
                 "ratio_to_kafka_streams_final_1s", "ratio_to_kafka_streams_final_1s_2t"),
    "join ": ("pairs_per_s", "input_eps", "rss_mb", "ratio_to_kafka_streams",
              "ratio_to_kafka_streams_1s", "ratio_to_kafka_streams_1s_2t"),
    "scaling ": ("eps", "eps_per_process", "steady_eps", "speedup", "ratio_to_kafka_streams",
                 "rss_mb"),
    "queries ": ("rps", "p50_ms", "p99_ms", "ratio_to_bare", "forwarded_p99_ms"),
    "gateway streamkit 3x2": ("p50_ms_500", "p99_ms_500", "p50_ms_1000", "p99_ms_1000"),
    "gateway ": ("p50_ms_500", "p99_ms_500", "p99_ms_1000", "p99_crosses_100ms_at_rps"),
    "wait_for ": ("p50_ms", "p99_ms", "max_ms", "count", "rate"),
    "startup ": ("ready_s", "rss_mb"),
    "recovery ": ("keys", "restore_s", "ready_s"),
}


# --------------------------------------------------------------------------- the broker

class RunBroker:
    """The broker of the whole run. `for_benchmark()` gives (bootstrap, stop) for one
    benchmark: the one Kafka node, a fresh dev broker, or the given address."""

    def __init__(self, spec: str, run_dir: Path) -> None:
        self.spec, self.run_dir = spec, run_dir
        self.cluster = None
        if spec == "kafka":
            self.kind, self.profile = "kafka", "dev"
        elif spec == "dev":
            self.kind, self.profile = "dev", "devbroker"
        else:
            self.kind = "external"
            self.profile = os.environ.get("STREAMKIT_PROFILE", "dev")
        self.description = ""

    def start(self) -> None:
        if self.kind == "kafka":
            from streamkit import kafkabroker

            print(f"starting Apache Kafka (1 KRaft node, heap {KAFKA_HEAP_MB} MB, JIT full)...",
                  flush=True)
            t0 = time.monotonic()
            self.cluster = kafkabroker.start_kafka(
                1, heap_mb=KAFKA_HEAP_MB, jit="full", timeout=180,
                on_download=lambda msg: print(msg, flush=True))
            self.description = (f"Apache Kafka {self.cluster.version} (KRaft, 1 node, heap "
                                f"{KAFKA_HEAP_MB} MB, JIT full)")
            print(f"{self.description} at {self.cluster.bootstrap}, pid "
                  f"{self.cluster.pids[0]}, ready in {time.monotonic() - t0:.1f} s", flush=True)
        elif self.kind == "dev":
            self.description = dev_broker_description() + ", a fresh one per benchmark"
        else:
            self.description = f"broker at {self.spec.removeprefix('kafka://')}"

    def for_benchmark(self, name: str):
        if self.kind == "kafka":
            return self.cluster.bootstrap, lambda: None
        if self.kind == "dev":
            from streamkit import devbroker

            b = devbroker.start(log_dir=str(self.run_dir))
            return b.bootstrap, b.stop
        return self.spec.removeprefix("kafka://"), lambda: None

    def stop(self) -> None:
        if self.cluster is not None:
            self.cluster.stop()
            self.cluster = None


# --------------------------------------------------------------------------- one benchmark

def run_one(bench: Benchmark, broker: RunBroker, run_dir: Path, quick: bool,
            without: frozenset[str] = frozenset()) -> dict:
    """Run one benchmark script; return {"keys": {...}, "meta": ..., "failed": reason|None,
    "wall_s", "command", "log"}."""
    out = run_dir / f"{bench.name}.json"
    log = run_dir / f"{bench.name}.log"
    out.unlink(missing_ok=True)
    bootstrap, stop_broker = broker.for_benchmark(bench.name)
    cmd = [sys.executable, str(BENCH / bench.script), *(bench.quick if quick else bench.args),
           *bench.cases_on(broker.kind, without), "--broker", bootstrap, "--out", str(out)]
    env = with_repo_on_path({**os.environ, "STREAMKIT_PROFILE": broker.profile,
                             BROKER_DESC_ENV: broker.description, "PYTHONUNBUFFERED": "1"})
    timeout = 600.0 if quick else bench.timeout_s
    shown = " ".join(["python", f"bench/{bench.script}", *cmd[2:]])
    print(f"\n=== {bench.name}: {shown}", flush=True)
    last = deque(maxlen=40)
    failed = None
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, env=env, cwd=str(REPO),
                            start_new_session=True)

    def pump() -> None:
        with open(log, "wb") as f:
            for raw in proc.stdout:
                f.write(raw)
                f.flush()
                line = raw.decode(errors="replace").rstrip()
                last.append(line)
                print(f"  | {line}", flush=True)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            failed = f"timed out after {timeout:.0f} s"
            print(f"=== {bench.name}: {failed}; stopping it", flush=True)
            stop_process(proc)
    except BaseException:
        stop_process(proc)  # Ctrl-C: the script stops its workers and broker
        raise
    finally:
        reader.join(10)
        stop_broker()
    wall = time.monotonic() - t0
    result = {"keys": {}, "meta": None, "wall_s": round(wall, 1), "command": shown, "log": str(log)}
    if out.exists():
        try:
            data = json.loads(out.read_text())
        except ValueError as exc:
            data = {}
            failed = failed or f"unreadable results file {out}: {exc}"
        result["meta"] = data.pop("meta", None)
        for key, value in data.items():
            if key.startswith(bench.prefix):
                result["keys"][key] = value
            else:
                print(f"=== {bench.name}: ignoring key {key!r} (not {bench.prefix}...)", flush=True)
    if failed is None and proc.returncode != 0:
        reasons = (result["meta"] or {}).get("failed")
        failed = (f"exit code {proc.returncode}: "
                  + (json.dumps(reasons) if reasons else " / ".join(list(last)[-8:])))
    if failed is None and not out.exists():
        failed = "wrote no results file"
    missing = [k for k in bench.keys_on(broker.kind, without) if k not in result["keys"]]
    if failed is None and missing:
        failed = f"missing result keys {missing}"
    result["failed"] = failed[-3000:] if failed else None
    print(f"=== {bench.name}: {'FAILED: ' + result['failed'] if failed else 'ok'} "
          f"({wall:.0f} s)", flush=True)
    return result


def warm_up(broker: RunBroker, run_dir: Path) -> None:
    """WARM_UP on the run's node; the results file's meta.broker says it ran. A warm-up
    that fails is reported and the benchmarks run all the same (they say what is wrong)."""
    result = run_one(WARM_UP, broker, run_dir, quick=False)
    if result["failed"]:
        print(f"the warm-up failed; the first case meets a cold broker: {result['failed']}",
              flush=True)
        return
    broker.description += (f", warmed up by `python bench/{WARM_UP.script} "
                           f"{' '.join(WARM_UP.args)}` first")


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM the script (it stops its own workers and broker), SIGKILL its process group
    (the script and its case subprocesses, by the script's PID) after 60 s."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


# --------------------------------------------------------------------------- results

def default_out(kind: str, quick: bool) -> Path:
    if quick:
        return Path(tempfile.gettempdir()) / "streamkit-bench" / f"quick-{kind}.json"
    return RESULTS / {"kafka": "latest.json", "dev": "devbroker.json",
                      "external": "external.json"}[kind]


def load_existing(path: Path, kind: str) -> dict:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    meta = data.get("meta") or {}
    if meta.get("format") != FORMAT:
        sys.exit(f"{path} is not a bench/run.py results file; use --out or move it away")
    if meta.get("broker_kind") != kind:
        sys.exit(f"{path} holds results measured on {meta.get('broker')!r}; --only would mix "
                 f"brokers in one file: use --out or the matching --broker")
    return data


def merge(existing: dict, runs: dict[str, dict], broker: RunBroker, args, only: list[str]) -> dict:
    old_meta = existing.pop("meta", {}) if existing else {}
    results = dict(existing) if args.only else {}
    benchmarks = dict(old_meta.get("benchmarks", {})) if args.only else {}
    failed = dict(old_meta.get("failed", {})) if args.only else {}
    for name, r in runs.items():
        bench = BY_NAME[name]
        for key in [k for k in results if k.startswith(bench.prefix)]:
            del results[key]  # no figure of an earlier run next to this run's
        results.update(r["keys"])
        benchmarks[name] = {"date": now_iso(), "ok": r["failed"] is None, "wall_s": r["wall_s"],
                            "quick": args.quick, "broker": broker.description,
                            "command": r["command"], "meta": r["meta"]}
        if r["failed"]:
            failed[name] = r["failed"]
        else:
            failed.pop(name, None)
    order = [k for b in BENCHMARKS for k in b.keys]
    ordered = {k: results[k] for k in order if k in results}
    ordered.update({k: v for k, v in results.items() if k not in ordered})
    history = list(old_meta.get("runs", [])) if args.only else []
    history.append({"date": now_iso(), "command": " ".join(["python", *sys.argv]),
                    "only": only, "without": sorted(args.without), "quick": args.quick,
                    "failed": sorted(n for n in runs if runs[n]["failed"])})
    meta = base_meta(broker.description, broker_kind=broker.kind, profile=broker.profile,
                     format=FORMAT, quick=args.quick, benchmarks=benchmarks, failed=failed,
                     runs=history)
    meta["command"] = " ".join(["python", *sys.argv])
    if args.only:  # notes of earlier runs (e.g. what the file does not hold yet) stay
        for key, value in old_meta.items():
            if key not in meta:
                meta[key] = value
        if isinstance(meta.get("not_measured"), dict):
            meta["not_measured"] = {k: v for k, v in meta["not_measured"].items()
                                    if k not in ordered}
    if broker.kind == "kafka":
        meta["kafka"] = {"nodes": 1, "heap_mb": KAFKA_HEAP_MB, "jit": "full"}
    return {**ordered, "meta": meta}


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}" if abs(v) < 10 else f"{v:.1f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "-" if v is None else str(v)


def print_summary(results: dict, path: Path) -> None:
    meta = results["meta"]
    print(f"\nResults ({meta['broker']}) in {path}:")
    width = max([24, *(len(k) for k in results if k != "meta")])
    print(f"{'benchmark':<{width}} figures")
    for key, value in results.items():
        if key == "meta" or not isinstance(value, dict):
            continue
        fields = next((f for prefix, f in SUMMARY_FIELDS.items() if key.startswith(prefix)), ())
        print(f"{key:<{width}} " + "  ".join(f"{f} {fmt(value.get(f))}" for f in fields if f in value))
    for name, reason in meta["failed"].items():
        print(f"FAILED {name}: {reason[:300]}")
    if meta.get("quick"):
        print("(--quick: smoke-run sizes; these are not figures)")


# --------------------------------------------------------------------------- main

def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--broker", default="kafka", help="kafka (default), dev, or HOST:PORT")
    p.add_argument("--only", default=None,
                   help=f"comma-separated, from {','.join(BY_NAME)}; merges into --out")
    p.add_argument("--out", default=None, help="results file (default: by broker, see above)")
    p.add_argument("--without", default="",
                   help="comma-separated cases to leave out of w1, windows and join (e.g. faust)")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    args = p.parse_args()
    args.without = frozenset(c.strip() for c in args.without.split(",") if c.strip())
    known_cases = {case_of(k) for b in BENCHMARKS if b.keyed_by_case for k in b.keys}
    if args.without - known_cases:
        p.error(f"--without: unknown case(s) {sorted(args.without - known_cases)}; "
                f"known: {','.join(sorted(known_cases))}")
    only = [n.strip() for n in (args.only or ",".join(BY_NAME)).split(",") if n.strip()]
    unknown = [n for n in only if n not in BY_NAME]
    if unknown:
        p.error(f"unknown benchmark(s) {unknown}; known: {','.join(BY_NAME)}")
    if args.broker not in ("kafka", "dev") and ":" not in args.broker:
        p.error("--broker takes kafka, dev or HOST:PORT")
    if args.broker == "dev":
        skipped = [n for n in only if BY_NAME[n].kafka_only]
        only = [n for n in only if n not in skipped]
        if skipped:
            print(f"{', '.join(skipped)}: Apache Kafka only, not run on the dev broker", flush=True)

    run_dir = Path(tempfile.mkdtemp(prefix="streamkit-bench-run-"))
    broker = RunBroker(args.broker, run_dir)
    out = Path(args.out) if args.out else default_out(broker.kind, args.quick)
    existing = load_existing(out, broker.kind) if args.only else {}
    print(f"benchmarks {only}, one at a time; logs in {run_dir}", flush=True)
    runs: dict[str, dict] = {}
    try:
        try:
            broker.start()
        except Exception as exc:  # noqa: BLE001 - nothing can run; the results file is kept
            print(f"the broker did not start: {exc}", file=sys.stderr)
            return 1
        if broker.kind == "kafka" and not args.quick:
            warm_up(broker, run_dir)
        for name in only:
            try:
                runs[name] = run_one(BY_NAME[name], broker, run_dir, args.quick, args.without)
            except Exception as exc:  # noqa: BLE001 - e.g. a dev broker that did not start
                runs[name] = {"keys": {}, "meta": None, "wall_s": 0.0, "command": "", "log": "",
                              "failed": f"{type(exc).__name__}: {exc}"[-3000:]}
                print(f"=== {name}: FAILED: {runs[name]['failed']}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted; writing what was measured", flush=True)
        for name in only:
            runs.setdefault(name, {"keys": {}, "meta": None, "wall_s": 0.0, "command": "",
                                   "log": "", "failed": "not run: interrupted"})
    finally:
        broker.stop()
    if not runs:
        print("nothing was run", file=sys.stderr)
        return 1
    results = merge(existing, runs, broker, args, only)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print_summary(results, out)
    print(f"logs: {run_dir}")
    failed_now = [n for n, r in runs.items() if r["failed"]] + [n for n in only if n not in runs]
    if failed_now:
        print(f"FAILED benchmarks: {', '.join(failed_now)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
