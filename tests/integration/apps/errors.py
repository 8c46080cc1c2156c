"""An app for the error-handler tests. Its id comes from the environment, and its topics
are named after it.

- `<id>-labels`: each record's text goes to `<id>-kept` (production-error policy
  `continue`, or ERRORS_KEPT_POLICY) or to `<id>-strict` (`fail`), as its "sink" field says;
- `<id>-events`: a count and sum per key, whose adder fails the first time this process
  sees a record marked "fail" (a source with on_error="stop": the error escapes
  processing, and STREAMKIT_ON_UNCAUGHT_ERROR says what follows).
"""
import os

import streamkit

app_id = os.environ["ERRORS_APP_ID"]
app = streamkit.App(app_id)

labels = app.source(f"{app_id}-labels")
labels.filter(lambda v: v["sink"] == "kept").map_values(lambda v: v["text"]).to(
    f"{app_id}-kept", on_error=os.environ.get("ERRORS_KEPT_POLICY", "continue"))
labels.filter(lambda v: v["sink"] == "strict").map_values(lambda v: v["text"]).to(
    f"{app_id}-strict", on_error="fail")

failed_once: set[str] = set()  # per process: a replaced task sees the record again


def add(acc: dict, ev: dict) -> dict:
    if ev.get("fail") and ev["id"] not in failed_once:
        failed_once.add(ev["id"])
        raise RuntimeError(f"the adder fails on {ev['id']}")
    return {"count": acc["count"] + 1, "sum": acc["sum"] + ev["amount"]}


app.source(f"{app_id}-events", on_error="stop").group_by_key().aggregate(
    "totals", initial=lambda: {"count": 0, "sum": 0}, add=add)
