"""An app for the join tests: stream-table (left), stream-global-table (inner) and
table-table (left) joins."""
import os

import streamkit

APP_ID = os.environ.get("JOINS_APP_ID", "joins")
app = streamkit.App(APP_ID)

customers = app.table("customers", topic=f"{APP_ID}-customers")          # key: customer id
products = app.global_table("products", topic=f"{APP_ID}-products")      # key: product id
orders = app.source(f"{APP_ID}-orders")                                  # key: customer id

enriched = orders.join(customers, lambda o, c: {**o, "level": c and c["level"]}, how="left")
priced = enriched.join_global(products, key=lambda o: o["product"],
                              joiner=lambda o, p: {**o, "price": p["price"]})
priced.to(f"{APP_ID}-priced")
spend = priced.group_by_key().aggregate("spend", 0, lambda total, o: total + o["qty"] * o["price"])
profiles = customers.join(spend, "profiles", lambda c, s: {"name": c["name"], "spend": s},
                          how="left")

# Foreign-key table-table joins: an order names its customer.
order_table = app.table("order-table", topic=f"{APP_ID}-order-table")    # key: order id
named = order_table.join_foreign(customers, "named-orders", fk=lambda o: o["customer"],
                                 joiner=lambda o, c: {"amount": o["amount"], "name": c["name"]})
named_left = order_table.join_foreign(
    customers, "named-orders-left", fk=lambda o: o["customer"], how="left",
    joiner=lambda o, c: {"amount": o["amount"], "name": c and c["name"]})
