"""Shared helpers for the W1 benchmark cases.

Every case is run by ``bench/w1.py`` as

    python bench/cases/<case>.py --bootstrap HOST:PORT --topic T --events N --workdir DIR

reads the expected final per-key sums from ``DIR/expected.json``, checks its own final
sums against them, and prints ONE JSON line as the last line of its stdout::

    {"eps": ..., "seconds": ..., "rss_mb": ..., "cpu_s": ..., "checked": true, "group": ..., ...}

``seconds`` runs from the first record the case saw to the end of its last offset commit
(after its final flush); ``rss_mb`` is the peak RSS of the case process (VmHWM);
``cpu_s`` its CPU time so far, start-up included.
A case whose sums do not match prints a message on stderr and exits non-zero.

The in-process worker helpers below (`streamkit_settings`, `run_worker`, `records_done`,
`faust_app`, `faust_commit_through`, `stop_self`) are shared by the W1 cases and the cases of
bench/windows.py and bench/stream_join.py, which run a worker inside the case process.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping


def parse_args(description: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--bootstrap", required=True, help="Kafka bootstrap HOST:PORT")
    p.add_argument("--topic", required=True, help="input topic (already produced)")
    p.add_argument("--events", type=int, required=True, help="number of events in the topic")
    p.add_argument("--workdir", required=True, help="case scratch dir; holds expected.json")
    args = p.parse_args()
    args.workdir = Path(args.workdir)
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def load_expected(workdir: Path) -> dict[str, int]:
    with open(Path(workdir) / "expected.json", "rb") as f:
        return json.load(f)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (VmHWM), in MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def compare_sums(actual: Mapping[str, int], expected: Mapping[str, int]) -> str | None:
    """None when ``actual`` equals ``expected``, else a short description of the mismatch."""
    if len(actual) == len(expected) and all(actual.get(k) == v for k, v in expected.items()):
        return None
    missing = [k for k in expected if k not in actual]
    extra = [k for k in actual if k not in expected]
    wrong = [(k, actual[k], v) for k, v in expected.items() if k in actual and actual[k] != v]
    return (f"sums differ: {len(actual)} keys vs {len(expected)} expected; "
            f"{len(missing)} missing (e.g. {missing[:3]}), {len(extra)} unexpected "
            f"(e.g. {extra[:3]}), {len(wrong)} wrong (key, got, want: {wrong[:3]})")


def fail(message: str, code: int = 2) -> None:
    print(f"FAILED: {message}", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(code)


def report(events: int, seconds: float, checked: bool, **extra: Any) -> None:
    """Print the result line (the last line on stdout)."""
    result = {
        "eps": events / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
        "rss_mb": round(peak_rss_mb(), 1),
        "checked": checked,
        "events": events,
        "cpu_s": round(time.process_time(), 3),
    }
    result.update(extra)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def finish(state: Mapping[str, Any], events: int, **extra: Any) -> None:
    """Report an in-process worker's result (state: error, result, stop_at), or fail."""

    if state.get("error"):
        fail(state["error"])
    res = state.get("result")
    if res is None:
        fail("worker stopped before the result was known")
    if res["problem"]:
        fail(res["problem"])
    report(events, res["seconds"], True, group=res["group"], keys=res["keys"],
           stop_seconds=round(time.perf_counter() - state["stop_at"], 2), **extra)


# --------------------------------------------------------------------------- in-process workers

STOP_GRACE = 60.0  # seconds allowed for a graceful stop once the result is known


def streamkit_settings(bootstrap: str, workdir: Path, **env: str):
    """streamkit Settings of a case worker: the broker, STREAMKIT_PROFILE from the
    environment (the driver sets it; `dev` when unset), data under the workdir, a free port,
    any other STREAMKIT_ variables given, and the environment's other STREAMKIT_ variables
    (`STREAMKIT_GC_THRESHOLDS=python python bench/...` runs a case with Python's)."""
    from streamkit import Settings
    from streamkit.devbroker import free_port

    return Settings.from_env({
        **{k: v for k, v in os.environ.items() if k.startswith("STREAMKIT_")},
        "STREAMKIT_BROKER": f"kafka://{bootstrap}",
        "STREAMKIT_PROFILE": os.environ.get("STREAMKIT_PROFILE", "dev"),
        "STREAMKIT_DATA_DIR": str(Path(workdir) / "data"),
        "STREAMKIT_WEB_PORT": str(free_port()),
        **env,
    })


def run_worker(app) -> None:
    """Run a Faust/streamkit app in this process through faust.Worker (no `faust worker`
    CLI, whose spinner turns the root logger to DEBUG) until it stops."""
    import logging

    import faust

    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False,
                          stdout=sys.stderr)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    logging.getLogger().setLevel(logging.WARNING)


def when_started(app, coro_fn) -> None:
    """Run coro_fn() once the worker has started. Not an @app.task: a task starts Faust's
    own consumer (docs/faust.md), which the streamkit cases do not measure."""
    started = app.on_started

    async def on_started() -> None:
        await started()
        asyncio.ensure_future(coro_fn())

    app.on_started = on_started


