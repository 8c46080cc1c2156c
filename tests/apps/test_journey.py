"""A user's journey through the gateway: register, fill a basket, check out, pay, and read
the views; once with one worker per service and once with two."""
from __future__ import annotations

import time

import orjson
import pytest

from streamkit.testing.kafka import produce, read_topic

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

    # Checkout answers once the new order is validated (the event-driven variant).
    status, done = s.call("POST", f"/api/basket/{cid}/checkout?wait_for=state:VALIDATED,FAILED")
    assert status == 200, done
    order = done["value"]
    assert order["state"] == "VALIDATED" and order["customer_id"] == cid
    assert order["total"] == round((2 * 4.5 + 11) * 0.9, 2)  # gold: 10% off
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
