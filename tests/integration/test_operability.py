"""Metrics, the topology view, bearer-token authentication and HTTP limits on a real worker."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

from streamkit.testing.kafka import produce

from .conftest import COUNTER, metric
from .test_tables import events, expected, wait_for

TOKEN = "s3cret-token"


def call(url: str, token: str | None = None, headers: dict | None = None) -> tuple[int, bytes, dict]:
    req = urllib.request.Request(url, headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                                               **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def test_token_guards_every_route_but_health_and_ready_and_metrics_match_the_work_done(
        broker, app_id, workers, counter_env):
    topic = f"{app_id}-events"
    produce(broker, topic, events(300))
    produce(broker, topic, [("k1", b"not json")])
    w = workers(COUNTER, counter_env(STREAMKIT_API_TOKEN=TOKEN))
    w.wait_ready()  # /ready needs no token
    assert call(w.url + "/health")[0] == 200

    status, body, headers = call(w.url + "/tables/totals/keys/k0")
    assert status == 401 and json.loads(body) == {
        "error": {"code": "unauthorized", "message": "missing or wrong token"}}
    assert headers["WWW-Authenticate"] == "Bearer"
    assert call(w.url + "/tables/totals/keys/k0", token="wrong")[0] == 401
    assert call(w.url + "/metrics")[0] == 401

    want = expected(300)

    def settled():
        status, body, _ = call(w.url + "/tables/totals/keys/k0", token=TOKEN)
        return status == 200 and json.loads(body)["value"] == want["k0"]

    wait_for(settled)
    wait_for(lambda: metric(call(w.url + "/metrics", token=TOKEN)[1].decode(),
                            "streamkit_records_in_total", topic=topic) == 301)
    # A record counts as out once the commit that sends it is acknowledged, which may come
    # up to a commit interval after it was processed.
    wait_for(lambda: metric(call(w.url + "/metrics", token=TOKEN)[1].decode(),
                            "streamkit_records_out_total", topic=f"{app_id}-dead-letters") == 1)
    text = call(w.url + "/metrics", token=TOKEN)[1].decode()
    assert metric(text, "streamkit_dead_letters_total", topic=topic) == 1
    assert metric(text, "streamkit_records_out_total", topic=f"{app_id}-dead-letters") == 1
    assert metric(text, "streamkit_ready", app=app_id) == 1
    assert metric(text, "streamkit_commit_failures_total", app=app_id) == 0
    lags = [metric(text, "streamkit_consumer_lag", topic=topic, partition=str(p)) for p in range(4)]
    assert all(lag == 0 for lag in lags if lag is not None) and any(lag is not None for lag in lags)
    assert metric(text, "streamkit_http_limit_breaches_total", limit="auth") == 3

    status, body, _ = call(w.url + "/topology", token=TOKEN)
    topo = json.loads(body)
    assert topo["app"] == app_id
    [sub] = topo["sub_topologies"]
    assert sub["sources"] == [topic] and sub["tables"] == ["totals"]
    assert f"{app_id}-totals-changelog" in topo["internal_topics"]

    status, body, _ = call(w.url + "/tables", token=TOKEN, headers={"X-Big": "y" * 20000})
    assert status == 431 and json.loads(body)["error"]["code"] == "headers_too_large"
