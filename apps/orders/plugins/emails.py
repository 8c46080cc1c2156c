"""An example plugin for the orders service: an email to the customer whenever an order is
validated, fails or is paid, written to the order-emails topic (a mailer consumes it).
Declared in apps/pyproject.toml under the `streamkit.plugins` entry points; the orders app is
not edited to get it."""
from apps.common import names
from streamkit.plugins import plugin

SUBJECTS = {"VALIDATED": "Your order is confirmed", "FAILED": "We could not take your order",
            "PAID": "Thank you for your payment"}


def email(order: dict) -> dict:
    return {"order_id": order["id"], "customer_id": order["customer_id"],
            "subject": SUBJECTS[order["state"]], "state": order["state"]}


@plugin("orders", name="order-emails")
def order_emails(app) -> None:
    n = names()
    (app.source(n.orders)
        .filter(lambda o: o is not None and o.get("state") in SUBJECTS)
        .map_values(email)
        .to(n.order_emails))


plugin = order_emails