async def records_done(runner, n: int) -> float:
    """Wait until streamkit's processing runner has processed n records; return the
    measured seconds (first record to the end of the commit covering the last one)."""
    while runner.counters["records"] < n:
        if runner.failed is not None:
            raise runner.failed
        await asyncio.sleep(0.002)
    return runner.last_commit_at - runner.first_record_at


async def until_done(runner, workdir: Path, restored: bool = False, every_s: float = 0.05,
                     each=None) -> None:
    """Work until the driver writes WORKDIR/done (bench/group_run.py: the group has
    committed the end of its input and is stable), calling each() every every_s until
    then; with restored, then until this process serves the tasks of the last rebalance
    (restored), so that its stores can be read."""
    while True:
        done = (workdir / "done").exists()
        if done and not (restored and not (runner.serving and runner.tasks)):
            return
        if each is not None and not done:
            each()
        if runner.failed is not None:
            raise runner.failed
        await asyncio.sleep(every_s)


def stop_self(state: dict, on_stuck=None) -> None:
    """Note when the stop began and SIGTERM this process (Faust's graceful stop). With
    on_stuck, a timer calls it and exits if the stop takes more than STOP_GRACE seconds
    (the measured part is over by then)."""
    import signal
    import threading

    state["stop_at"] = time.perf_counter()
    if on_stuck is not None:
        def guard():
            print(f"graceful stop took more than {STOP_GRACE:.0f}s; exiting", file=sys.stderr)
            on_stuck()
            os._exit(0)

        t = threading.Timer(STOP_GRACE, guard)
        t.daemon = True
        t.start()
    os.kill(os.getpid(), signal.SIGTERM)


def faust_app(app_id: str, bootstrap: str, workdir: Path):
    """A plain faust.App as the Faust cases run it: store=rocksdb://, 6 s session timeout,
    1 s heartbeat, producer_linger=0.005 (streamkit's producer linger), 4 partitions, web
    server off."""
    import faust

    return faust.App(app_id, broker=f"kafka://{bootstrap}", store="rocksdb://",
                     datadir=str(Path(workdir) / "faust-data"), broker_session_timeout=6,
                     broker_heartbeat_interval=1, producer_linger=0.005, topic_partitions=4,
                     web_enabled=False)


async def faust_commit_through(app, last: Mapping, timeout: float = 60.0) -> None:
    """Commit until every partition's offset after `last` (TP -> last offset seen) is
    committed. The last event of each partition is acked when the agent asks for the next
    one; Faust flushes the producer (and so the changelog) before committing."""
    target = {tp: off + 1 for tp, off in last.items()}
    deadline = time.monotonic() + timeout
    while True:
        await app.consumer.commit()
        committed = app.consumer._committed_offset
        if all((committed.get(tp) or 0) >= end for tp, end in target.items()):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"commit did not reach {target}: {dict(committed)}")
        await asyncio.sleep(0.005)


def check_streamkit_sums(app, spec, args) -> dict:
    """Add the task that waits for the last event's commit, then checks the sums in the
    RocksDB stores of table `spec` and the last value per key in its changelog against
    expected.json; return the state that `finish` reports."""
    from streamkit.testing.kafka import read_topic_async

    state: dict = {"result": None, "error": None, "events": args.events}

    async def finisher():
        runner = app.processors
        try:
            seconds = await records_done(runner, args.events)
            expected = load_expected(args.workdir)
            stored = {k: v for task in runner.tasks.values()
                      for k, v in task.stores[spec.name].items()}
            changelog = {}
            for rec in await read_topic_async(args.bootstrap, spec.changelog):
                changelog[rec.key.decode()] = int(rec.value)
            problem = (compare_sums(stored, expected) or
                       (compare_sums(changelog, expected) and
                        "changelog: " + compare_sums(changelog, expected)))
            state["result"] = {"seconds": seconds, "group": runner.group_id,
                               "problem": problem, "keys": len(stored),
                               "commits": runner.counters["commits"],
                               **commit_quantiles_ms(runner)}
        except Exception as exc:
            state["error"] = repr(exc)
        finally:
            stop_self(state)

    when_started(app, finisher)
    return state


def commit_quantiles_ms(runner) -> dict:
    """commit_p50_ms and commit_p99_ms: the quantiles of the worker's commit times, as its
    /metrics has them (streamkit_commit_seconds, over its last 4,096 commits)."""
    out = {}
    for name, q in (("commit_p50_ms", 0.5), ("commit_p99_ms", 0.99)):
        seconds = runner.commit_durations.quantile(q)
        out[name] = None if seconds is None else round(seconds * 1000, 2)
    return out


def run_streamkit_case(app, state, settings: str) -> None:
    """Run the worker until the checking task stops it; print the result line (with the
    commit time quantiles, up to the commit of the last event)."""
    run_worker(app)
    result = state["result"] or {}
    finish(state, state["events"], commits=result.get("commits"),
           commit_p50_ms=result.get("commit_p50_ms"), commit_p99_ms=result.get("commit_p99_ms"),
           profile=app.settings.profile, settings=settings)
