"""windowed_aggregation: a tumbling table with on_window_close, relative to a field."""
import math
import time

from .conftest import js

MODULE = "tests.compat.programs.windowed_aggregation"
NS = f"{MODULE}.AggModel"
WARM_UP = 1000.5      # a date long past: its window closes at the first cleanup
WINDOW = 2


def window_events(t0: float) -> list[dict]:
    """Three windows of WINDOW seconds from t0, with 3, 4 and 5 events."""
    return [{"date": t0 + WINDOW * k + 0.25 * j, "value": 0.25 * (j + 1) * (k + 1)}
            for k in range(3) for j in range(k + 3)]


def oracle(t0: float) -> list[dict]:
    """One aggregate per window, in window order, dates relative to t0 (the warm-up's as
    it is)."""
    out = [{"date": WARM_UP - WARM_UP % WINDOW, "count": 1, "mean": 0.0, "__faust": {"ns": NS}}]
    for k in range(3):
        values = [e["value"] for e in window_events(t0) if t0 + WINDOW * k <= e["date"]
                  < t0 + WINDOW * (k + 1)]
        out.append({"date": float(WINDOW * k), "count": len(values),
                    "mean": sum(values) / len(values), "__faust": {"ns": NS}})
    return out


# The example keeps model instances in a list value, which comes back from a RocksDB store
# as dicts (in Faust as well): it is run with store="memory://" on both (streamkit.App's
# default store is RocksDB, Faust's memory; docs/faust.md).
def test_windowed_aggregation(compat):
    pair = compat(MODULE)
    pair.produce("raw-event", [(None, js({"date": WARM_UP, "value": 0.0}))], partitions=1)
    pair.create_topic("agg-event", 1)
    pair.start(COMPAT_STORE="memory://")
    # The warm-up's window closes once a worker consumes and its cleanup runs: from then
    # on, both process events as they come.
    got = pair.settle(lambda run: run.values("agg-event"), lambda v: len(v) >= 1)
    pair.check("the warm-up window's aggregate", got, oracle(0)[:1])
    # Windows in the near future: none closes before its events are in (Faust closes
    # windows by the wall clock, WINDOW + expires after their start).
    t0 = math.ceil((time.time() + 3) / WINDOW) * WINDOW
    pair.produce("raw-event", [(None, js(e)) for e in window_events(t0)], partitions=1)

    def relative(values):
        return [{**v, "date": v["date"] - t0} if isinstance(v, dict) and v["date"] > WARM_UP
                else v for v in values]

    got = pair.settle(lambda run: relative(run.values("agg-event")), lambda v: len(v) >= 4,
                      timeout=30)
    pair.check("aggregates sent by on_window_close (dates relative to the first window)",
               got, oracle(t0))
    pair.verdict()
