"""The example services under crashes and races: a worker SIGKILLed between its reply and
its commit, a restart with a lost disk, a customer used the moment it was registered, and
many customers created through one gateway, and a worker frozen while a request waits on
it."""
from __future__ import annotations

import concurrent.futures
import os
import signal
import time

from streamkit.testing.kafka import produce
from tests.integration.conftest import metric, metrics_text

from .conftest import eventually

GOLD = {"name": "Ada", "email": "ada@example.org", "level": "gold"}
# No commit of request offsets unless a rebalance forces one: a SIGKILL then always falls
# between a request's reply and its commit, and the request is delivered again.
NEVER_COMMIT = {"STREAMKIT_COMMIT_INTERVAL_MS": "600000"}


def in_parallel(fn, args, threads=16):
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        return list(pool.map(fn, args))


def orders_of(s, customer: str) -> list[dict]:
    status, page = s.call("GET", f"/apps/{s.prefix}orders/tables/orders?limit=1000")
    assert status == 200, page
    return [item["value"] for item in page["items"] if item["value"]["customer_id"] == customer]


def test_customers_created_through_one_gateway_each_get_an_id_of_their_own(start_system):
    s = start_system()
    answers = in_parallel(lambda i: s.call("POST", "/api/customer",
                                           {"name": f"c{i}", "email": f"c{i}@example.org"}),
                          range(100))
    assert all(status == 201 for status, _ in answers), answers
    ids = [body["id"] for _, body in answers]
    assert len(set(ids)) == 100
    count = f"/apps/{s.prefix}customer/tables/customers/count"
    assert eventually(lambda: s.call("GET", count)[1].get("count") == 100), s.call("GET", count)
    for i, cid in enumerate(ids[:10]):
        assert s.call("GET", f"/api/customer/{cid}")[1]["name"] == f"c{i}"
    # A retry with the client's Idempotency-Key gets the same answer, and the same id.
    first = s.call("POST", "/api/customer", GOLD, headers={"Idempotency-Key": "reg-1"})
    again = s.call("POST", "/api/customer", GOLD, headers={"Idempotency-Key": "reg-1"})
    assert first[0] == again[0] == 201 and first[1] == again[1]
    assert eventually(lambda: s.call("GET", count)[1].get("count") == 101)


def test_an_order_placed_right_after_its_customer_registered_is_validated(start_system):
    # The orders worker's global customers table tails its topic lazily on purpose (a fetch
    # waits up to 3 s for 1 MB): only a lookup that catches up finds a new customer.
    s = start_system(service_env={"orders": {"STREAMKIT_GLOBAL_FETCH_MAX_WAIT_MS": "3000",
                                             "STREAMKIT_GLOBAL_FETCH_MIN_BYTES": "1000000"}})

    def register_then_order(i: int) -> tuple[str, dict]:
        status, customer = s.call("POST", "/api/customer", {"name": f"n{i}",
                                                            "email": f"n{i}@example.org"})
        assert status == 201, customer
        status, done = s.call("POST", "/api/orders?wait_for=state:VALIDATED,FAILED",
                              {"customer_id": customer["id"],
                               "items": [{"sku": "tea", "qty": 1, "price": 4}]})
        assert status == 200, done
        return customer["id"], done["value"]

    results = in_parallel(register_then_order, range(200), threads=20)
    failed = [(cid, order.get("reason")) for cid, order in results if order["state"] != "VALIDATED"]
    assert failed == []
    assert all(order["customer_id"] == cid for cid, order in results)


