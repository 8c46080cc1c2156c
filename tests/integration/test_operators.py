"""The processing path's operators on the real broker: group_by through a repartition
topic, branch, merge, filter, map and to."""
from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.partitioner import murmur2

from streamkit.devbroker import free_port
from streamkit.testing.kafka import admin_client, produce, read_topic

from .conftest import ROOT
from .test_tables import wait_for

SHOP = "tests.integration.apps.shop"


def orders(n: int):
    kinds = ["web", "shop", "phone"]
    return [(f"o{i}", {"customer": f"c{i % 13}", "amount": i % 10, "kind": kinds[i % 3]})
            for i in range(n)]


def spend_per_customer(data) -> dict[str, int]:
    spend: dict[str, int] = {}
    for _, o in data:
        spend[o["customer"]] = spend.get(o["customer"], 0) + o["amount"]
    return spend


def serves(worker, table: str, want: dict) -> bool:
    """Whether the worker answers every key of want with its value."""
    got = {k: worker.get(f"/tables/{table}/keys/{k}") for k in want}
    return all(s == 200 and b["value"] == want[k] for k, (s, b) in got.items())


def test_orders_keyed_by_id_aggregate_per_customer_and_branch_merge_to_a_topic(
        broker, app_id, workers, tmp_path):
    data = orders(3000)
    produce(broker, f"{app_id}-orders", data)
    env = {"STREAMKIT_BROKER": f"kafka://{broker}", "STREAMKIT_DATA_DIR": str(tmp_path / "data"),
           "STREAMKIT_WEB_PORT": str(free_port()),
           "SHOP_APP_ID": app_id, "PYTHONPATH": ROOT,
           # The repartition topic is read whole below: nothing is deleted from it.
           "STREAMKIT_REPARTITION_PURGE_INTERVAL_MS": "0"}
    w = workers(SHOP, env)
    w.wait_ready()

    wait_for(lambda: serves(w, "spend", spend_per_customer(data)))
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


async def _repartition_state(broker: str, topic: str) -> tuple[str | None, dict, dict]:
    """The topic's retention.ms, and each partition's first and end offset."""
    async with admin_client(broker) as admin:
        (response,) = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic)])
    retention = None
    for _code, _msg, _type, _name, entries, *_ in response.resources:
        for name, value, *_ in entries:
            if name == "retention.ms":
                retention = value
    consumer = AIOKafkaConsumer(bootstrap_servers=broker)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(4)]
        first = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return retention, {tp.partition: o for tp, o in first.items()}, \
        {tp.partition: o for tp, o in end.items()}


def test_a_repartition_topic_keeps_records_whatever_their_age_and_drops_them_once_committed(
        broker, app_id, workers, tmp_path):
    data = orders(2000)
    produce(broker, f"{app_id}-orders", data)
    env = {"STREAMKIT_BROKER": f"kafka://{broker}", "STREAMKIT_DATA_DIR": str(tmp_path / "data"),
           "STREAMKIT_WEB_PORT": str(free_port()), "SHOP_APP_ID": app_id, "PYTHONPATH": ROOT,
           "STREAMKIT_REPARTITION_PURGE_INTERVAL_MS": "200"}
    w = workers(SHOP, env)
    w.wait_ready()
    wait_for(lambda: serves(w, "spend", spend_per_customer(data)))
    topic = f"{app_id}-by-customer-repartition"
    # Kept by no time limit: records carry event times, which may be older than any.
    retention, _, end = asyncio.run(_repartition_state(broker, topic))
    assert retention == "-1"
    assert sum(end.values()) == len(data)
    # Every record has been processed and committed: all of them are deleted.
    wait_for(lambda: (lambda s: s[1] == s[2])(asyncio.run(_repartition_state(broker, topic))))
