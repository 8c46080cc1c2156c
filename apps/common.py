"""What the three services share: topic names, records and the order rules' inputs.

Topic names take an optional prefix (APPS_PREFIX) so that several copies of the system can
share one broker (the tests run each journey under its own prefix).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass

from faust import Record

LEVELS = ("bronze", "silver", "gold")
DISCOUNT = {"bronze": 0.0, "silver": 0.05, "gold": 0.10}
MAX_QTY = 100


@dataclass(frozen=True)
class Names:
    prefix: str

    def _t(self, name: str) -> str:
        return f"{self.prefix}{name}"

    # apps (consumer groups, data directories)
    customer_app = property(lambda self: self._t("customer"))
    basket_app = property(lambda self: self._t("basket"))
    orders_app = property(lambda self: self._t("orders"))
    gateway_app = property(lambda self: self._t("gateway"))
    # request topics, one per service (the gateway's configuration)
    customer_requests = property(lambda self: self._t("customer-requests"))
    basket_requests = property(lambda self: self._t("basket-requests"))
    orders_requests = property(lambda self: self._t("orders-requests"))
    # event topics
    customer_events = property(lambda self: self._t("customer-events"))   # key customer id
    basket_events = property(lambda self: self._t("basket-events"))       # key customer id
    orders = property(lambda self: self._t("orders"))                     # key order id
    order_commands = property(lambda self: self._t("order-commands"))     # key order id
    payments = property(lambda self: self._t("payments"))                 # key order id
    order_emails = property(lambda self: self._t("order-emails"))         # key order id

    def services(self) -> dict[str, str]:
        """Service name -> request topic, as the gateway routes /api/{service}."""
        return {"customer": self.customer_requests, "basket": self.basket_requests,
                "orders": self.orders_requests}


def names() -> Names:
    return Names(os.environ.get("APPS_PREFIX", ""))


class Customer(Record, serializer="json"):
    id: str
    name: str
    email: str
    level: str = "bronze"


class Item(Record, serializer="json"):
    sku: str
    qty: int
    price: float


def new_order(order_id: str, customer_id: str, items: list[dict]) -> dict:
    """A CREATED order; the orders service validates it. `order_id` comes from the request
    (ServiceRequest.new_id), so a request that runs again makes the same order."""
    return {"id": order_id, "customer_id": str(customer_id),
            "items": items, "state": "CREATED", "created_ms": int(time.time() * 1000)}


async def submit_order(req, n: Names, order: dict) -> None:
    """Record the order as CREATED and ask the orders service to validate it.

    The command goes out only once CREATED is acknowledged. The orders service answers it
    with VALIDATED or FAILED in the same topic, and the orders table keeps the last record
    of each key. Kafka orders no partition's records against another's: had both gone out
    together, the command could be read and answered before CREATED was appended, and
    CREATED, appended after VALIDATED, would overwrite it for good."""
    await req.send(n.orders, order["id"], order)
    await req.flush()
    await req.send(n.order_commands, order["id"], order)
