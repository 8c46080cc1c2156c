"""An app for the exactly-once tests: per key, the running sum of the events' "amount"
(every update to `<id>-running`) and 1 s tumbling windows of event time (grace 500 ms),
each window's sum emitted once when it closes (to `<id>-windows`). Its id comes from the
environment, its guarantee from STREAMKIT_PROCESSING_GUARANTEE."""
import os

import streamkit
from streamkit import Tumbling

APP_ID = os.environ.get("EOS_APP_ID", "eos")
app = streamkit.App(APP_ID)
events = app.source(f"{APP_ID}-events", timestamp=lambda e: e["ts"])
grouped = events.group_by_key()
sums = grouped.aggregate("sums", initial=0, add=lambda total, e: total + e["amount"])
sums.changes().to(f"{APP_ID}-running")
grouped.windowed_by(Tumbling(size_ms=1_000, grace_ms=500)).aggregate(
    "windows", initial=0, add=lambda total, e: total + e["amount"],
    emit="final", to=f"{APP_ID}-windows")
