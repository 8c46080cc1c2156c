"""value_type=dict on a topic, after docs/userguide/models.rst (a topic's value_type is a
model, or a type such as int or str): an agent totals the orders' amounts per customer."""
from tests.compat.programs._flavor import make_app, name

app = make_app(topic_partitions=4)
orders_topic = app.topic(name("orders"), value_type=dict)
totals = app.Table("totals", default=int)
handled = {"n": 0}


@app.agent(orders_topic)
async def total(orders):
    async for order in orders:
        totals[order["customer"]] += order["amount"]
        handled["n"] += 1


@app.page("/totals/")
async def get_totals(web, request):
    return web.json({"handled": handled["n"], "totals": dict(totals.items())})
