"""W1 on streamkit: `app.source(topic).group_by_key().aggregate("sums", 0, add)`.

streamkit.App with the defaults of the profile the driver sets (STREAMKIT_PROFILE: 1 s
commit interval, 20,000-record commit bound, batched changelog writes), in-process
through faust.Worker. Timing: from the first fetched batch to the end of the commit
that covers the last event (changelog acknowledged, RocksDB written, offsets committed).
Before reporting, the sums are read from the RocksDB stores and the last value per key
is read back from the changelog topic; both must equal expected.json.
"""
from __future__ import annotations

import uuid

from _common import (compare_sums, finish, load_expected, parse_args, records_done, run_worker,
                     stop_self, streamkit_settings)
from streamkit import App
from streamkit.testing.kafka import read_topic_async


def build(args):
    app = App(f"w1-streamkit-{uuid.uuid4().hex[:10]}",
              settings=streamkit_settings(args.bootstrap, args.workdir))
    sums = app.source(args.topic).group_by_key().aggregate(
        "sums", initial=0, add=lambda acc, ev: acc + ev["amount"])
    state = {"result": None, "error": None, "events": args.events}

    @app.task
    async def finisher():
        runner = app.processors
        try:
            seconds = await records_done(runner, args.events)
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
            stop_self(state)

    return app, state


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app, state = build(args)
    run_worker(app)
    finish(state, args.events, commits=(state["result"] or {}).get("commits"),
           profile=app.settings.profile,
           settings="streamkit profile defaults (STREAMKIT_PROFILE): commit 1 s or 20,000 "
                    "records, producer linger 5 ms, 512 KiB batches, acks=all")


if __name__ == "__main__":
    main()
