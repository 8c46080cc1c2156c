"""An orders service for the event-driven gateway test (CQRS): the service helper accepts an
order, writes it as CREATED to the orders topic (the `orders` table) and sends a validation
command; the processing path validates it and writes VALIDATED or FAILED to the same table.
The reply names the order, so `?wait_for=state:VALIDATED,FAILED` waits on that table entry.
An order sent with "hold": true is put on HELD instead, until a test writes its final state.
Replies are recorded per request id (the client's Idempotency-Key): a retry gets the first
reply."""
import os

import streamkit

APP_ID = os.environ.get("ORDERS_APP_ID", "gateway-orders")
ORDERS = f"{APP_ID}-orders"
COMMANDS = f"{APP_ID}-validate"
LIMIT = 100

app = streamkit.App(APP_ID)
orders = app.table("orders", topic=ORDERS)


def validate(order: dict) -> dict:
    if order.get("hold"):
        return {**order, "state": "HELD"}
    return {**order, "state": "VALIDATED" if order["amount"] <= LIMIT else "FAILED"}


app.source(COMMANDS).map_values(validate).to(ORDERS)


@streamkit.service(app, os.environ.get("ORDERS_REQUESTS", f"{APP_ID}-requests"), table="orders",
                   request_id=lambda req: req.request_id)
async def handle(req: streamkit.ServiceRequest):
    if req.method != "POST" or not isinstance(req.body, dict) or "id" not in req.body:
        raise streamkit.ServiceError(400, "bad_order", "POST an order with an id")
    order = {"id": str(req.body["id"]), "amount": int(req.body.get("amount", 0)),
             "state": "CREATED", **({"hold": True} if req.body.get("hold") else {})}
    await req.send(ORDERS, order["id"], order)
    await req.send(COMMANDS, order["id"], order)
    return streamkit.Reply(201, {"order_id": order["id"]}, entity=order["id"])
