"""An app for the operator tests: re-keying through a repartition topic, branch, merge,
filter, map and a sink. Topic names carry the test's app id."""
import os

import streamkit

APP_ID = os.environ.get("SHOP_APP_ID", "shop")
app = streamkit.App(APP_ID)

orders = app.source(f"{APP_ID}-orders")  # key: order id
spend = (orders.group_by(lambda o: o["customer"], name="by-customer")
               .aggregate("spend", initial=0, add=lambda total, o: total + o["amount"]))
web, shop = orders.branch(lambda o: o["kind"] == "web", lambda o: o["kind"] == "shop")
channels = (web.map_values(lambda o: {**o, "channel": "web"})
               .merge(shop.map_values(lambda o: {**o, "channel": "shop"})))
channels.filter(lambda o: o["amount"] > 5).map(lambda k, o: (k, o["amount"])).to(f"{APP_ID}-big")
per_channel = channels.group_by(lambda o: o["channel"], name="by-channel").count("per-channel")
