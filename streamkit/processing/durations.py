"""Durations of a recurring step (a commit): the count and sum of all of them, and the
recent ones, from which a scrape reads quantiles (a Prometheus summary)."""
from __future__ import annotations

import math
from collections import deque

RECENT = 4096  # samples the quantiles are read from: at a commit a second, over an hour


class Durations:
    """Seconds per occurrence: every one counted and summed, the last `recent` kept."""

    __slots__ = ("count", "sum", "recent")

    def __init__(self, recent: int = RECENT) -> None:
        if recent < 1:
            raise ValueError(f"recent must be at least 1, got {recent}")
        self.count = 0
        self.sum = 0.0
        self.recent: deque[float] = deque(maxlen=recent)

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.sum += seconds
        self.recent.append(seconds)

    def quantile(self, q: float) -> float | None:
        """The q-quantile (0 < q <= 1) of the recent durations by nearest rank (the
        smallest sample with at least q of the samples at or below it); None before the
        first."""
        if not 0 < q <= 1:
            raise ValueError(f"q must be in (0, 1], got {q}")
        if not self.recent:
            return None
        ordered = sorted(self.recent)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]
