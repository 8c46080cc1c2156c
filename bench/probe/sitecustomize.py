"""Stall probe: put this directory first on PYTHONPATH (the benchmarks pass PYTHONPATH on to
their workers) and set BENCH_PROBE_DIR; every Python process started so writes
<dir>/<pid>.log: its command line, then each garbage-collector pass and each event-loop
callback that took longer than BENCH_PROBE_MS (default 20), with the wall-clock time.

    BENCH_PROBE_DIR=/tmp/probe PYTHONPATH=bench/probe python bench/wait_for.py ...

It tells a tail made of blocked event loops or collector pauses from one made of waiting.
Timing every callback costs two clock reads each: not for figures of throughput."""
import gc
import os
import sys
import time

_DIR = os.environ.get("BENCH_PROBE_DIR")

if _DIR:
    import asyncio.events

    _limit = float(os.environ.get("BENCH_PROBE_MS", "20")) / 1000
    os.makedirs(_DIR, exist_ok=True)
    _log = open(os.path.join(_DIR, f"{os.getpid()}.log"), "a", buffering=1)
    _log.write(" ".join(sys.argv)[:300] + "\n")
    _gc_started = [0.0]

    def _on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            _gc_started[0] = time.perf_counter()
            return
        took = time.perf_counter() - _gc_started[0]
        if took > _limit:
            _log.write(f"{time.time():.3f} gc generation {info['generation']} "
                       f"{took * 1000:.1f} ms, collected {info['collected']}\n")

    gc.callbacks.append(_on_gc)
    _run = asyncio.events.Handle._run

    def _timed_run(self) -> None:
        started = time.perf_counter()
        _run(self)
        took = time.perf_counter() - started
        if took > _limit:
            _log.write(f"{time.time():.3f} callback {took * 1000:.1f} ms {repr(self)[:300]}\n")

    asyncio.events.Handle._run = _timed_run
