"""The customer service: register, update and read customers; a `customers` table fed by
customer events, and the number of customers per level."""
import re

import streamkit
from apps.common import LEVELS, names

N = names()
app = streamkit.App(N.customer_app, service_name="customer")

customers = app.table("customers", topic=N.customer_events)
# Re-grouped with a subtractor: a customer who changes level leaves the old level's count,
# a PUT that changes nothing leaves the counts as they are, and a deleted customer
# (a tombstone in customer-events) is no longer counted.
per_level = (customers
             .group_by(lambda cid, c: (c.get("level", "bronze"), cid), name="customers-by-level")
             .count("customers-per-level"))

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def checked(body: object, partial: bool = False) -> dict:
    if not isinstance(body, dict):
        raise streamkit.ServiceError(400, "bad_customer", "send a JSON object")
    out = {}
    for field in ("name", "email", "level"):
        if field in body:
            out[field] = body[field]
        elif not partial and field != "level":
            raise streamkit.ServiceError(400, "bad_customer", f"{field} is required")
    if "name" in out and (not isinstance(out["name"], str) or not out["name"].strip()):
        raise streamkit.ServiceError(400, "bad_customer", "name must be a non-empty string")
    if "email" in out and (not isinstance(out["email"], str) or not EMAIL.match(out["email"])):
        raise streamkit.ServiceError(400, "bad_customer", "email is not an address")
    if "level" in out and out["level"] not in LEVELS:
        raise streamkit.ServiceError(400, "bad_customer", f"level must be one of {LEVELS}")
    return out


@streamkit.service(app, N.customer_requests, table="customers",
                   request_id=lambda req: req.request_id)
async def handle(req: streamkit.ServiceRequest):
    if req.method == "POST" and not req.entity:
        fields = checked(req.body)
        cid = str(req.body.get("id") or req.new_id("c-"))
        customer = {"id": cid, "level": "bronze", **fields}
        await req.send(N.customer_events, cid, customer)
        return streamkit.Reply(201, customer, entity=cid)
    if not req.entity:
        raise streamkit.ServiceError(405, "method_not_allowed", f"{req.method} /api/customer")
    current = await app.read("customers", req.entity)
    if req.method == "GET":
        if current is None:
            raise streamkit.ServiceError(404, "unknown_customer", f"no customer {req.entity}")
        return current
    if req.method == "PUT":
        if current is None:
            raise streamkit.ServiceError(404, "unknown_customer", f"no customer {req.entity}")
        customer = {**current, **checked(req.body, partial=True)}
        await req.send(N.customer_events, req.entity, customer)
        return streamkit.Reply(200, customer, entity=req.entity)
    raise streamkit.ServiceError(405, "method_not_allowed", f"{req.method} /api/customer/{req.entity}")
