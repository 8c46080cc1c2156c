"""A user's journey through the gateway: register, fill a basket, check out, pay, and read
the views; once with one worker per service and once with two."""
from __future__ import annotations

import asyncio
import concurrent.futures
import time

import orjson
import pytest

from streamkit.testing.kafka import ensure_topic, produce, read_topic
from tests.oracles import kafka_partition

from .conftest import eventually


@pytest.mark.parametrize("per_service", [1, 2])
def test_register_fill_basket_checkout_pay_and_query(start_system, broker, per_service):
    s = start_system(per_service)
    status, customer = s.call("POST", "/api/customer", {"name": "Ada", "email": "ada@example.org",
                                                        "level": "gold"})
    assert status == 201 and customer["level"] == "gold"
    cid = customer["id"]
    assert s.call("GET", f"/api/customer/{cid}") == (200, customer) or eventually(
        lambda: s.call("GET", f"/api/customer/{cid}") == (200, customer))

    assert s.call("POST", f"/api/basket/{cid}/items", {"sku": "tea", "qty": 2, "price": 4.5})[0] == 202
    assert s.call("POST", f"/api/basket/{cid}/items", {"sku": "cup", "qty": 1, "price": 11})[0] == 202
    assert s.call("POST", f"/api/basket/{cid}/items", {"sku": "tea", "qty": -1, "price": 4.5})[0] == 400
    basket = eventually(lambda: (lambda r: r[1] if r[0] == 200 and len(r[1]["items"]) == 2 else None)(
        s.call("GET", f"/api/basket/{cid}")))
    assert basket["items"]["tea"] == {"sku": "tea", "qty": 2, "price": 4.5}
    # An item taken out; taking out one that is not there changes nothing.
    assert s.call("DELETE", f"/api/basket/{cid}/items/cup") == (
        202, {"op": "remove", "customer_id": cid, "sku": "cup"})
    assert s.call("DELETE", f"/api/basket/{cid}/items/none")[0] == 202
    tea_only = {"tea": {"sku": "tea", "qty": 2, "price": 4.5}}
    assert eventually(lambda: s.call("GET", f"/api/basket/{cid}")[1]["items"] == tea_only), \
        s.call("GET", f"/api/basket/{cid}")

    # Checkout answers once the new order is validated (the event-driven variant).
    status, done = s.call("POST", f"/api/basket/{cid}/checkout?wait_for=state:VALIDATED,FAILED")
    assert status == 200, done
    order = done["value"]
    assert order["state"] == "VALIDATED" and order["customer_id"] == cid
    assert order["items"] == [tea_only["tea"]]
    assert order["total"] == round(2 * 4.5 * 0.9, 2)  # gold: 10% off
    oid = order["id"]
    assert eventually(lambda: s.call("GET", f"/api/basket/{cid}")[1]["items"] == {})

    status, paid = s.call("POST", f"/api/orders/{oid}/payments?wait_for=state:PAID",
                          {"amount": order["total"]})
    assert status == 200 and paid["value"]["state"] == "PAID"
    assert s.call("GET", f"/api/orders/{oid}")[1]["state"] == "PAID"

    # The views, through the gateway's query routes.
    status, view = s.call("GET", f"/apps/{s.prefix}orders/tables/orders/keys/{oid}")
    assert status == 200 and view["value"]["state"] == "PAID"
    status, levels = s.call("GET", f"/apps/{s.prefix}customer/tables/customers-per-level/keys/gold")
    assert status == 200 and levels["value"] == 1

    # An order for an unknown customer fails validation.
    status, failed = s.call("POST", "/api/orders?wait_for=state:VALIDATED,FAILED",
                            {"customer_id": "nobody", "items": [{"sku": "x", "qty": 1, "price": 1}]})
    assert status == 200 and failed["value"]["state"] == "FAILED"
    assert "unknown customer" in failed["value"]["reason"]
    assert s.call("GET", "/api/orders/o-none")[0] == 404

    # A payment whose event time is past the join window and its grace is late: it goes to
    # the late-events topic and the order stays VALIDATED.
    status, second = s.call("POST", "/api/orders?wait_for=state:VALIDATED,FAILED",
                            {"customer_id": cid, "items": [{"sku": "tea", "qty": 1, "price": 10}]})
    second = second["value"]
    now = int(time.time() * 1000)
    produce(broker, f"{s.prefix}payments", [
        (second["id"], {"order_id": second["id"], "amount": 1, "ts_ms": now}),
        (second["id"], {"order_id": second["id"], "amount": 100, "ts_ms": now - 10 * 60 * 1000})])
    late = eventually(lambda: [r for r in read_topic(broker, f"{s.prefix}orders-late-events")
                               if r.key == second["id"].encode()] or None)
    assert orjson.loads(late[0].value)["amount"] == 100
    assert s.call("GET", f"/api/orders/{second['id']}")[1]["state"] == "VALIDATED"

    # The orders plugin (not part of the orders app) wrote the customer's emails.
    emails = eventually(lambda: [r for r in read_topic(broker, f"{s.prefix}order-emails")
                                 if r.key == oid.encode()] or None)
    states = sorted(orjson.loads(r.value)["state"] for r in emails)
    assert states == ["PAID", "VALIDATED"]

    customer_updates(s, customer)
    order_rules(s, cid)
    payment_after_a_later_order(s, broker, cid)
    states_only_move_forward(s, broker)


