"""The order state machine's rules: CREATED -> VALIDATED | FAILED -> PAID."""
from __future__ import annotations

from apps.common import DISCOUNT, MAX_QTY

PAY_WITHIN_MS = 5 * 60 * 1000   # a payment counts within 5 minutes (event time) of the order
PAY_GRACE_MS = 30 * 1000        # how far behind stream time a payment may still arrive


def validate(order: dict, customer: dict | None) -> dict:
    """VALIDATED with the total after the customer's level discount, or FAILED with why."""
    def failed(reason: str) -> dict:
        return {**order, "state": "FAILED", "reason": reason}

    if customer is None:
        return failed(f"unknown customer {order.get('customer_id')}")
    items = order.get("items")
    if not isinstance(items, list) or not items:
        return failed("an order needs at least one item")
    for it in items:
        if not isinstance(it, dict) or not isinstance(it.get("qty"), int) or not 0 < it["qty"] <= MAX_QTY:
            return failed(f"quantity must be 1..{MAX_QTY}")
        if not isinstance(it.get("price"), (int, float)) or it["price"] <= 0:
            return failed("prices must be positive")
    level = customer.get("level", "bronze")
    gross = sum(it["qty"] * it["price"] for it in items)
    return {**order, "state": "VALIDATED", "level": level,
            "total": round(gross * (1 - DISCOUNT.get(level, 0.0)), 2)}


def pay(payment: dict, order: dict | None) -> dict | None:
    """The PAID order when the payment covers a VALIDATED order in time; None otherwise."""
    if order is None or order.get("state") != "VALIDATED":
        return None
    if payment["amount"] + 1e-9 < order["total"]:
        return None
    return {**order, "state": "PAID", "paid_ms": payment["ts_ms"], "payment": payment["amount"]}
