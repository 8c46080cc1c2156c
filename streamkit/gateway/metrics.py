"""The gateway's request metrics: requests counted and timed as they end, with three dict
updates. prometheus.py shows them, and reads everything else from the gateway's counters at
scrape time, as the worker's metrics are.
"""
from __future__ import annotations

from collections import Counter

from ..ops.metrics import Buckets

# From a request answered at once to one that waits for a state (deadline up to 60 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                   10.0, 30.0, 60.0)
UNKNOWN_SERVICE = "(unknown)"  # one label for every name that is not a service


class RequestMetrics:
    """Requests by service, method and status; the time of those sent to a service."""

    def __init__(self, services: frozenset[str]) -> None:
        self.services = services
        self.requests: Counter[tuple[str, str, int]] = Counter()
        self.latency: dict[str, Buckets] = {}

    def observe(self, service: str, method: str, status: int,
                seconds: float | None = None) -> None:
        """One request that ended with status; seconds from its arrival to its answer, for
        a request that was sent to a service (or waited to be)."""
        name = service if service in self.services else UNKNOWN_SERVICE
        self.requests[(name, method, status)] += 1
        if seconds is not None:
            buckets = self.latency.get(name)
            if buckets is None:
                buckets = self.latency[name] = Buckets(LATENCY_BUCKETS)
            buckets.observe(seconds)
