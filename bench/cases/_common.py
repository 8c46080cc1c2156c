"""Shared helpers for the W1 benchmark cases.

Every case is run by ``bench/w1.py`` as

    python bench/cases/<case>.py --bootstrap HOST:PORT --topic T --events N --workdir DIR

reads the expected final per-key sums from ``DIR/expected.json``, checks its own final
sums against them, and prints ONE JSON line as the last line of its stdout::

    {"eps": ..., "seconds": ..., "rss_mb": ..., "checked": true, "group": ..., ...}

``seconds`` runs from the first record the case saw to the end of its last offset commit
(after its final flush); ``rss_mb`` is the peak RSS of the case process (VmHWM).
A case whose sums do not match prints a message on stderr and exits non-zero.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
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
    }
    result.update(extra)
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


def finish(state: Mapping[str, Any], events: int, **extra: Any) -> None:
    """Report an in-process worker's result (state: error, result, stop_at), or fail."""
    import time

    if state.get("error"):
        fail(state["error"])
    res = state.get("result")
    if res is None:
        fail("worker stopped before the result was known")
    if res["problem"]:
        fail(res["problem"])
    report(events, res["seconds"], True, group=res["group"], keys=res["keys"],
           stop_seconds=round(time.perf_counter() - state["stop_at"], 2), **extra)
