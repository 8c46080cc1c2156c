"""An app for the exactly-once tests: per key, the running sum of the events' "amount"
(every update to `<id>-running`), 1 s tumbling windows of event time (grace 500 ms), each
window's sum emitted once when it closes (to `<id>-windows`), and a stream-stream join
(to `<id>-joined`): each event of amount at most 4 with each event of the same key of
amount at least 5 whose time is at most 100 ms before or after its own, as the pair of
their ids, and a foreign-key join (every change to `<id>-labelled`): each key's latest
event with the label its "group" names in the table `<id>-labels`. Its id comes from the
environment, its guarantee from STREAMKIT_PROCESSING_GUARANTEE."""
import os

import streamkit
from streamkit import JoinWindows, Tumbling

APP_ID = os.environ.get("EOS_APP_ID", "eos")
app = streamkit.App(APP_ID)
events = app.source(f"{APP_ID}-events", timestamp=lambda e: e["ts"])
grouped = events.group_by_key()
sums = grouped.aggregate("sums", initial=0, add=lambda total, e: total + e["amount"])
sums.changes().to(f"{APP_ID}-running")
grouped.windowed_by(Tumbling(size_ms=1_000, grace_ms=500)).aggregate(
    "windows", initial=0, add=lambda total, e: total + e["amount"],
    emit="final", to=f"{APP_ID}-windows")
small = events.filter(lambda e: e["amount"] <= 4)
large = events.filter(lambda e: e["amount"] >= 5)
small.join_window(large, JoinWindows(before_ms=100, after_ms=100, grace_ms=500),
                  lambda s, big: {"l": s["id"], "r": big["id"]}, name="pairs"
                  ).to(f"{APP_ID}-joined")
latest = events.filter(lambda e: "group" in e).group_by_key().reduce(
    "latest", lambda _old, e: e)
labels = app.table("labels", topic=f"{APP_ID}-labels")
latest.join_foreign(labels, "labelled", fk=lambda e: e["group"],
                    joiner=lambda e, lab: {"id": e["id"], "label": lab["label"]}
                    ).changes().to(f"{APP_ID}-labelled")
