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

from _common import check_streamkit_sums, parse_args, run_streamkit_case, streamkit_settings

from streamkit import App


def build(args, **env: str):
    app = App(f"w1-streamkit-{uuid.uuid4().hex[:10]}",
              settings=streamkit_settings(args.bootstrap, args.workdir, **env))
    sums = app.source(args.topic).group_by_key().aggregate(
        "sums", initial=0, add=lambda acc, ev: acc + ev["amount"])
    return app, check_streamkit_sums(app, sums.spec, args)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    app, state = build(args)
    run_streamkit_case(app, state,
                       "streamkit profile defaults (STREAMKIT_PROFILE): commit 1 s or 20,000 "
                       "records, producer linger 5 ms, 512 KiB batches, acks=all")


if __name__ == "__main__":
    main()
