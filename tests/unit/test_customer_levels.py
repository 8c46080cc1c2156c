"""The customer service's customers-per-level through the test driver: level changes, PUTs
that change nothing, deletions and crashes, against a count of the customers sent."""
from __future__ import annotations

import random
from collections import Counter

import pytest

from streamkit.testing import TopologyTestDriver


@pytest.fixture(scope="module")
def customer_app():
    from apps.customer import app as module

    return module


def test_customers_per_level_counts_each_customer_once_at_its_current_level(customer_app):
    events = customer_app.N.customer_events
    rng = random.Random(5)
    latest: dict[str, dict] = {}
    with TopologyTestDriver(customer_app.app, partitions=4, auto_commit=False) as driver:
        for i in range(400):
            cid = f"c-{rng.randrange(60)}"
            roll = rng.random()
            if cid in latest and roll < 0.15:
                del latest[cid]
                driver.pipe(events, cid, None)
            elif cid in latest and roll < 0.4:
                driver.pipe(events, cid, latest[cid])  # a PUT that changes nothing
            else:
                latest[cid] = {"id": cid, "name": "n", "email": "e@x.org",
                               "level": rng.choice(["bronze", "silver", "gold"])}
                driver.pipe(events, cid, latest[cid])
            if i % 40 == 0:
                driver.commit()
            if i % 130 == 70:
                driver.restart(crash=True)
            # The oracle: the customers' latest records, counted per level.
            want = Counter(c["level"] for c in latest.values())
            got = driver.table("customers-per-level")
            assert {lvl: n for lvl, n in got.items() if n} == dict(want)
