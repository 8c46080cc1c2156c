"""windowing/tumbling and windowing/hopping: what now(), current(), value() and delta(30) of
a windowed table's value answer while events with explicit timestamps are counted."""
import math
import time

import pytest

from .conftest import js

# Offsets (s) of the events' timestamps from a base: one every 2 s as in the examples, then
# a few late ones (earlier than the latest seen), which tell current() from now().
OFFSETS = [2 * i + 0.5 for i in range(25)] + [13.5, 41.5, 1.5, 49.5, 20.5]


def windows_of(t: float, size: float, step: float) -> list[float]:
    """Starts of the windows [start, start + size) that hold t; windows start at multiples
    of step."""
    last = math.floor(t / step) * step
    return [s for s in (last - k * step for k in range(int(size / step))) if s <= t < s + size]


def oracle(base: float, size: float, step: float) -> list[dict]:
    """Per event: the count of events so far in the latest window holding the event's time
    (current and value: the table is relative to the stream), in the latest window holding
    the time 30 s before it (delta(30)), and in the latest window holding the latest event
    time seen so far (now(), which inside a stream Faust takes from stream time)."""
    counts: dict[float, int] = {}
    latest = -math.inf
    out = []
    for i, off in enumerate(OFFSETS):
        t = base + off
        latest = max(latest, t)
        for s in windows_of(t, size, step):
            counts[s] = counts.get(s, 0) + 1
        current = counts.get(max(windows_of(t, size, step)), 0)
        out.append({"event": i / 4, "now": counts.get(max(windows_of(latest, size, step)), 0),
                    "current": current, "value": current,
                    "delta30": counts.get(max(windows_of(t - 30, size, step)), 0)})
    return out


@pytest.mark.parametrize("kind,size,step", [("tumbling", 10, 10), ("hopping", 10, 5)])
def test_windowing(compat, kind, size, step):
    # A recent base (a multiple of a minute, 5 minutes ago): Faust expires windows against
    # the wall clock, and these must live (expires=10 minutes) until the test is over.
    base = math.floor(time.time() / 60) * 60 - 300
    pair = compat(f"tests.compat.programs.windowing_{kind}")
    pair.produce(f"{kind}_topic", [(None, js({"random": i / 4}), int((base + off) * 1000))
                                   for i, off in enumerate(OFFSETS)], partitions=1)
    pair.create_topic(f"{kind}_answers", 1)
    pair.start()
    got = pair.settle(lambda run: run.values(f"{kind}_answers"),
                      lambda v: len(v) >= len(OFFSETS))
    pair.check(f"{kind}: per event {{now, current, value, delta30}}", got,
               oracle(base, size, step))
    pair.verdict()
