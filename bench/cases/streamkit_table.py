"""W1 on streamkit: `app.stream(topic).group_by_key().aggregate("sums", 0, add)`.

streamkit.App with the settings the recovery tests run with (dev profile defaults:
1 s commit interval, 20,000-record commit bound, batched changelog writes), in-process
through faust.Worker. Timing: from the first fetched batch to the end of the commit
that covers the last event (changelog acknowledged, RocksDB written, offsets committed).
Before reporting, the sums are read from the RocksDB stores and the last value per key
is read back from the changelog topic; both must equal expected.json.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
import uuid

import faust

from _common import compare_sums, finish, load_expected, parse_args
from streamkit import App, Settings
from streamkit.devbroker import free_port
from streamkit.testing.kafka import read_topic_async


def build(args):
    app_id = f"w1-streamkit-{uuid.uuid4().hex[:10]}"
    settings = Settings.from_env({
        "STREAMKIT_BROKER": f"kafka://{args.bootstrap}",
        "STREAMKIT_PROFILE": "dev",
        "STREAMKIT_DATA_DIR": str(args.workdir / "data"),
        "STREAMKIT_WEB_PORT": str(free_port()),
    })
    app = App(app_id, settings=settings)
    sums = app.stream(args.topic).group_by_key().aggregate(
        "sums", initial=0, add=lambda acc, ev: acc + ev["amount"])
    state = {"result": None, "error": None, "events": args.events}

    @app.task
    async def finisher():
        runner = app.processors
        try:
            while runner.counters["records"] < args.events:
                if runner.failed is not None:
                    raise runner.failed
                await asyncio.sleep(0.002)
            seconds = runner.last_commit_at - runner.first_record_at
            expected = load_expected(args.workdir)
            stored = {k: v for task in runner.tasks.values()
                      for k, v in task.stores[sums.name].items()}
            changelog = {}
            for rec in await read_topic_async(args.bootstrap, sums.spec.changelog):
                changelog[rec.key.decode()] = int(rec.value)
            problem = (compare_sums(stored, expected) or
                       (compare_sums(changelog, expected) and
                        "changelog: " + compare_sums(changelog, expected)))
            state["result"] = {"seconds": seconds, "group": runner.group_id,
                               "problem": problem, "keys": len(stored),
                               "commits": runner.counters["commits"]}
        except Exception as exc:
            state["error"] = repr(exc)
        finally:
            state["stop_at"] = time.perf_counter()
            os.kill(os.getpid(), signal.SIGTERM)

    return app, state


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app, state = build(args)
    worker = faust.Worker(app, loglevel="WARNING", quiet=True, redirect_stdouts=False,
                          stdout=sys.stderr)
    try:
        worker.execute_from_commandline()
    except SystemExit:
        pass
    logging.getLogger().setLevel(logging.WARNING)
    finish(state, args.events, commits=(state["result"] or {}).get("commits"),
           settings="streamkit dev profile defaults (as the recovery tests): commit 1 s or "
                    "20,000 records, producer linger 5 ms, 512 KiB batches, acks=all")


if __name__ == "__main__":
    main()
