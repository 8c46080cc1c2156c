"""The gateway's Prometheus metrics, on the instance's /metrics beside the worker's own.

Requests are counted (and timed) as they end, with three dict updates; everything else is
read from the gateway's counters at scrape time, as the worker's metrics are.
"""
from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ..ops.metrics import Buckets

if TYPE_CHECKING:
    from .core import Gateway

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


class GatewayCollector(Collector):
    def __init__(self, app_id: str, gateway: "Gateway") -> None:
        self.app_id, self.gateway = app_id, gateway

    def collect(self) -> Iterator:
        g, app = self.gateway, self.app_id
        m = g.metrics
        requests = CounterMetricFamily(
            "streamkit_gateway_requests", "Requests answered, by service, method and status "
            "(HTTP requests and websocket frames)", labels=["app", "service", "method", "status"])
        for (service, method, status), n in sorted(m.requests.items()):
            requests.add_metric([app, service, method, str(status)], n)
        yield requests
        latency = HistogramMetricFamily(
            "streamkit_gateway_request_seconds",
            "Round trip of a request sent to a service: from its arrival to its answer",
            labels=["app", "service"])
        for service, buckets in sorted(m.latency.items()):
            latency.add_metric([app, service], buckets.cumulative(), buckets.sum)
        yield latency
        parked = GaugeMetricFamily("streamkit_gateway_parked",
                                   "Requests parked here, waiting for their reply", labels=["app"])
        parked.add_metric([app], len(g.parked))
        yield parked
        ws = GaugeMetricFamily("streamkit_gateway_websockets", "Open websocket sessions",
                               labels=["app"])
        ws.add_metric([app], g.counters.get("ws_open", 0))
        yield ws
        counts = g.parked.counters
        for name, doc, n in (
                ("timeouts", "Requests answered 504: no reply before their deadline",
                 counts["timed_out"]),
                ("late_replies", "Replies for requests no longer parked (timed out, or "
                 "delivered twice), dropped", counts["late"]),
                ("handoffs_in", "Replies another instance consumed and handed over here",
                 g.counters["handoffs_in"]),
                ("handoffs_out", "Replies consumed here and handed over to the instance that "
                 "parked them", g.handoff.counters["handoffs_out"]),
                ("handoff_failures", "Replies that could not be handed over (the instance "
                 "that parked them is gone)", g.handoff.counters["handoff_failed"]),
                ("websocket_sessions", "Websocket sessions opened",
                 g.counters.get("ws_connections", 0))):
            family = CounterMetricFamily(f"streamkit_gateway_{name}", doc, labels=["app"])
            family.add_metric([app], n)
            yield family
