"""Interactive queries over HTTP with several real workers: routing, scatter-gather scans,
rebalances, waits and bad input."""
from __future__ import annotations

import json
import random
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest

from streamkit.testing.kafka import produce
from streamkit.worker_process import WorkerProcess

from tests.oracles import kafka_partition

from .conftest import ROOT, metric, metrics_text, worker_env
from .test_tables import wait_for

CATALOG = "tests.integration.apps.catalog"
N = 1000


def item(i: int) -> dict:
    return {"name": f"item-{i}", "price": i * 3 % 101}


def env_for(broker, app_id, tmp_path, name):
    return worker_env(broker, tmp_path / f"data-{name}", CATALOG_APP_ID=app_id)


def start(workers, broker, app_id, tmp_path, name):
    w = workers(CATALOG, env_for(broker, app_id, tmp_path, name), name)
    w.wait_ready()
    return w


def fill(broker, app_id):
    produce(broker, f"{app_id}-items", [(f"i{i:04d}", item(i)) for i in range(N)])
    produce(broker, f"{app_id}-ranks", [(struct.pack(">q", r), {"rank": r}) for r in
                                        [-300, -2, 0, 5, 17, 1000, 2**40]])


def count(w, table: str) -> int | None:
    status, body = w.get(f"/tables/{table}/count")
    return body["count"] if status == 200 else None


def committed_value(w, key: str):
    """key's value in the items table as of the last commit: a scan reads committed state."""
    status, body = w.get(f"/tables/items?start={key}&limit=1")
    items = body["items"] if status == 200 else []
    return items[0]["value"] if items and items[0]["key"] == key else None


def processed_value(w, key: str):
    """key's value in the items table as processed (a read shows uncommitted updates too
    under at-least-once)."""
    status, body = w.get(f"/tables/items/keys/{key}")
    return body["value"] if status == 200 else None


def waits(w) -> float | None:
    return metric(metrics_text(w), "streamkit_query_waits")


def served_by(w, path: str) -> str:
    with urllib.request.urlopen(w.url + path, timeout=10) as resp:
        return resp.headers["X-Streamkit-Served-By"]


def all_served(w) -> bool:
    status, body = w.get(f"/tables/items/keys/i{N - 1:04d}")
    return status == 200


@pytest.fixture(scope="module")
def catalog_id():
    return f"t-catalog-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def three(broker, catalog_id, tmp_path_factory):
    """Three workers of one app, shared by the read-only tests of this module."""
    tmp = tmp_path_factory.mktemp("catalog")
    fill(broker, catalog_id)
    ws = []
    try:
        for name in ("a", "b", "c"):
            w = WorkerProcess(CATALOG, env_for(broker, catalog_id, tmp, name), tmp / f"{name}.log",
                              cwd=ROOT)
            ws.append(w.start())
            w.wait_ready()
        wait_for(lambda: all(w.tasks() for w in ws), timeout=60)
        wait_for(lambda: all_served(ws[0]), timeout=30)
        # Scans and counts read committed state: wait until both tables are committed whole.
        wait_for(lambda: count(ws[0], "items") == N and count(ws[0], "ranks") == 7, timeout=30)
        yield ws
    finally:
        for w in ws:
            w.kill()


def test_every_worker_serves_every_key_with_the_produced_value(three):
    for w in three:
        for i in range(N):
            status, body = w.get(f"/tables/items/keys/i{i:04d}")
            assert status == 200, (i, status, body)
            assert body["value"] == item(i)
        # The worker answered some keys itself and forwarded the others to their owners.
        served_by = set()
        for i in range(0, N, 10):
            with urllib.request.urlopen(f"{w.url}/tables/items/keys/i{i:04d}") as resp:
                served_by.add(resp.headers["X-Streamkit-Served-By"])
        assert served_by == {x.url for x in three}
    meta = three[0].get("/metadata")[1]
    owners = set(meta["tables"]["items"]["active"].values())
    assert owners == {w.url for w in three}
    assert three[1].get("/tables/items/count")[1]["count"] == N


def test_scan_from_any_worker_returns_every_key_once_in_order_across_pages(three):
    want = [f"i{i:04d}" for i in range(N)]
    for w in three:
        got, cursor = [], None
        while True:
            path = "/tables/items?limit=137" + (f"&cursor={cursor}" if cursor else "")
            status, body = w.get(path)
            assert status == 200, body
            got += [it["key"] for it in body["items"]]
            assert all(it["value"] == item(int(it["key"][1:])) for it in body["items"])
            cursor = body["next"]
            if cursor is None:
                break
        assert got == want
    status, body = three[2].get("/tables/items?prefix=i00&limit=1000")
    assert [it["key"] for it in body["items"]] == want[:100]
    status, body = three[0].get("/tables/items?start=i0990&end=i0995")
    assert [it["key"] for it in body["items"]] == want[990:995]
    # Integer keys come back in numeric order, negatives first.
    status, body = three[1].get("/tables/ranks")
    assert [it["key"] for it in body["items"]] == [-300, -2, 0, 5, 17, 1000, 2**40]
    assert three[1].get("/tables/ranks/keys/-2")[1]["value"] == {"rank": -2}


