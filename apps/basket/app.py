"""The basket service: a basket per customer (add item, remove item, view, checkout).
Checkout sends the basket to the orders service as a new order and empties the basket."""
import streamkit
from apps.common import MAX_QTY, names, new_order, submit_order

N = names()
app = streamkit.App(N.basket_app, service_name="basket")


def apply(basket: dict, event: dict) -> dict:
    """One basket event (add, remove, clear) applied to the basket."""
    items = dict(basket["items"])
    if event["op"] == "add":
        sku = event["sku"]
        old = items.get(sku, {"qty": 0})
        items[sku] = {"sku": sku, "qty": old["qty"] + event["qty"], "price": event["price"]}
    elif event["op"] == "remove":
        items.pop(event["sku"], None)
    elif event["op"] == "clear":
        items = {}
    return {"customer_id": event["customer_id"], "items": items}


baskets = (app.source(N.basket_events).group_by_key()
              .aggregate("baskets", initial=lambda: {"items": {}}, add=apply))


def item(body: object) -> dict:
    if not isinstance(body, dict) or not isinstance(body.get("sku"), str):
        raise streamkit.ServiceError(400, "bad_item", "send {sku, qty, price}")
    qty, price = body.get("qty", 1), body.get("price")
    if not isinstance(qty, int) or not 0 < qty <= MAX_QTY:
        raise streamkit.ServiceError(400, "bad_item", f"qty must be 1..{MAX_QTY}")
    if not isinstance(price, (int, float)) or price <= 0:
        raise streamkit.ServiceError(400, "bad_item", "price must be positive")
    return {"sku": body["sku"], "qty": qty, "price": price}


# A checkout retried with the same Idempotency-Key is answered with the first one's reply
# (recorded, so this holds across restarts), and its order id is derived from that key.
@streamkit.service(app, N.basket_requests, table="baskets", request_id=lambda req: req.request_id)
async def handle(req: streamkit.ServiceRequest):
    segs = req.segments  # {customer}[/items[/{sku}] | /checkout]
    if not segs:
        raise streamkit.ServiceError(404, "no_customer", "use /api/basket/{customer}")
    customer, rest = segs[0], segs[1:]
    if req.method == "GET" and not rest:
        basket = await app.read("baskets", customer)
        return basket or {"customer_id": customer, "items": {}}
    if req.method == "POST" and rest == ["items"]:
        event = {"op": "add", "customer_id": customer, **item(req.body)}
        await req.send(N.basket_events, customer, event)
        return streamkit.Reply(202, event, entity=customer)
    if req.method == "DELETE" and len(rest) == 2 and rest[0] == "items":
        event = {"op": "remove", "customer_id": customer, "sku": rest[1]}
        await req.send(N.basket_events, customer, event)
        return streamkit.Reply(202, event, entity=customer)
    if req.method == "POST" and rest == ["checkout"]:
        basket = await app.read("baskets", customer)
        if not basket or not basket["items"]:
            raise streamkit.ServiceError(409, "empty_basket", f"the basket of {customer} is empty")
        order = new_order(req.new_id("o-"), customer, list(basket["items"].values()))
        await submit_order(req, N, order)
        await req.send(N.basket_events, customer, {"op": "clear", "customer_id": customer})
        return streamkit.Reply(202, {"order_id": order["id"]}, entity=order["id"],
                               table="orders", app=N.orders_app)
    raise streamkit.ServiceError(404, "no_route", f"{req.method} /api/basket/{req.path}")
