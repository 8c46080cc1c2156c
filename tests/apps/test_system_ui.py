"""The gateway's /ui in a real headless browser: one page draws every registered app's
topics and tables, and its figures match the gateway's /metrics."""
from __future__ import annotations

import html
import re

from tests.integration.test_operability import call, metric
from tests.integration.test_ui import render

from .test_journey import eventually


def test_gateway_ui_draws_every_app_of_the_deployment(start_system, tmp_path):
    s = start_system(1)
    status, customer = s.call("POST", "/api/customer", {"name": "Bo", "email": "bo@example.org"})
    assert status == 201
    p = s.prefix
    apps = {f"{p}customer", f"{p}basket", f"{p}orders"}
    assert eventually(lambda: apps <= set(s.call("GET", "/apps")[1]["apps"]))
    dom = render(f"{s.gateway.url}/ui", tmp_path)
    names = {html.unescape(n) for n in re.findall(r'data-name="([^"]+)"', dom)}
    want = {f"{p}customer-events", "customers", "customers-per-level", f"{p}basket-events",
            "baskets", f"{p}orders", f"{p}order-commands", f"{p}payments", "orders",
            f"{p}order-emails"}
    assert want <= names, want - names
    drawn_apps = set(re.findall(r'<svg[^>]*data-app="([^"]+)"', dom))
    assert apps <= drawn_apps
    rows = re.findall(r'<tr data-metric="([^"]+)" data-labels="([^"]*)" data-value="([^"]+)"', dom)
    assert rows
    text = call(s.gateway.url + "/metrics")[1].decode()
    for name, labels, value in rows:
        want_value = metric(text, name, **dict(re.findall(r'(\w+)="([^"]*)"', html.unescape(labels))))
        assert want_value == float(value), (name, labels)