def test_a_checkout_redelivered_after_a_crash_and_retried_makes_one_order(start_system):
    s = start_system(service_env={"basket": NEVER_COMMIT})
    _, customer = s.call("POST", "/api/customer", GOLD)
    cid = customer["id"]
    assert s.call("POST", f"/api/basket/{cid}/items", {"sku": "tea", "qty": 2, "price": 4})[0] == 202
    # Read through the table view, so that the basket service sees only these requests.
    basket_view = f"/apps/{s.prefix}basket/tables/baskets/keys/{cid}"
    assert eventually(lambda: s.call("GET", basket_view)[0] == 200)
    status, first = s.call("POST", f"/api/basket/{cid}/checkout",
                           headers={"Idempotency-Key": "checkout-1"})
    assert status == 202, first
    assert eventually(lambda: [o for o in orders_of(s, cid) if o["state"] == "VALIDATED"])

    # The basket worker dies before it commits, and comes back with an empty disk: both
    # requests are delivered again, and the client retries its checkout too.
    basket = s.restart("basket0", lost_disk=True)
    status, again = s.call("POST", f"/api/basket/{cid}/checkout",
                           headers={"Idempotency-Key": "checkout-1"})
    assert (status, again) == (202, first)
    stats = eventually(lambda: (lambda b: b if b["replayed"] >= 3 else None)(
        basket.get("/services/stats")[1]))
    # Every one was answered from the record of its first reply: no handler ran again.
    assert (stats["replayed"], stats["handled"]) == (3, 0), stats
    assert stats["replies_restored"] >= 2 * 3  # each reply and its index entry, per key
    orders = orders_of(s, cid)
    assert [o["id"] for o in orders] == [first["order_id"]]
    assert orders[0]["items"] == [{"sku": "tea", "qty": 2, "price": 4}]
    assert eventually(lambda: (lambda r: r[0] == 200 and r[1]["value"]["items"] == {})(
        s.call("GET", basket_view)))


def test_requests_that_meet_a_restoring_table_are_answered_once_it_is_restored(
        start_system, broker):
    s = start_system()
    # A customers table big enough that restoring it from its changelog takes a while.
    n = 200_000
    produce(broker, f"{s.prefix}customer-events",
            ((f"bulk-{i}", {"id": f"bulk-{i}", "name": "b", "email": "b@x.org", "level": "silver"})
             for i in range(n)))
    count = f"/apps/{s.prefix}customer/tables/customers/count"
    assert eventually(lambda: s.call("GET", count)[1].get("count") == n, timeout=120)
    customer = s.worker("customer0")
    customer.kill()

    # Reads sent while the service is down are handled while its table restores.
    def read(i: int):
        return s.call("GET", f"/api/customer/bulk-{i * 997}", timeout=60,
                      headers={"X-Timeout-Ms": "60000"})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        pending = [pool.submit(read, i) for i in range(20)]
        restarted = s.restart("customer0", lost_disk=True, wait=False)
        answers = [f.result() for f in pending]
    assert [status for status, _ in answers] == [200] * 20, answers
    assert [body["id"] for _, body in answers] == [f"bulk-{i * 997}" for i in range(20)]
    stats = restarted.get("/services/stats")[1]
    assert stats["errors"] == 0 and stats["unavailable_retries"] > 0, stats


def test_a_wait_on_a_frozen_worker_is_answered_by_the_worker_that_takes_its_partition(
        start_system, broker):
    """A checkout-style wait: the gateway asks the owner of the order's partition to wait
    for PAID, and then that owner is frozen (SIGSTOP: its connections stay open and nothing
    answers) until the test ends. The payment arrives; the other orders worker takes the
    partition, processes it, and the gateway, asking that worker in turn, answers within
    the request's deadline."""
    s = start_system(2)
    _, customer = s.call("POST", "/api/customer", GOLD)
    status, done = s.call("POST", "/api/orders?wait_for=state:VALIDATED,FAILED",
                          {"customer_id": customer["id"],
                           "items": [{"sku": "tea", "qty": 2, "price": 4}]})
    assert status == 200 and done["value"]["state"] == "VALIDATED", done
    order = done["value"]
    orders0 = s.worker("orders0")
    partition = orders0.get(f"/tables/orders/keys/{order['id']}")[1]["partition"]
    owner_url = orders0.get("/metadata")[1]["tables"]["orders"]["active"][str(partition)]
    owner = next(w for w in s.workers if w.url.rstrip("/") == owner_url.rstrip("/"))

    # A payment short of the total leaves the order VALIDATED: the request waits.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        answer = pool.submit(s.call, "POST",
                             f"/api/orders/{order['id']}/payments?wait_for=state:PAID",
                             {"amount": 1}, timeout=45, headers={"X-Timeout-Ms": "30000"})
        assert eventually(lambda: metric(metrics_text(owner), "streamkit_query_waits") == 1), \
            metrics_text(owner)
        os.kill(owner.pid, signal.SIGSTOP)
        try:
            paid_ms = int(time.time() * 1000)
            produce(broker, f"{s.prefix}payments", [(order["id"], {
                "order_id": order["id"], "amount": order["total"], "ts_ms": paid_ms})])
            status, paid = answer.result()
        finally:
            os.kill(owner.pid, signal.SIGCONT)
    assert status == 200, paid
    assert paid["value"] == {**order, "state": "PAID", "paid_ms": paid_ms,
                             "payment": order["total"]}
