"""The /ui page in a real headless browser (Debian's chromium): the drawn graph names the
app's topics and tables, and the live figures match /metrics."""
from __future__ import annotations

import html
import re
import shutil
import subprocess

from streamkit.testing.kafka import produce

from .conftest import COUNTER
from .test_operability import TOKEN, call, metric
from .test_tables import events, wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def render(url: str, tmp_path) -> str:
    """The page's DOM after its scripts ran (virtual time lets the fetches finish)."""
    assert CHROMIUM, "chromium is missing: `make test` installs Debian's chromium package"
    out = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
         "--virtual-time-budget=5000", "--dump-dom", url],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_ui_draws_topics_and_tables_and_shows_the_figures_of_metrics(
        broker, app_id, workers, counter_env, tmp_path):
    topic = f"{app_id}-events"
    produce(broker, topic, events(200))
    produce(broker, topic, [("k3", b"{broken")])
    w = workers(COUNTER, counter_env(STREAMKIT_API_TOKEN=TOKEN))
    w.wait_ready()
    wait_for(lambda: metric(call(w.url + "/metrics", token=TOKEN)[1].decode(),
                            "streamkit_records_in_total", topic=topic) == 201)
    dom = render(f"{w.url}/ui?token={TOKEN}", tmp_path)
    names = {html.unescape(n) for n in re.findall(r'data-name="([^"]+)"', dom)}
    assert {topic, "totals"} <= names
    rows = [(m, html.unescape(lab), float(v)) for m, lab, v in re.findall(
        r'<tr data-metric="([^"]+)" data-labels="([^"]*)" data-value="([^"]+)"', dom)]
    assert rows, dom[-3000:]
    text = call(w.url + "/metrics", token=TOKEN)[1].decode()
    for name, labels, value in rows:
        want = metric(text, name, **dict(re.findall(r'(\w+)="([^"]*)"', labels)))
        assert want == value, (name, labels, value, want)
    shown = {(m, lab) for m, lab, _ in rows}
    assert any(m == "streamkit_dead_letters_total" and topic in lab for m, lab in shown)
    assert any(m == "streamkit_consumer_lag" for m, _ in shown)
    # Without the token the page is refused.
    assert call(w.url + "/ui")[0] == 401
