"""Prometheus metrics of a worker, read from the runner's counters at scrape time so that
the per-record path pays nothing for them."""
from __future__ import annotations

from collections import Counter
from typing import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from ..shell import AppShell

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class ProcessingCollector(Collector):
    def __init__(self, app: AppShell, queries: Counter[str]) -> None:
        self.app, self.queries = app, queries
        self._hist = [0] * (len(_BUCKETS) + 1)
        self._hist_sum = 0.0

    def collect(self) -> Iterator:
        runner = self.app.processors
        app_id = self.app.conf.id
        c = CounterMetricFamily("streamkit_records_in", "Records processed, per source topic",
                                labels=["app", "topic"])
        for topic, n in sorted(runner.records_in.items()):
            c.add_metric([app_id, topic], n)
        yield c
        out = CounterMetricFamily("streamkit_records_out", "Records produced and acknowledged, per topic",
                                  labels=["app", "topic"])
        outbox = getattr(runner, "outbox", None)
        for topic, n in sorted((outbox.sent if outbox else {}).items()):
            out.add_metric([app_id, topic], n)
        yield out
        dl = CounterMetricFamily("streamkit_dead_letters", "Records sent to the dead-letter topic",
                                 labels=["app", "topic"])
        for topic, n in sorted(runner.dead_letters_by_topic.items()):
            dl.add_metric([app_id, topic], n)
        yield dl
        late = CounterMetricFamily("streamkit_late_events", "Records too late for their window, dropped",
                                   labels=["app"])
        late.add_metric([app_id], runner.late_records)
        yield late
        commits = CounterMetricFamily("streamkit_commits", "Commits of the processing path", labels=["app"])
        commits.add_metric([app_id], runner.counters["commits"])
        yield commits
        restored = CounterMetricFamily("streamkit_restored_records",
                                       "Changelog records applied while restoring tables", labels=["app"])
        restored.add_metric([app_id], runner.counters["restored"])
        yield restored
        lag = GaugeMetricFamily("streamkit_consumer_lag",
                                "High watermark of the last fetch minus the next offset to process",
                                labels=["app", "topic", "partition"])
        consumer = getattr(runner, "consumer", None)
        active = runner.active_inputs()
        for tp, pos in sorted(runner.positions.items()):
            hw = consumer.highwater(tp) if consumer is not None else None
            if hw is not None and tp in active:
                lag.add_metric([app_id, tp.topic, str(tp.partition)], max(0, hw - pos))
        yield lag
        ready = GaugeMetricFamily("streamkit_ready", "1 when partitions are assigned and tables restored",
                                  labels=["app"])
        ready.add_metric([app_id], 1 if self.app.is_ready else 0)
        yield ready
        yield self._batch_histogram(runner, app_id)
        fwd = CounterMetricFamily("streamkit_forwarded_queries", "Table reads forwarded to their owner",
                                  labels=["app"])
        fwd.add_metric([app_id], self.queries["forwarded"])
        yield fwd
        breaches = CounterMetricFamily("streamkit_http_limit_breaches", "Requests refused by a limit",
                                       labels=["app", "limit"])
        for limit, n in sorted(self.app.limit_breaches.items()):
            breaches.add_metric([app_id, limit], n)
        yield breaches

    def _batch_histogram(self, runner, app_id: str):
        samples, runner.batch_seconds = runner.batch_seconds, []
        for x in samples:
            self._hist_sum += x
            for i, bound in enumerate(_BUCKETS):
                if x <= bound:
                    self._hist[i] += 1
                    break
            else:
                self._hist[-1] += 1
        h = HistogramMetricFamily("streamkit_batch_processing_seconds",
                                  "Time to push one fetched batch through the graph", labels=["app"])
        cumulative, buckets = 0, []
        for label, n in zip([*map(str, _BUCKETS), "+Inf"], self._hist):
            cumulative += n
            buckets.append((label, float(cumulative)))
        h.add_metric([app_id], buckets, self._hist_sum)
        return h


def registry_for(app: AppShell, queries: Counter[str]) -> CollectorRegistry:
    """A registry of this app's own (not the process-wide default)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessingCollector(app, queries))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
