"""A windowed app for the integration tests: per key and 1 s tumbling window (grace
500 ms) of event time, the sum of the events' "amount", emitted once per window when it
closes. Its id and topics come from the environment, so that each test runs its own."""
import os

import streamkit
from streamkit import Tumbling

APP_ID = os.environ.get("WINDOWED_APP_ID", "windowed")
app = streamkit.App(APP_ID)
events = app.source(f"{APP_ID}-events", timestamp=lambda e: e["ts"])
sums = (events.group_by_key()
              .windowed_by(Tumbling(size_ms=1_000, grace_ms=500))
              .aggregate("sums", initial=0, add=lambda total, e: total + e["amount"],
                         emit="final", to=f"{APP_ID}-sums"))
