"""withdrawals: faust.Record with isodates, tumbling windowed tables relative to the stream
and to a field, group_by(Withdrawal.country) through a repartition topic."""
import asyncio
from collections import defaultdict
from datetime import datetime, timezone

from streamkit.testing.kafka import topic_names

from .conftest import canon, js

MODULE = "tests.compat.programs.withdrawals"
BASE = datetime(2024, 3, 1, tzinfo=timezone.utc).timestamp()   # 1709251200
USERS = [f"user_{i}" for i in range(7)]
COUNTRIES = [f"country_{i}" for i in range(3)]


def withdrawals(n: int = 240) -> list[dict]:
    out = []
    for i in range(n):
        date = datetime.fromtimestamp(BASE + i * 3 + 0.5, timezone.utc)
        out.append({"user": USERS[i * 5 % 7], "country": COUNTRIES[(i * i) % 3 if i % 4 else 0],
                    "amount": float(10 * (i % 13 + 1)), "date": date.isoformat(),
                    # the record's timestamp: i * 53 s after BASE, so several hours
                    "ts": BASE + i * 53})
    return out


def oracle(events: list[dict]) -> dict:
    users: dict[str, float] = defaultdict(float)
    countries: dict[str, float] = defaultdict(float)
    for e in events:
        hour = int(e["ts"] // 3600 * 3600)
        users[f"{e['user']}@{hour}"] += e["amount"]
        date = datetime.fromisoformat(e["date"]).timestamp()
        countries[f"{e['country']}@{int(date // 10 * 10)}"] += e["amount"]
    return {"user": dict(users), "country": dict(countries)}


def test_withdrawals(compat, broker):
    events = withdrawals()
    want = oracle(events)
    pair = compat(MODULE)
    pair.produce("withdrawals", [
        (e["user"], js({k: v for k, v in e.items() if k != "ts"}), int(e["ts"] * 1000))
        for e in events])
    pair.start()
    total = sum(e["amount"] for e in events)

    def done(v):
        return (isinstance(v, dict) and sum(v["user"].values()) >= total
                and sum(v["country"].values()) >= total)

    got = pair.settle(lambda run: run.page("/totals/"), done)
    pair.check("user_to_total (tumbling 3600, relative to stream): {user@window: total}",
               {f: v and v["user"] for f, v in got.items()}, want["user"])
    pair.check("country_to_total (tumbling 10, relative to date): {country@window: total}",
               {f: v and v["country"] for f, v in got.items()}, want["country"])

    # group_by forwards the original bytes, keyed by the country as raw UTF-8. (Faust names
    # the repartition topic after the agent and the source topic, without the app id.)
    def repartitioned(run):
        topics = [t for t in asyncio.run(topic_names(broker))
                  if run.app_id in t and t.endswith("-repartition")]
        return {t.replace(run.app_id, "<app>"):
                canon((r.key_bytes.decode(), r.value) for r in run.records_of(t))
                for t in topics}

    parts = {f: repartitioned(run) for f, run in pair.runs.items()}
    pair.check("repartition topics: {name: sorted (key bytes, value)}", parts, {
        f"{MODULE}.track_country_withdrawal-<app>-withdrawals-Withdrawal.country-repartition":
        canon(
            (e["country"], {k: v for k, v in e.items() if k != "ts"})
            for e in events)})
    pair.verdict()