def test_tables_lists_exposed_tables_only(three):
    status, body = three[0].get("/tables")
    assert status == 200
    assert {t["name"]: (t["keys"], t["partitions"]) for t in body["tables"]} == {
        "items": ("str", 4), "ranks": ("int", 4)}
    assert three[0].get("/tables/secret/keys/x")[0] == 404


def test_bad_requests_get_json_errors(three):
    w = three[0]
    status, body = w.get("/tables/nope/keys/x")
    assert (status, body["error"]["code"]) == (404, "unknown_table")
    status, body = w.get("/tables/ranks/keys/abc")
    assert (status, body["error"]["code"]) == (400, "bad_request")
    status, body = w.get("/tables/items/keys/absent")
    assert (status, body["error"]["code"]) == (404, "unknown_key")
    status, body = w.get("/tables/items?limit=0")
    assert status == 400 and "limit" in body["error"]["message"]
    status, body = w.get("/tables/items?cursor=%%%")
    assert status == 400
    status, body = w.get("/tables/items?prefix=" + "x" * 20000)
    assert (status, body["error"]["code"]) == (414, "uri_too_long")
    status, body = w.get("/no/such/route")
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = w.get("/tables/items?limit=1001")  # STREAMKIT_SCAN_MAX_LIMIT is 1000
    assert (status, body["error"]["code"]) == (400, "bad_request") and "limit" in body["error"]["message"]


