"""W1 on Quix Streams: stateful sum per key in Quix's RocksDB state (with changelog).

Application with auto_offset_reset="earliest", consumer session.timeout.ms=6000 and
heartbeat.interval.ms=1500, state under --workdir, Quix's default commit interval (5 s)
and its changelog topic; topics carry an explicit retention.ms (the dev broker reports
only the configs that were set, and Quix derives its changelog config from them).

The input is already keyed by "k<i>" (murmur2 partitioner), so Quix's state, which is
scoped to the message key, is grouped by key without sdf.group_by (that would add a
repartition topic that neither the Faust case nor the ceiling has).

Stops through ``app.run(count=N)`` once N outputs were produced; Quix then commits its
final checkpoint (state flush, changelog produce + producer flush, offset commit). The
clock runs from the first record to the end of that final forced commit. The sums are
checked from the values the stateful function read from and wrote to the state.
"""
from __future__ import annotations

import logging
import time
import uuid

from _common import compare_sums, fail, load_expected, parse_args, report
from quixstreams import Application
from quixstreams.models.topics import TopicConfig

RETENTION_MS = "604800000"


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    logging.getLogger().setLevel(logging.WARNING)
    expected = load_expected(args.workdir)
    group = f"w1-quix-{uuid.uuid4().hex[:10]}"
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=str(args.workdir / "quix-state"),
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1500},
        loglevel="WARNING",
    )
    topic = app.topic(
        args.topic,
        key_deserializer="str",
        value_deserializer="json",
        config=TopicConfig(num_partitions=4, replication_factor=1,
                           extra_config={"retention.ms": RETENTION_MS}),
    )
    sdf = app.dataframe(topic)

    st = {"n": 0, "t0": None, "t_end": None}
    sums: dict[str, int] = {}

    def add(value, state):
        if st["t0"] is None:
            st["t0"] = time.perf_counter()
        total = state.get("sum", 0) + value["amount"]
        state.set("sum", total)
        sums[value["key"]] = total
        st["n"] += 1
        return total

    sdf = sdf.apply(add, stateful=True)

    # Stop the clock when the final forced checkpoint commit (after the last event) returns.
    ctx = app._processing_context
    commit_checkpoint = ctx.commit_checkpoint

    def timed_commit_checkpoint(force: bool = False, revoking: bool = False):
        result = commit_checkpoint(force=force, revoking=revoking)
        if force and st["t_end"] is None and st["n"] >= args.events:
            st["t_end"] = time.perf_counter()
        return result

    ctx.commit_checkpoint = timed_commit_checkpoint

    app.run(count=args.events, collect=False)
    t_closed = time.perf_counter()

    if st["n"] != args.events:
        fail(f"processed {st['n']} events, expected {args.events}")
    if st["t_end"] is None:
        fail("no final checkpoint commit was seen")
    problem = compare_sums(sums, expected)
    if problem:
        fail(problem)
    report(args.events, st["t_end"] - st["t0"], True, group=group, keys=len(sums),
           stop_seconds=round(t_closed - st["t_end"], 2),
           settings="RocksDB state + changelog, commit_interval=5s (default), "
                    "session.timeout.ms=6000, heartbeat.interval.ms=1500")


if __name__ == "__main__":
    main()
