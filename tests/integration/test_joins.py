"""Joins on the real broker with two workers: stream-table, stream-global-table and
table-table, including updates and deletes on the table side."""
from __future__ import annotations

import urllib.request

import orjson

from streamkit.testing.kafka import produce, read_topic

from .conftest import metric, metrics_text, worker_env
from .test_tables import wait_for

JOINS = "tests.integration.apps.joins"
LEVELS = ["bronze", "silver", "gold"]


def env_for(broker, app_id, tmp_path, name):
    return worker_env(broker, tmp_path / f"data-{name}", JOINS_APP_ID=app_id)


def value(w, table, key):
    status, body = w.get(f"/tables/{table}/keys/{key}")
    return body["value"] if status == 200 else status


def test_stream_table_global_and_table_table_joins_across_two_workers(
        broker, app_id, workers, tmp_path):
    customers = {f"c{i}": {"name": f"name-{i}", "level": LEVELS[i % 3]} for i in range(10)}
    products = {f"p{i}": {"price": 10 * (i + 1)} for i in range(5)}
    produce(broker, f"{app_id}-customers", list(customers.items()))
    produce(broker, f"{app_id}-products", list(products.items()))
    a = workers(JOINS, env_for(broker, app_id, tmp_path, "a"), "a")
    a.wait_ready()
    b = workers(JOINS, env_for(broker, app_id, tmp_path, "b"), "b")
    b.wait_ready()
    wait_for(lambda: all(w.tasks() for w in (a, b)))

    # The global table is complete on each worker, and each answers from its own copy.
    for w in (a, b):
        for pid, p in products.items():
            with urllib.request.urlopen(f"{w.url}/tables/products/keys/{pid}") as resp:
                assert resp.headers["X-Streamkit-Served-By"] == w.url
        assert value(w, "products", "p3") == products["p3"]

    orders = [(f"c{i % 12}", {"order": f"o{i}", "product": f"p{i % 6}", "qty": i % 4 + 1})
              for i in range(120)]
    produce(broker, f"{app_id}-orders", orders)
    want = {}
    for cid, o in orders:
        if o["product"] not in products:
            continue  # inner join with the global table drops unknown products
        level = customers[cid]["level"] if cid in customers else None  # left join keeps them
        want[o["order"]] = {**o, "level": level, "price": products[o["product"]]["price"]}
    priced = wait_for(lambda: (lambda r: r if len(r) >= len(want) else None)(
        read_topic(broker, f"{app_id}-priced")))
    assert {r.key.decode() for r in priced} <= {f"c{i}" for i in range(12)}

    got = {orjson.loads(r.value)["order"]: orjson.loads(r.value) for r in priced}
    assert got == want and len(priced) == len(want)
    # Each batch of orders was looked up after a catch-up of the global tables, in time.
    texts = [metrics_text(w) for w in (a, b)]
    assert sum(metric(t, "streamkit_global_catch_ups_total") for t in texts) >= 1
    assert [metric(t, "streamkit_global_catch_up_timeouts_total") for t in texts] == [0, 0]

    spend = {}
    for cid, o in orders:
        if o["product"] in products:
            spend[cid] = spend.get(cid, 0) + o["qty"] * products[o["product"]]["price"]
    wait_for(lambda: all(value(a, "spend", c) == s for c, s in spend.items()))
    # Table-table left join: a profile per customer, with the spend once it exists.
    wait_for(lambda: all(value(b, "profiles", c) == {"name": customers[c]["name"], "spend": spend.get(c)}
                         for c in customers))
    assert value(a, "profiles", "c10") == 404  # spend without a customer: no left-side row

    # A change on either side updates the join; a deleted customer removes the profile.
    produce(broker, f"{app_id}-customers", [("c1", {"name": "renamed", "level": "gold"}),
                                            ("c2", None)])
    wait_for(lambda: value(a, "profiles", "c1") == {"name": "renamed", "spend": spend["c1"]})
    wait_for(lambda: value(b, "profiles", "c2") == 404)
    produce(broker, f"{app_id}-products", [("p9", {"price": 1})])
    wait_for(lambda: value(a, "products", "p9") == {"price": 1} and value(b, "products", "p9") == {"price": 1})


def test_foreign_key_join_follows_changes_on_both_sides_and_retracts_old_matches(
        broker, app_id, workers, tmp_path):
    produce(broker, f"{app_id}-customers", [("c1", {"name": "Ada", "level": "gold"}),
                                            ("c2", {"name": "Bo", "level": "bronze"})])
    a = workers(JOINS, env_for(broker, app_id, tmp_path, "a"), "a")
    a.wait_ready()
    b = workers(JOINS, env_for(broker, app_id, tmp_path, "b"), "b")
    b.wait_ready()
    orders = {f"o{i}": {"customer": ["c1", "c2", "c9"][i % 3], "amount": i} for i in range(30)}
    produce(broker, f"{app_id}-order-table", list(orders.items()))
    names = {"c1": "Ada", "c2": "Bo"}

    def want(inner: bool):
        return {o: {"amount": v["amount"], "name": names.get(v["customer"])} for o, v in orders.items()
                if not inner or v["customer"] in names}

    def matches(table, expected, w):
        return all(value(w, table, o) == expected.get(o, 404) for o in orders)

    wait_for(lambda: matches("named-orders", want(True), a), timeout=45)
    wait_for(lambda: matches("named-orders-left", want(False), b), timeout=45)

    # The right side changes: every order of c1 shows the new name.
    names["c1"] = "Ada L."
    produce(broker, f"{app_id}-customers", [("c1", {"name": "Ada L.", "level": "gold"})])
    wait_for(lambda: matches("named-orders", want(True), b))
    # The foreign key changes: o0 moves from c1 to c2; an update of c1 no longer reaches it.
    orders["o0"] = {"customer": "c2", "amount": 0}
    orders["o2"] = {"customer": "c1", "amount": 2}  # from the unknown c9 to c1
    produce(broker, f"{app_id}-order-table", [("o0", orders["o0"]), ("o2", orders["o2"])])
    wait_for(lambda: matches("named-orders", want(True), a) and matches("named-orders-left", want(False), a))
    names["c1"] = "Ada M."
    produce(broker, f"{app_id}-customers", [("c1", {"name": "Ada M.", "level": "gold"})])
    wait_for(lambda: matches("named-orders", want(True), a))
    assert value(a, "named-orders", "o0") == {"amount": 0, "name": "Bo"}
    # A deleted order leaves the join.
    del orders["o3"]
    produce(broker, f"{app_id}-order-table", [("o3", None)])
    wait_for(lambda: value(b, "named-orders", "o3") == 404 and value(b, "named-orders-left", "o3") == 404)
