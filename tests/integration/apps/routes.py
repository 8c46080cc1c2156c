"""An app for the operator tests: flat_map_values and select_key before a count (which
repartitions by the new key), routed output, and repartition(n). Topic names carry the
test's app id."""
import os

import streamkit

APP_ID = os.environ.get("ROUTES_APP_ID", "routes")
KINDS = ("web", "shop", "phone")
app = streamkit.App(APP_ID)

orders = app.source(f"{APP_ID}-orders")  # key: order id
per_sku = (orders.flat_map_values(lambda o: o["items"])
                 .select_key(lambda _oid, item: item["sku"])
                 .group_by_key().count("per-sku"))
orders.to(lambda oid, o, rc: f"{APP_ID}-{o['kind']}", topics=[f"{APP_ID}-{k}" for k in KINDS])
orders.repartition(3, name="three").to(f"{APP_ID}-from-three")
