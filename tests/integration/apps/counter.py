"""A counting app for the integration tests: per key, the number of records and the sum
of their "amount" fields. Its id and topic come from the environment, so that each test
runs its own copy."""
import os

import streamkit

app = streamkit.App(os.environ.get("COUNTER_APP_ID", "counter"))
events = app.source(os.environ.get("COUNTER_SOURCE", "counter-events"))
totals = events.group_by_key().aggregate(
    "totals", initial=lambda: {"count": 0, "sum": 0},
    add=lambda acc, ev: {"count": acc["count"] + 1, "sum": acc["sum"] + ev["amount"]})
