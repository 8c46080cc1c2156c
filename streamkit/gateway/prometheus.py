"""The gateway's figures in Prometheus form: its request metrics (metrics.py), parked
requests, hand-offs and websockets, read from the Gateway at each scrape."""
from __future__ import annotations

from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from .core import Gateway


class GatewayCollector(Collector):
    def __init__(self, app_id: str, gateway: Gateway) -> None:
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
