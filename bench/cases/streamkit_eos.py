"""W1 on streamkit with exactly-once: the streamkit case's topology and settings with
STREAMKIT_PROCESSING_GUARANTEE=exactly_once, so each task's commit is one Kafka transaction
(changelog, input offsets) and the sums are read back as in the streamkit case. The result
line has commit_p50_ms and commit_p99_ms, the quantiles of the worker's
streamkit_commit_seconds (each commit: every task's transaction, side by side), as the
streamkit case has them for at-least-once commits.
"""
from __future__ import annotations

import streamkit_table
from _common import parse_args, run_streamkit_case


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app, state = streamkit_table.build(args, STREAMKIT_PROCESSING_GUARANTEE="exactly_once")
    run_streamkit_case(app, state,
                       "streamkit profile defaults, exactly_once: one transaction per task and "
                       "commit (commit 1 s or 20,000 records)")


if __name__ == "__main__":
    main()
