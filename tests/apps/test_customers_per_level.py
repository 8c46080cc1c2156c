"""customers-per-level on Kafka: customers change level, are PUT again unchanged, are deleted
and come back, while the customer worker is SIGKILLed once mid-stream and restarted; the
counts end equal to a count of the customers the test sent."""
from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter

import pytest

from apps.common import LEVELS
from streamkit.devbroker import free_port
from streamkit.testing.kafka import committed_and_end, produce

from .conftest import ROOT, eventually


def customer_events(n: int, customers: int, seed: int) -> list[tuple[str, dict | None]]:
    """n customer events as the customer service writes them (a PUT sends the whole
    customer again), plus deletions (tombstones)."""
    rng = random.Random(seed)
    current: dict[str, dict] = {}
    out: list[tuple[str, dict | None]] = []
    for i in range(n):
        cid = f"c-{rng.randrange(customers)}"
        roll = rng.random()
        if cid in current and roll < 0.15:
            del current[cid]
            out.append((cid, None))
        elif cid in current and roll < 0.45:
            out.append((cid, current[cid]))  # a PUT that changes nothing
        else:
            current[cid] = {"id": cid, "name": f"n{i}", "email": f"{cid}@example.org",
                            "level": rng.choice(LEVELS)}
            out.append((cid, current[cid]))
    return out


def expected_counts(events: list[tuple[str, dict | None]]) -> dict[str, int]:
    """The oracle: the latest record of each customer, counted per level."""
    latest: dict[str, dict] = {}
    for cid, customer in events:
        if customer is None:
            latest.pop(cid, None)
        else:
            latest[cid] = customer
    counts = Counter(c["level"] for c in latest.values())
    return {level: counts.get(level, 0) for level in LEVELS}


def consumed(broker: str, group: str, topic: str) -> bool:
    """Whether the group has committed the end of every partition of topic (nothing to
    commit in an empty partition)."""
    committed, ends = asyncio.run(committed_and_end(broker, group, topic))
    return all((committed.get(p) or 0) == end for p, end in ends.items())


def counts(worker) -> dict[str, int]:
    out = {}
    for level in LEVELS:
        status, body = worker.get(f"/tables/customers-per-level/keys/{level}")
        if status == 200:
            out[level] = body["value"]
        elif status == 404:
            out[level] = 0
        else:
            raise AssertionError(f"GET {level}: {status} {body}")
    return out


@pytest.mark.parametrize("lost_disk", [False, True])
def test_counts_per_level_stay_exact_under_updates_deletes_and_a_sigkill(
        broker, app_id, workers, tmp_path, lost_disk):
    prefix = f"{app_id}-"
    env = {"STREAMKIT_BROKER": f"kafka://{broker}", "APPS_PREFIX": prefix, "PYTHONPATH": ROOT,
           "STREAMKIT_DATA_DIR": str(tmp_path / "customer"),
           # Commits every 300 records: the kill falls between commits, with updates
           # processed, sent on and applied that the restarted worker replays.
           "STREAMKIT_COMMIT_MAX_RECORDS": "300", "STREAMKIT_FETCH_MAX_RECORDS": "100",
           "STREAMKIT_COMMIT_INTERVAL_MS": "60000"}

    def start(name: str, **extra: str):
        w = workers("apps.customer.app",
                    {**env, **extra, "STREAMKIT_WEB_PORT": str(free_port())}, name)
        w.wait_ready()
        return w

    events = customer_events(12_000, customers=400, seed=19)
    want = expected_counts(events)
    topic = f"{prefix}customer-events"
    worker = start("customer0")
    done = threading.Event()

    def trickle():
        for start_at in range(0, len(events), 400):
            produce(broker, topic, events[start_at:start_at + 400])
        done.set()

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        assert eventually(lambda: sum(counts(worker).values()) > 100, timeout=60)
        worker.kill()
        assert not done.is_set(), "the worker must die while customer events still arrive"
    finally:
        sender.join()

    # Back with frequent commits, so that the end of the input is committed soon; with a
    # lost disk, every table (the hidden positions too) comes back from its changelog.
    data = tmp_path / ("customer-new-disk" if lost_disk else "customer")
    worker = start("customer0-again", STREAMKIT_COMMIT_INTERVAL_MS="300",
                   STREAMKIT_DATA_DIR=str(data))
    group = f"{prefix}customer-processors"
    repartition = f"{prefix}customer-customers-by-level-repartition"
    assert eventually(lambda: consumed(broker, group, topic)
                      and consumed(broker, group, repartition), timeout=120)
    assert counts(worker) == want
    status, body = worker.get("/tables/customers/count")
    assert status == 200 and body["count"] == sum(want.values())
