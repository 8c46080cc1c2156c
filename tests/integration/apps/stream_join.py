"""An app for the stream-stream join tests: per key, each left event joined (left join)
with the right events at most 100 ms before or after it, grace 500 ms of event time in
"ts". Its id and topics come from the environment, so that each test runs its own."""
import os

import streamkit
from streamkit import JoinWindows

APP_ID = os.environ.get("STREAM_JOIN_APP_ID", "stream-join")
app = streamkit.App(APP_ID)
left = app.source(f"{APP_ID}-left", timestamp=lambda e: e["ts"])
right = app.source(f"{APP_ID}-right", timestamp=lambda e: e["ts"])
pairs = left.join_window(right, JoinWindows(before_ms=100, after_ms=100, grace_ms=500),
                         lambda lv, rv: {"l": lv["id"], "r": rv and rv["id"]},
                         how="left", name="pairs")
pairs.to(f"{APP_ID}-joined")
