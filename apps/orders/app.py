"""The orders service: create an order (validated against the customer and the order
rules), read it, and pay it. Creating through the gateway with
`?wait_for=state:VALIDATED,FAILED` answers once the order is validated."""
import time

import streamkit
from streamkit import JoinWindows
from apps.common import names, new_order, submit_order
from apps.orders.rules import PAY_GRACE_MS, PAY_WITHIN_MS, pay, validate

N = names()
app = streamkit.App(N.orders_app, service_name="orders")

orders = app.table("orders", topic=N.orders)                                   # key: order id
customers = app.global_table("customers", topic=N.customer_events)             # key: customer id

# Validation: every worker holds all customers, so orders keyed by order id need no re-keying.
(app.source(N.order_commands)
    .join_global(customers, key=lambda o: o["customer_id"], joiner=validate, how="left")
    .to(N.orders))

# Payment: a validated order and a payment for it (both keyed by order id) meet when the
# payment's event time is within 5 minutes after the order's; a payment more than the
# grace behind stream time goes to the late-events topic.
validated = app.source(N.orders).filter(lambda o: o is not None and o.get("state") == "VALIDATED")
payments = app.source(N.payments, timestamp=lambda p: p["ts_ms"])
(validated.join_window(payments, JoinWindows(before_ms=0, after_ms=PAY_WITHIN_MS, grace_ms=PAY_GRACE_MS),
                       joiner=lambda order, payment: pay(payment, order), name="order-payments")
    .filter(lambda paid: paid is not None)
    .to(N.orders))


@streamkit.service(app, N.orders_requests, table="orders", request_id=lambda req: req.request_id)
async def handle(req: streamkit.ServiceRequest):
    segs = req.segments
    if req.method == "POST" and not segs:
        body = req.body if isinstance(req.body, dict) else {}
        if not body.get("customer_id") or not isinstance(body.get("items"), list):
            raise streamkit.ServiceError(400, "bad_order", "send {customer_id, items: [{sku, qty, price}]}")
        order = new_order(req.new_id("o-"), body["customer_id"], body["items"])
        await submit_order(req, N, order)
        return streamkit.Reply(201, {"order_id": order["id"]}, entity=order["id"])
    if not segs:
        raise streamkit.ServiceError(405, "method_not_allowed", f"{req.method} /api/orders")
    order = await app.read("orders", segs[0])
    if order is None:
        raise streamkit.ServiceError(404, "unknown_order", f"no order {segs[0]}")
    if req.method == "GET" and len(segs) == 1:
        return order
    if req.method == "POST" and segs[1:] == ["payments"]:
        amount = req.body.get("amount") if isinstance(req.body, dict) else None
        if not isinstance(amount, (int, float)) or amount <= 0:
            raise streamkit.ServiceError(400, "bad_payment", "send {amount}")
        payment = {"order_id": order["id"], "amount": amount, "ts_ms": int(time.time() * 1000)}
        await req.send(N.payments, order["id"], payment)
        return streamkit.Reply(202, payment, entity=order["id"])
    raise streamkit.ServiceError(404, "no_route", f"{req.method} /api/orders/{req.path}")