def test_a_forwarded_read_that_reaches_a_worker_without_the_key_is_503_with_retry_after(three):
    # A request already forwarded once is not forwarded again (the assignment changed).
    owner = served_by(three[0], "/tables/items/keys/i0007")
    other = next(w for w in three if w.url != owner)
    req = urllib.request.Request(f"{other.url}/tables/items/keys/i0007",
                                 headers={"X-Streamkit-Forwarded": "1"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    body = json.loads(err.value.read())
    assert (err.value.code, body["error"]["code"]) == (503, "unavailable")
    assert err.value.headers["Retry-After"] == "1"
    assert body["error"]["owner"] == owner


def test_wait_for_answers_when_the_entry_reaches_the_state_and_times_out_otherwise(
        broker, catalog_id, three):
    # Runs after the read-only tests above: it adds a key to the shared table.
    produce(broker, f"{catalog_id}-items", [("order-1", {"state": "CREATED"})])
    result = {}
    # The key is owned by one worker: the wait is parked there, whichever worker it was sent
    # to. It is sent to another one, which forwards it with its query string.
    wait_for(lambda: three[0].get("/tables/items/keys/order-1")[0] == 200)
    owner_url = served_by(three[0], "/tables/items/keys/order-1")
    owner = next(w for w in three if w.url == owner_url)
    asked = next(w for w in three if w is not owner)

    def waiter():
        result["resp"] = asked.get(
            "/tables/items/keys/order-1?wait_for=state:VALIDATED,FAILED&timeout_ms=20000", timeout=30)

    # CREATED committed first: a wait judges the committed value as it registers, so once
    # the owner counts it as waiting it has seen CREATED and not taken it.
    wait_for(lambda: committed_value(owner, "order-1") == {"state": "CREATED"})
    t = threading.Thread(target=waiter)
    t.start()
    wait_for(lambda: waits(owner) == 1 or "resp" in result)
    assert "resp" not in result, result  # still parked: CREATED is not a wanted state
    produce(broker, f"{catalog_id}-items", [("order-1", {"state": "VALIDATED", "n": 1})])
    t.join(30)
    status, body = result["resp"]
    assert status == 200 and body["value"] == {"state": "VALIDATED", "n": 1}
    status, body = three[0].get("/tables/items/keys/order-1?wait_for=state:PAID&timeout_ms=300")
    assert (status, body["error"]["code"]) == (504, "timeout")


def test_while_a_request_waits_only_updates_that_could_answer_it_are_committed_at_once(
        broker, app_id, workers, tmp_path):
    """A wait makes the worker commit promptly what could answer it: an update that meets
    the condition is committed at once, one that does not (the order's state before the
    one awaited) waits for the next commit, here the commit interval's, ten minutes away."""
    w = workers(CATALOG, worker_env(broker, tmp_path / "data", CATALOG_APP_ID=app_id,
                                    STREAMKIT_COMMIT_INTERVAL_MS="600000"), "w")
    w.wait_ready()
    produce(broker, f"{app_id}-items", [("order-1", {"state": "CREATED"})])
    # At-least-once reads show processed state, committed or not.
    wait_for(lambda: processed_value(w, "order-1") == {"state": "CREATED"})
    result = {}

    def waiter():
        result["resp"] = w.get(
            "/tables/items/keys/order-1?wait_for=state:VALIDATED&timeout_ms=30000", timeout=40)

    t = threading.Thread(target=waiter)
    t.start()
    # A wait that arrives while processed state is not durable makes it durable at once.
    wait_for(lambda: waits(w) == 1 and committed_value(w, "order-1") == {"state": "CREATED"})

    def commits() -> float:
        return metric(metrics_text(w), "streamkit_commit_seconds_count")

    before = commits()
    produce(broker, f"{app_id}-items", [("order-1", {"state": "PENDING"})])
    wait_for(lambda: processed_value(w, "order-1") == {"state": "PENDING"})
    produce(broker, f"{app_id}-items", [("order-1", {"state": "VALIDATED"})])
    t.join(40)
    status, body = result["resp"]
    assert status == 200 and body["value"] == {"state": "VALIDATED"}
    # One commit took both updates: PENDING's, processed first in a fetch of its own,
    # waited for the one that answered.
    assert commits() - before == 1
    assert committed_value(w, "order-1") == {"state": "VALIDATED"}


def test_an_owner_that_does_not_answer_gives_503_naming_it_with_retry_after(three):
    # The last test of the shared workers: it kills one. Until the group notices (its
    # session timeout), the others still name it as the owner of its partitions.
    victim = three[2]
    key = next(f"i{i:04d}" for i in range(N)
               if served_by(three[0], f"/tables/items/keys/i{i:04d}") == victim.url)
    victim.kill()
    for path in (f"/tables/items/keys/{key}", "/tables/items?limit=5", "/tables/items/count"):
        req = urllib.request.Request(three[0].url + path)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        body = json.loads(err.value.read())
        assert (err.value.code, body["error"]["code"]) == (503, "unavailable"), (path, body)
        assert err.value.headers["Retry-After"] == "1", path
        assert body["error"]["owner"] == victim.url and victim.url in body["error"]["message"]


def test_rebalance_gives_only_right_values_or_503(broker, app_id, workers, tmp_path):
    fill(broker, app_id)
    a = start(workers, broker, app_id, tmp_path, "a")
    b = start(workers, broker, app_id, tmp_path, "b")
    wait_for(lambda: all_served(a) and all_served(b), timeout=30)
    log: list[tuple[float, int, bool]] = []
    stop = threading.Event()

    def reader():
        rng = random.Random(7)
        while not stop.is_set():
            i = rng.randrange(N)
            status, body = a.get(f"/tables/items/keys/i{i:04d}", timeout=5)
            log.append((time.monotonic(), status, status == 200 and body["value"] == item(i)))

    t = threading.Thread(target=reader)
    t.start()
    try:
        t_join = time.monotonic()
        c = start(workers, broker, app_id, tmp_path, "c")       # a worker added
        wait_for(lambda: all(w.get("/ready")[0] == 200 for w in (a, c)), timeout=60)
        t_kill = time.monotonic()
        b.kill()                                                # a worker killed
        # 3 tables of 4 partitions: 12 tasks, all on a and c once b's session expired.
        wait_for(lambda: len(a.tasks()) + len(c.tasks()) == 12, timeout=60)
        t_done = time.monotonic()
        # Reads go on after the rebalance: wait for enough of them to judge.
        wait_for(lambda: sum(1 for ts, s, _ in list(log) if ts >= t_done and s == 200) >= 50,
                 timeout=30, every=0.05)
    finally:
        stop.set()
        t.join()
    assert {s for _, s, _ in log} <= {200, 503}, {s for _, s, _ in log}
    assert all(ok for _, s, ok in log if s == 200), "a 200 carried a wrong value"
    during = [s for ts, s, _ in log if t_join <= ts < t_done]
    after = [s for ts, s, _ in log if ts >= t_done]
    assert 200 in during and 200 in after
    assert any(t_kill <= ts < t_done for ts, _, _ in log)


def test_read_cache_size_is_the_setting_and_its_hits_and_misses_are_in_metrics(
        broker, app_id, workers, tmp_path):
    fill(broker, app_id)
    w = workers(CATALOG, {**env_for(broker, app_id, tmp_path, "solo"),
                          "STREAMKIT_READ_CACHE_ENTRIES": "2"}, "solo")
    w.wait_ready()
    # Every item committed: the reads below look in the cache, not at uncommitted updates.
    wait_for(lambda: count(w, "items") == N, timeout=60)
    keys = [f"i{i:04d}" for i in range(N)]
    a, b, c = [k for k in keys if kafka_partition(k.encode(), 4) == kafka_partition(b"i0000", 4)][:3]

    def figures() -> tuple[float | None, float | None]:
        text = metrics_text(w)
        return (metric(text, "streamkit_read_cache_hits_total", app=app_id),
                metric(text, "streamkit_read_cache_misses_total", app=app_id))

    hits, misses = figures()
    # One partition's cache of two: a and b are read in, a is found, c pushes out the
    # oldest (a), so a is read from RocksDB again.
    for key in (a, b, a, c, a):
        status, body = w.get(f"/tables/items/keys/{key}")
        assert status == 200 and body["value"] == item(int(key[1:]))
    assert figures() == (hits + 1, misses + 4)
