"""W1 on streamkit as a Faust user writes it: an agent doing ``table[key] += amount``.

    @app.batched_agent(topic)
    async def summer(stream):
        async for ev in stream:
            sums[ev["key"]] += ev["amount"]

with `sums = app.agent_table("sums", default=int)`: Faust's agent shape and mapping
interface, fed by streamkit's batched fetcher, the table a streamkit table (RocksDB,
changelog, restored, queryable). Same settings, timing and checks as the DSL case
(streamkit_table.py): from the first fetched batch to the end of the commit that covers
the last event; the sums in the RocksDB stores and the changelog must equal expected.json.
"""
from __future__ import annotations

import uuid

from _common import check_streamkit_sums, parse_args, run_streamkit_case, streamkit_settings

from streamkit import App


def build(args):
    app = App(f"w1-agent-{uuid.uuid4().hex[:10]}",
              settings=streamkit_settings(args.bootstrap, args.workdir))
    sums = app.agent_table("sums", default=int)

    @app.batched_agent(args.topic)
    async def summer(stream):
        async for ev in stream:
            sums[ev["key"]] += ev["amount"]

    return app, check_streamkit_sums(app, sums.spec, args)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app, state = build(args)
    run_streamkit_case(app, state,
                       "streamkit profile defaults (STREAMKIT_PROFILE), a batched agent and an "
                       "agent table: commit 1 s or 20,000 records, producer linger 5 ms, acks=all")


if __name__ == "__main__":
    main()
