"""W1 on plain Faust: one agent doing ``table[key] += amount`` on a RocksDB Table.

faust.App with store="rocksdb://" (rocksdict), a Table(default=int, partitions=4) with its
changelog topic, broker_session_timeout=6, broker_heartbeat_interval=1,
producer_linger=0.005 (the linger streamkit's producer uses), root logger at WARNING, web
server off. The worker runs in-process through faust.Worker (no `faust worker` CLI, so
no terminal spinner that would turn the root logger to DEBUG).

Timing: from the first record the agent sees until all N events were processed and acked,
the table's changelog was flushed (producer.flush) and the consumer committed the end
offset of every partition. The sums are then read back from the table and compared to
expected.json, and the worker is stopped (SIGTERM to itself, Faust's graceful stop).
"""
from __future__ import annotations

import asyncio
import time
import uuid

from _common import (
    compare_sums,
    faust_app,
    faust_commit_through,
    finish,
    load_expected,
    parse_args,
    peak_rss_mb,
    run_worker,
    stop_self,
)


def build(args):
    app_id = f"w1-faust-{uuid.uuid4().hex[:10]}"
    app = faust_app(app_id, args.bootstrap, args.workdir)
    source = app.topic(args.topic, key_serializer="raw", value_serializer="json",
                       partitions=4)
    table = app.Table("sums", default=int, partitions=4)
    state = {
        "n": 0,
        "t0": None,
        "last": {},  # TP -> last offset seen
        "result": None,
        "error": None,
        "events": args.events,
    }

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
            if state["n"] != args.events:
                raise RuntimeError(f"processed {state['n']} events, expected {args.events}")
            await faust_commit_through(app, state["last"])
            await app.producer.flush()
            t_end = time.perf_counter()
            actual = {k: v for k, v in table.items()}
            problem = compare_sums(actual, load_expected(args.workdir))
            state["result"] = {
                "seconds": t_end - state["t0"],
                "group": app_id,
                "keys": len(actual),
                "problem": problem,
                "rss_mb_at_end": round(peak_rss_mb(), 1),
            }
        except Exception as exc:  # reported after the worker stops
            state["error"] = repr(exc)
        finally:
            stop_self(state, on_stuck=lambda: _finish(state))

    return app, state


def _finish(state) -> None:
    finish(state, state["events"],
           settings="store=rocksdb:// (rocksdict), producer_linger=0.005, "
                    "session_timeout=6s, heartbeat=1s, root logger WARNING")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app, state = build(args)
    run_worker(app)
    _finish(state)


if __name__ == "__main__":
    main()
