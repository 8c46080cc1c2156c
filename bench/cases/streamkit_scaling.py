"""One worker process of the scaling benchmark: W1's app (sum of amount per key) under an
application id shared by every process of the run, so that they split the input topic's
partitions between them as the workers of one app do.

    python bench/cases/streamkit_scaling.py --bootstrap HOST:PORT --topic T --events N
                                            --workdir DIR --app-id ID --index I

bench/scaling.py starts N of these at once. Each one samples its committed record count
(time.monotonic(), records) every 100 ms, until the driver writes DIR/done (once the group
has committed the end offset of every partition). It then checks that every sum its own
stores hold equals expected.json (the driver checks that the processes' keys together cover
every key, and reads the changelog) and prints one JSON line: its records, the time of its
first record and of its last commit, its CPU seconds (start-up included), its samples and
its stored keys.
"""
from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from _common import (
    commit_quantiles_ms,
    fail,
    load_expected,
    report,
    run_worker,
    stop_self,
    streamkit_settings,
    until_done,
    when_started,
)

from streamkit import App

SAMPLE_EVERY_S = 0.1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--bootstrap", "--topic", "--workdir", "--app-id"):
        p.add_argument(name, required=True)
    p.add_argument("--events", type=int, required=True)
    p.add_argument("--index", type=int, required=True)
    args = p.parse_args()
    workdir = Path(args.workdir)

    app = App(args.app_id, settings=streamkit_settings(
        args.bootstrap, workdir / f"p{args.index}"))
    sums = app.source(args.topic).group_by_key().aggregate(
        "sums", initial=0, add=lambda acc, ev: acc + ev["amount"])
    state: dict = {"result": None, "error": None}

    async def sampler() -> None:
        runner = app.processors
        samples: list[tuple[float, int]] = []
        try:
            # The group may have rebalanced since the last commit: the stores are read once
            # this process's tasks are restored.
            await until_done(runner, workdir, restored=True, every_s=SAMPLE_EVERY_S,
                             each=lambda: samples.append((round(time.monotonic(), 3),
                                                          runner.counters["records"])))
            expected = load_expected(workdir)
            stored = {k: v for task in runner.tasks.values()
                      for k, v in task.stores[sums.spec.name].items()}
            wrong = [(k, v, expected.get(k)) for k, v in stored.items() if expected.get(k) != v]
            usage = resource.getrusage(resource.RUSAGE_SELF)
            state["result"] = {"cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
                "records": runner.counters["records"], "first_record_at": runner.first_record_at,
                "last_commit_at": runner.last_commit_at, "commits": runner.counters["commits"],
                "tasks": sorted(str(t) for t in runner.tasks), "stored_keys": sorted(stored),
                "changelog": sums.spec.changelog, "group": runner.group_id, "samples": samples,
                "problem": wrong and f"{len(wrong)} wrong sums (key, got, want): {wrong[:3]}",
                **commit_quantiles_ms(runner)}
        except Exception as exc:  # noqa: BLE001 - reported as the case's failure
            state["error"] = repr(exc)
        finally:
            stop_self(state)

    when_started(app, sampler)
    run_worker(app)
    res = state["result"]
    if state["error"] or res is None or res["problem"]:
        fail(state["error"] or (res and res["problem"]) or "stopped before the result")
    first = res["first_record_at"]
    seconds = (res["last_commit_at"] - first) if first is not None else 0.0
    report(res["records"], seconds, True, **{k: v for k, v in res.items() if k != "problem"})


if __name__ == "__main__":
    main()
