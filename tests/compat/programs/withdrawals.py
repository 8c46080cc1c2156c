"""After Faust's examples/withdrawals.py: a faust.Record with isodates, two agents on the
withdrawals topic, one summing per user into a tumbling(3600) table relative to the stream
(the records' timestamps), the other re-keying the stream by country with
group_by(Withdrawal.country) and summing per country into a tumbling(10, expires=10) table.

Two changes make the result deterministic: the country table is relative to the Withdrawal's
date field, since group_by's repartition records carry the wall-clock time of their
forwarding, not the original timestamp; and table_cleanup_interval is an hour, since Faust
expires windows against the wall clock (the input's dates are in the past)."""
from datetime import datetime

import faust

from tests.compat.programs._flavor import make_app, name
from tests.compat.programs._windows import window_items


class Withdrawal(faust.Record, isodates=True, serializer="json"):
    user: str
    country: str
    amount: float
    date: datetime = None


app = make_app(version=5, store="rocksdb://", topic_partitions=4, table_cleanup_interval=3600)
withdrawals_topic = app.topic(name("withdrawals"), value_type=Withdrawal)

user_to_total = app.Table("user_to_total", default=int).tumbling(3600).relative_to_stream()
country_to_total = app.Table("country_to_total", default=int).tumbling(
    10.0, expires=10.0).relative_to_field(Withdrawal.date)


@app.agent(withdrawals_topic)
async def track_user_withdrawal(withdrawals):
    async for withdrawal in withdrawals:
        user_to_total[withdrawal.user] += withdrawal.amount


@app.agent(withdrawals_topic)
async def track_country_withdrawal(withdrawals):
    async for withdrawal in withdrawals.group_by(Withdrawal.country):
        country_to_total[withdrawal.country] += withdrawal.amount


@app.page("/totals/")
async def totals(web, request):
    return web.json({"user": window_items(user_to_total),
                     "country": window_items(country_to_total)})