def customer_updates(s, customer: dict) -> None:
    """PUT changes the fields it names, and the customer leaves the old level's count."""
    cid = customer["id"]
    silver = {**customer, "level": "silver"}
    assert s.call("PUT", f"/api/customer/{cid}", {"level": "silver"}) == (200, silver)
    assert eventually(lambda: s.call("GET", f"/api/customer/{cid}") == (200, silver))
    assert s.call("PUT", f"/api/customer/{cid}", {"level": "platinum"})[1]["error"]["code"] \
        == "bad_customer"
    assert s.call("PUT", "/api/customer/c-nobody", {"level": "gold"})[0] == 404
    levels = f"/apps/{s.prefix}customer/tables/customers-per-level/keys"

    def count(level: str) -> int:
        status, body = s.call("GET", f"{levels}/{level}")
        return body["value"] if status == 200 else 0

    assert eventually(lambda: (count("gold"), count("silver")) == (0, 1)), \
        (count("gold"), count("silver"))
    assert s.call("GET", f"/api/customer/{cid}")[1] == silver


def order_rules(s, cid: str) -> None:
    """Quantities 1..100 (whole numbers), positive prices, at least one item; the total after
    the level's discount (cid is silver now: 5%; a new customer is bronze: none)."""
    status, bronze = s.call("POST", "/api/customer", {"name": "Bo", "email": "bo@example.org"})
    assert status == 201 and bronze["level"] == "bronze"
    qty_error, price_error = "quantity must be 1..100", "prices must be positive"
    cases = [  # (customer, items, state, total or reason)
        (cid, [{"sku": "a", "qty": 100, "price": 2}], "VALIDATED", 190.0),
        (cid, [{"sku": "a", "qty": 2, "price": 5}, {"sku": "b", "qty": 3, "price": 10}],
         "VALIDATED", 38.0),
        (bronze["id"], [{"sku": "a", "qty": 3, "price": 2.5}], "VALIDATED", 7.5),
        (cid, [{"sku": "a", "qty": 0, "price": 2}], "FAILED", qty_error),
        (cid, [{"sku": "a", "qty": 101, "price": 2}], "FAILED", qty_error),
        (cid, [{"sku": "a", "qty": 1.5, "price": 2}], "FAILED", qty_error),
        (cid, [{"sku": "a", "qty": 1, "price": 2}, {"sku": "b", "qty": 1, "price": 0}],
         "FAILED", price_error),
        (cid, [{"sku": "a", "qty": 1, "price": -4}], "FAILED", price_error),
        (cid, [], "FAILED", "an order needs at least one item"),
    ]

    def place(case):
        customer, items = case[0], case[1]
        return s.call("POST", "/api/orders?wait_for=state:VALIDATED,FAILED",
                      {"customer_id": customer, "items": items})

    with concurrent.futures.ThreadPoolExecutor(len(cases)) as pool:
        answers = list(pool.map(place, cases))
    for (customer, items, state, expect), (status, body) in zip(cases, answers):
        assert status == 200, (items, body)
        order = body["value"]
        assert (order["customer_id"], order["items"], order["state"]) == (customer, items, state)
        assert order["total" if state == "VALIDATED" else "reason"] == expect, order


def payment_after_a_later_order(s, broker: str, cid: str) -> None:
    """A payment within its order's window is judged against the stream time of payments:
    an order validated later (its event time 45 s past the payment's) does not make it late."""
    now = int(time.time() * 1000)
    first = {"id": "o-first", "customer_id": cid, "items": [{"sku": "x", "qty": 1, "price": 10}],
             "state": "VALIDATED", "total": 10.0}
    partitions = asyncio.run(ensure_topic(broker, f"{s.prefix}orders"))
    later_id = next(f"o-later-{i}" for i in range(1000) if kafka_partition(
        f"o-later-{i}".encode(), partitions) == kafka_partition(b"o-first", partitions))
    produce(broker, f"{s.prefix}orders", [
        ("o-first", first, now - 25_000),
        (later_id, {**first, "id": later_id}, now + 25_000)])
    assert eventually(lambda: s.call("GET", f"/api/orders/{later_id}")[0] == 200)
    produce(broker, f"{s.prefix}payments",
            [("o-first", {"order_id": "o-first", "amount": 10, "ts_ms": now - 20_000})])
    paid = eventually(lambda: (lambda r: r[1] if r[1].get("state") == "PAID" else None)(
        s.call("GET", "/api/orders/o-first")))
    assert paid == {**first, "state": "PAID", "paid_ms": now - 20_000, "payment": 10}
    late = read_topic(broker, f"{s.prefix}orders-late-events")
    assert not [r for r in late if r.key == b"o-first"]


# An order's states, in the order they may follow one another.
STAGE = {"CREATED": 0, "VALIDATED": 1, "FAILED": 1, "PAID": 2}


def states_only_move_forward(s, broker: str) -> None:
    """In the orders topic no order goes back to an earlier state (a CREATED after its
    VALIDATED would leave the orders table at CREATED, and a waiting checkout unanswered)."""
    by_order: dict[bytes, list[str]] = {}
    for r in sorted(read_topic(broker, f"{s.prefix}orders"), key=lambda r: (r.partition, r.offset)):
        by_order.setdefault(r.key, []).append(orjson.loads(r.value)["state"])
    assert len(by_order) == 14, sorted(by_order)  # the orders this journey made
    back = {k: states for k, states in by_order.items()
            if any(STAGE[a] > STAGE[b] for a, b in zip(states, states[1:]))}
    assert not back, back
    created = [k for k, states in by_order.items() if states[0] == "CREATED"]
    assert all(len(by_order[k]) >= 2 for k in created), by_order
