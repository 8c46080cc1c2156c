"""Prometheus metrics of a worker, read from the runner's counters at scrape time so that
the per-record path pays nothing for them."""
from __future__ import annotations

from bisect import bisect_left
from typing import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from ..shell import AppShell

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
QUANTILES = (0.5, 0.9, 0.99)


class Buckets:
    """A histogram's counts per bucket (the last one past every bound) and its sum, kept
    as samples come so that a scrape only reads them."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0

    def observe(self, x: float) -> None:
        self.sum += x
        self.counts[bisect_left(self.bounds, x)] += 1  # the first bucket whose bound is >= x

    def cumulative(self) -> list[tuple[str, float]]:
        """(le, count of samples <= le) for every bound and +Inf, as Prometheus has them."""
        out, total = [], 0
        for label, n in zip([*map(str, self.bounds), "+Inf"], self.counts):
            total += n
            out.append((label, float(total)))
        return out


class ProcessingCollector(Collector):
    def __init__(self, app: AppShell, queries: Callable[[], Mapping[str, int]]) -> None:
        self.app, self.queries = app, queries
        self._batches = Buckets(_BUCKETS)

    def collect(self) -> Iterator:
        runner = self.app.processors
        app_id = self.app.conf.id
        c = CounterMetricFamily("streamkit_records_in", "Records processed, per source topic",
                                labels=["app", "topic"])
        # Every source topic from 0, so that a worker that has processed nothing says so.
        for topic in sorted(set(runner.topology.sources) | set(runner.records_in)):
            c.add_metric([app_id, topic], runner.records_in.get(topic, 0))
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
        refused = CounterMetricFamily("streamkit_production_errors",
                                      "Records the broker refused, per topic they were for",
                                      labels=["app", "topic"])
        errors = getattr(runner, "production_errors", None)
        for topic, n in sorted((errors.rejected if errors else {}).items()):
            refused.add_metric([app_id, topic], n)
        yield refused
        late = CounterMetricFamily("streamkit_late_events", "Records too late for their window, dropped",
                                   labels=["app"])
        late.add_metric([app_id], runner.late_records)
        yield late
        commits = CounterMetricFamily("streamkit_commits", "Commits of the processing path", labels=["app"])
        commits.add_metric([app_id], runner.counters["commits"])
        yield commits
        failures = CounterMetricFamily("streamkit_commit_failures",
                                       "Commits the broker failed (state, outputs and offsets "
                                       "wait for the next try)", labels=["app"])
        failures.add_metric([app_id], runner.counters["commit_failures"])
        yield failures
        replaced = CounterMetricFamily("streamkit_task_replacements",
                                       "Times the tasks were given up and started again after "
                                       "an uncaught error", labels=["app"])
        replaced.add_metric([app_id], runner.counters["replacements"])
        yield replaced
        # A catch-up that times out lets records look up global tables that may lack what
        # was acknowledged before them: worth an alert, next to how often they happen.
        globals_ = runner.globals
        catch_ups = CounterMetricFamily("streamkit_global_catch_ups",
                                        "Global-table catch-ups before a batch that looks "
                                        "them up", labels=["app"])
        catch_ups.add_metric([app_id], globals_.catch_ups if globals_ is not None else 0)
        yield catch_ups
        reads = CounterMetricFamily("streamkit_global_catch_up_reads",
                                    "Global-table catch-ups that found records to read (the "
                                    "others took one fetch request per leader)", labels=["app"])
        reads.add_metric([app_id], globals_.catch_ups_read if globals_ is not None else 0)
        yield reads
        timeouts = CounterMetricFamily("streamkit_global_catch_up_timeouts",
                                       "Global-table catch-ups that ran out of time (the batch "
                                       "was processed with what the tables held)", labels=["app"])
        timeouts.add_metric([app_id], globals_.catch_up_timeouts if globals_ is not None else 0)
        yield timeouts
        restored = CounterMetricFamily("streamkit_restored_records",
                                       "Changelog records applied while restoring tables", labels=["app"])
        restored.add_metric([app_id], runner.counters["restored"])
        yield restored
        progress = GaugeMetricFamily(
            "streamkit_restore_records", "Changelog records applied by the table's latest "
            "restore (here, since start)", labels=["app", "table"])
        of_total = GaugeMetricFamily(
            "streamkit_restore_total_records", "What the table's latest restore reads in all: "
            "the records applied and the changelog offsets still ahead", labels=["app", "table"])
        left = GaugeMetricFamily("streamkit_restore_partitions_left",
                                 "Partitions the table's restore is still reading",
                                 labels=["app", "table"])
        for table, figures in sorted(runner.restore_progress.tables.items()):
            progress.add_metric([app_id, table], figures.restored)
            of_total.add_metric([app_id, table], figures.total)
            left.add_metric([app_id, table], figures.partitions_left)
        yield from (progress, of_total, left)
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
        yield commit_summary(runner.commit_durations, app_id)
        queries = self.queries()
        fwd = CounterMetricFamily("streamkit_forwarded_queries", "Table reads forwarded to their owner",
                                  labels=["app"])
        fwd.add_metric([app_id], queries["forwarded"])
        yield fwd
        waiting = GaugeMetricFamily("streamkit_query_waits",
                                    "Key reads waiting for their entry to reach a state (wait_for)",
                                    labels=["app"])
        waiting.add_metric([app_id], queries["waiting"])
        yield waiting
        cache = runner.read_cache
        hits = CounterMetricFamily("streamkit_read_cache_hits",
                                   "Key reads of committed values answered by the read cache",
                                   labels=["app"])
        hits.add_metric([app_id], cache.hits)
        yield hits
        misses = CounterMetricFamily("streamkit_read_cache_misses",
                                     "Key reads of committed values read from RocksDB",
                                     labels=["app"])
        misses.add_metric([app_id], cache.misses)
        yield misses
        breaches = CounterMetricFamily("streamkit_http_limit_breaches", "Requests refused by a limit",
                                       labels=["app", "limit"])
        for limit, n in sorted(self.app.limit_breaches.items()):
            breaches.add_metric([app_id, limit], n)
        yield breaches

    def _batch_histogram(self, runner, app_id: str):
        samples, runner.batch_seconds = runner.batch_seconds, []
        for x in samples:
            self._batches.observe(x)
        h = HistogramMetricFamily("streamkit_batch_processing_seconds",
                                  "Time to push one fetched batch through the graph", labels=["app"])
        h.add_metric([app_id], self._batches.cumulative(), self._batches.sum)
        return h


def commit_summary(durations, app_id: str) -> SummaryMetricFamily:
    """streamkit_commit_seconds: every commit counted and summed, quantiles of the recent
    ones (processing/durations.py)."""
    m = SummaryMetricFamily("streamkit_commit_seconds", "Time of one commit of the processing "
                            "path (exactly-once: its tasks' transactions, committed together)",
                            labels=["app"])
    for q in QUANTILES:
        value = durations.quantile(q)
        if value is not None:
            m.samples.append(Sample(m.name, {"app": app_id, "quantile": str(q)}, value))
    m.add_metric([app_id], durations.count, durations.sum)
    return m


def registry_for(app: AppShell, queries: Callable[[], Mapping[str, int]]) -> CollectorRegistry:
    """A registry of this app's own (not the process-wide default); parts above the app
    (the gateway) register collectors of their own in it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessingCollector(app, queries))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
