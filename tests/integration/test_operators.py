"""The processing path's operators on the real broker: group_by through a repartition
topic, branch, merge, filter, map and to."""
from __future__ import annotations

from aiokafka.partitioner import murmur2

from streamkit.devbroker import free_port
from streamkit.testing.kafka import produce, read_topic

from .conftest import ROOT
from .test_tables import wait_for

SHOP = "tests.integration.apps.shop"


def orders(n: int):
    kinds = ["web", "shop", "phone"]
    return [(f"o{i}", {"customer": f"c{i % 13}", "amount": i % 10, "kind": kinds[i % 3]})
            for i in range(n)]


def test_orders_keyed_by_id_aggregate_per_customer_and_branch_merge_to_a_topic(
        broker, app_id, workers, tmp_path):
    data = orders(3000)
    produce(broker, f"{app_id}-orders", data)
    env = {"STREAMKIT_BROKER": f"kafka://{broker}", "STREAMKIT_DATA_DIR": str(tmp_path / "data"),
           "STREAMKIT_WEB_PORT": str(free_port()),
           "SHOP_APP_ID": app_id, "PYTHONPATH": ROOT}
    w = workers(SHOP, env)
    w.wait_ready()

    spend: dict[str, int] = {}
    for _, o in data:
        spend[o["customer"]] = spend.get(o["customer"], 0) + o["amount"]

    def spend_matches():
        got = {c: w.get(f"/tables/spend/keys/{c}") for c in spend}
        return all(s == 200 and b["value"] == spend[c] for c, (s, b) in got.items())

    wait_for(spend_matches)
    channels = {"web": 0, "shop": 0}
    for _, o in data:
        if o["kind"] in channels:
            channels[o["kind"]] += 1

    def channel_count(c):
        status, body = w.get(f"/tables/per-channel/keys/{c}")
        return body["value"] if status == 200 else None

    wait_for(lambda: all(channel_count(c) == n for c, n in channels.items()))
    assert w.get("/tables/per-channel/keys/phone")[0] == 404  # no branch took "phone"

    want_big = {k: o["amount"] for k, o in data if o["kind"] != "phone" and o["amount"] > 5}
    big = wait_for(lambda: (lambda recs: recs if len(recs) >= len(want_big) else None)(
        read_topic(broker, f"{app_id}-big")))
    assert {r.key.decode(): int(r.value) for r in big} == want_big
    assert len(big) == len(want_big)
    # Records land where Kafka's default partitioner puts their key.
    assert all(r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 4 for r in big)
    repartitioned = read_topic(broker, f"{app_id}-by-customer-repartition")
    assert len(repartitioned) == len(data)
    assert all(r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 4 for r in repartitioned)


def test_a_rekeyed_count_routed_output_and_a_repartition_of_its_own_size(
        broker, app_id, workers, tmp_path):
    kinds = ("web", "shop", "phone")
    data = [(f"o{i}", {"kind": kinds[i % 3],
                       "items": [{"sku": f"s{(i + j) % 7}"} for j in range(i % 4)]})
            for i in range(600)]
    produce(broker, f"{app_id}-orders", data)
    env = {"STREAMKIT_BROKER": f"kafka://{broker}", "STREAMKIT_DATA_DIR": str(tmp_path / "data"),
           "STREAMKIT_WEB_PORT": str(free_port()), "ROUTES_APP_ID": app_id, "PYTHONPATH": ROOT}
    w = workers("tests.integration.apps.routes", env)
    w.wait_ready()

    per_sku: dict[str, int] = {}
    for _, o in data:
        for item in o["items"]:
            per_sku[item["sku"]] = per_sku.get(item["sku"], 0) + 1

    def sku_counts():
        got = {s: w.get(f"/tables/per-sku/keys/{s}") for s in per_sku}
        return {s: b["value"] for s, (status, b) in got.items() if status == 200}

    wait_for(lambda: sku_counts() == per_sku)

    def at_least(topic: str, n: int):
        return wait_for(lambda: (lambda recs: recs if len(recs) >= n else None)(
            read_topic(broker, topic)))

    for kind in kinds:
        want = sorted(k for k, o in data if o["kind"] == kind)
        routed = at_least(f"{app_id}-{kind}", len(want))
        assert sorted(r.key.decode() for r in routed) == want
    three = at_least(f"{app_id}-three-repartition", len(data))
    # Three partitions (the source has four), each record where its key belongs.
    assert {r.partition for r in three} == {0, 1, 2}
    assert all(r.partition == (murmur2(r.key) & 0x7FFFFFFF) % 3 for r in three)
    out = at_least(f"{app_id}-from-three", len(data))
    assert sorted(r.key.decode() for r in out) == sorted(k for k, _ in data)
