"""The gateway's /ui in a real headless browser: one page draws every registered app's
topics and tables, and shows every worker's own figures (lag, records in, late records),
equal to what each worker's /metrics says while the system is quiet."""
from __future__ import annotations

import html
import re
from collections import defaultdict

from tests.integration.test_operability import call, metric
from tests.integration.test_ui import render

from .test_journey import eventually

ROW = re.compile(r'<tr data-metric="([^"]+)" data-labels="([^"]*)" data-value="([^"]+)" '
                 r'data-worker="([^"]*)"')


def test_gateway_ui_draws_every_app_and_shows_each_workers_own_figures(start_system, tmp_path):
    s = start_system(1)
    status, customer = s.call("POST", "/api/customer", {"name": "Bo", "email": "bo@example.org"})
    assert status == 201
    p = s.prefix
    apps = {f"{p}customer", f"{p}basket", f"{p}orders"}
    assert eventually(lambda: apps <= set(s.call("GET", "/apps")[1]["apps"]))
    # Quiet: the customer's event, and its re-grouping by level, processed.
    customer_worker = s.worker("customer0")

    def records_in(topic: str) -> float | None:
        return metric(call(customer_worker.url + "/metrics")[1].decode(),
                      "streamkit_records_in_total", topic=topic)

    assert eventually(lambda: records_in(f"{p}customer-events") == 1
                      and records_in(f"{p}customer-customers-by-level-repartition") == 1)
    dom = render(f"{s.gateway.url}/ui", tmp_path)
    names = {html.unescape(n) for n in re.findall(r'data-name="([^"]+)"', dom)}
    want = {f"{p}customer-events", "customers", "customers-per-level", f"{p}basket-events",
            "baskets", f"{p}orders", f"{p}order-commands", f"{p}payments", "orders",
            f"{p}order-emails"}
    assert want <= names, want - names
    drawn_apps = set(re.findall(r'<svg[^>]*data-app="([^"]+)"', dom))
    assert apps <= drawn_apps
    rows = defaultdict(list)
    for name, labels, value, worker in ROW.findall(dom):
        rows[worker].append((name, dict(re.findall(r'(\w+)="([^"]*)"', html.unescape(labels))),
                             float(value)))
    # One set of figures per worker of the three apps, none of the gateway's own.
    assert set(rows) == {w.url for w in s.workers}, (set(rows), dom[-3000:])
    for url, figures in rows.items():
        text = call(url + "/metrics")[1].decode()
        for name, labels, value in figures:
            assert metric(text, name, **labels) == value, (url, name, labels)
        shown = {name for name, _, _ in figures}
        assert {"streamkit_records_in_total", "streamkit_late_events_total"} <= shown, (url, shown)
    # The customer worker's own figures: its records in, and the lag of what it read.
    mine = rows[customer_worker.url]
    records = {labels["topic"]: value for name, labels, value in mine
               if name == "streamkit_records_in_total"}
    assert records == {f"{p}customer-events": 1, f"{p}customer-customers-by-level-repartition": 1}
    lags = [value for name, labels, value in mine if name == "streamkit_consumer_lag"
            and labels["topic"] == f"{p}customer-events"]
    assert lags == [0]  # one partition holds the one event, read to its end
