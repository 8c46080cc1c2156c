"""The service helper under crashes: requests that arrive while a service is down, a
request delivered again after its reply was sent but before its offset was committed, and
orders through the gateway to an exactly-once service SIGKILLed twice; and the records a
handler sends, all acknowledged before its reply."""
from __future__ import annotations

import asyncio
from collections import Counter

import orjson
from aiokafka.admin import NewTopic

from streamkit.testing.kafka import admin_client, committed_and_end, read_topic

from .test_gateway import ORDERS, Deployment, call, expected_echo, session
from .test_tables import wait_for


def test_requests_sent_while_the_only_service_worker_is_down_are_each_answered_once(
        broker, app_id, workers, tmp_path):
    d = Deployment(broker, app_id, workers, tmp_path, STREAMKIT_GATEWAY_MAX_TIMEOUT_MS="120000")
    echo = d.start_echo()
    gw = d.start_gateway("gw0")
    wait_for(d.settled)
    n, rate, down_at, up_at = 300, 50, 60, 160

    async def run():
        async with session(120) as s:
            tasks, expired, restarted = [], None, None
            for i in range(n):
                if i == down_at:
                    echo.kill()
                    # Sent while nothing serves the topic, with a deadline that passes
                    # before the service is back.
                    expired = asyncio.create_task(call(
                        s, f"{gw.url}/api/echo/late", "POST", {"n": -1},
                        headers={"X-Timeout-Ms": "1000"}))
                if i == up_at:
                    restarted = asyncio.get_running_loop().run_in_executor(
                        None, d.start_echo, "echo-2")
                tasks.append(asyncio.create_task(call(
                    s, f"{gw.url}/api/echo/e{i}", "POST", {"n": i},
                    headers={"X-Timeout-Ms": "60000"})))
                await asyncio.sleep(1 / rate)
            return await asyncio.gather(*tasks), await expired, await restarted

    results, (late_status, late_body, _), restarted = asyncio.run(run())
    for i, (status, body, _) in enumerate(results):
        assert (status, body) == (200, expected_echo("POST", f"e{i}", {}, {"n": i})), i
    assert len({h["X-Correlation-Id"] for _, _, h in results}) == n
    assert late_status == 504 and late_body["error"]["code"] == "gateway_timeout"
    stats = wait_for(lambda: (lambda b: b if b and b["expired"] == 1 else None)(
        restarted.get("/services/stats")[1]))
    assert stats["errors"] == 0 and stats["handled"] >= up_at - down_at, stats
    assert "request expired before it was handled" in restarted.log_tail(200_000)
    # Every request was handled, so the committed offsets reach the end of the topic.
    group, topic = f"{app_id}-svc-services", d.services["echo"]
    offsets = wait_for(lambda: (lambda c, e: (c, e) if c == e else None)(
        *asyncio.run(committed_and_end(broker, group, topic))))
    assert len(offsets[1]) == 4 and sum(offsets[1].values()) == n + 1


def test_replies_wait_for_every_record_the_handler_and_the_gateway_sent_to_be_acknowledged(
        broker, app_id, workers, tmp_path):
    # Both topics refuse record batches over 20,000 bytes (max.message.bytes), so a request
    # can be made whose records the broker refuses after the producer took them.
    fanout, out, limit = f"{app_id}-fanout", f"{app_id}-fanout-out", 20_000

    async def topics():
        async with admin_client(broker) as admin:
            await admin.create_topics([NewTopic(t, 4, 1, topic_configs={
                "max.message.bytes": str(limit)}) for t in (fanout, out)])

    asyncio.run(topics())
    d = Deployment(broker, app_id, workers, tmp_path)
    d.services["fanout"] = fanout
    d.start_echo(FANOUT_TOPIC=fanout, FANOUT_OUT=out)
    gw = d.start_gateway("gw0")
    wait_for(d.settled)
    n, per = 40, 3

    async def run(requests):
        async with session() as s:
            return await asyncio.gather(*(call(s, f"{gw.url}/api/fanout/{path}", "POST", body)
                                          for path, body in requests))

    # Concurrent requests, sent by the gateway in shared produce requests, each handler
    # sending several records without awaiting them: all answered, every record there.
    answers = asyncio.run(run([(f"r{i}", {"n": per}) for i in range(n)]))
    keys = {f"r{i}-{j}" for i in range(n) for j in range(per)}
    for i, (status, body, _) in enumerate(answers):
        assert (status, body) == (200, {"sent": [f"r{i}-{j}" for j in range(per)]}), i
    assert sorted(rec.key.decode() for rec in read_topic(broker, out)) == sorted(keys)
    # A handler's record refused by the broker: the reply is a 500, not the handler's 200.
    ((status, body, _),) = asyncio.run(run([("big", {"n": 2, "pad": 2 * limit})]))
    assert status == 500 and body["error"]["code"] == "internal_error", body
    # A request the broker refuses never reaches the service: answered 503 at once (its
    # acknowledgement failed), not 504 at its deadline; a small one sent with it is answered.
    answers = asyncio.run(run([("huge", {"n": 1, "pad": 0, "x": "y" * 2 * limit}),
                               ("small", {"n": 1})]))
    (huge_status, huge, _), (small_status, small, _) = answers
    assert huge_status == 503 and huge["error"]["code"] == "broker_unavailable", huge
    assert (small_status, small) == (200, {"sent": ["small-0"]})
    assert sorted(rec.key.decode() for rec in read_topic(broker, out)) == sorted(keys | {"small-0"})


def test_a_request_delivered_again_after_a_crash_is_answered_from_its_recorded_reply(
        broker, app_id, workers, tmp_path):
    # Request offsets are committed only on a rebalance, so the SIGKILL below always falls
    # between the reply and the commit.
    d = Deployment(broker, app_id, workers, tmp_path)
    echo = d.start_echo(STREAMKIT_COMMIT_INTERVAL_MS="600000")
    gw = d.start_gateway("gw0")
    wait_for(d.settled)

    async def counted(key: str, n: int):
        async with session() as s:
            return await call(s, f"{gw.url}/api/counted/", "POST", {"n": n},
                              headers={"Idempotency-Key": key})

    status, first, _ = asyncio.run(counted("k1", 1))
    assert (status, first) == (201, {"calls": 1, "body": {"n": 1}})
    echo.kill()
    # Back with an empty disk: the recorded reply comes from its changelog.
    again = d.start_echo("echo-2", STREAMKIT_COMMIT_INTERVAL_MS="600000")
    stats = wait_for(lambda: (lambda b: b if b and b["requests"] == 1 else None)(
        again.get("/services/stats")[1]))
    # Delivered again, and answered from the record: the handler did not run.
    assert (stats["replayed"], stats["handled"], stats["replies_restored"]) == (1, 0, 4), stats
    # The client's retry (a new correlation id, the same key) gets the first reply.
    status, retried, _ = asyncio.run(counted("k1", 1))
    assert (status, retried) == (201, first)
    status, other, _ = asyncio.run(counted("k2", 2))
    assert (status, other) == (201, {"calls": 1, "body": {"n": 2}})
    stats = again.get("/services/stats")[1]
    assert (stats["replayed"], stats["handled"]) == (2, 1), stats


def test_orders_through_the_gateway_each_exist_once_after_two_sigkills_of_an_exactly_once_service(
        broker, app_id, workers, tmp_path):
    """The orders service (the service helper writes the order as CREATED and a validation
    command, the processing path writes VALIDATED or FAILED) with exactly-once, SIGKILLed
    twice while orders arrive through the gateway with ?wait_for=: every order is answered
    with its final state, a retry with the same Idempotency-Key gets the same answer, and,
    read committed, each order's events, its command, its reply and the record of its reply
    exist exactly once."""
    d = Deployment(broker, app_id, workers, tmp_path)
    orders_app = f"{app_id}-orders"
    d.services = {"orders": f"{orders_app}-requests"}
    asyncio.run(d._topics())

    def start(name):
        w = workers(ORDERS, d.env(name, ORDERS_APP_ID=orders_app,
                                  STREAMKIT_PROCESSING_GUARANTEE="exactly_once"), name)
        w.wait_ready()
        wait_for(lambda: w.get("/services/stats")[1]["assigned"])
        return w

    service = [start("orders-0")]
    g = d.start_gateway("gw", STREAMKIT_REGISTRY_TOPIC="streamkit-registry")
    wait_for(lambda: g.get(f"/apps/{orders_app}")[0] == 200)
    n, rate = 1000, 60
    url = f"{g.url}/api/orders?wait_for=state:VALIDATED,FAILED"

    def amount(i: int) -> int:
        return i % 150 + 1  # over 100: FAILED (apps/gateway_orders.py)

    def handled_some(w) -> bool:
        stats = w.get("/services/stats")[1]
        return bool(stats) and stats["handled"] >= 30

    async def run():
        loop = asyncio.get_running_loop()
        sent = asyncio.Event()

        async def crash_twice():
            # First while orders arrive, then once the restarted worker is answering.
            await sent.wait()
            for name in ("orders-1", "orders-2"):
                service[0].kill()
                service[0] = await loop.run_in_executor(None, start, name)
                if name == "orders-1":
                    await loop.run_in_executor(None, wait_for, lambda: handled_some(service[0]))

        crasher = asyncio.create_task(crash_twice())
        async with session(180) as s:
            tasks = []
            for i in range(n):
                if i == n // 4:
                    sent.set()
                tasks.append(asyncio.create_task(order(s, i)))
                await asyncio.sleep(1 / rate)  # pacing: orders keep arriving while it dies
            results = await asyncio.gather(*tasks)
            await crasher
            # Retries after the crashes: answered from the record of the first reply.
            retried = await asyncio.gather(*(order(s, i) for i in range(0, n, 50)))
        return results, retried

    def order(s, i: int):
        return call(s, url, body={"id": f"o-{i}", "amount": amount(i)},
                    headers={"X-Timeout-Ms": "60000", "Idempotency-Key": f"o-{i}"})

    results, retried = asyncio.run(run())
    final = {f"o-{i}": "VALIDATED" if amount(i) <= 100 else "FAILED" for i in range(n)}
    answers = list(enumerate(results)) + list(zip(range(0, n, 50), retried))
    for i, (status, body, _) in answers:
        assert status == 200, (i, status, body)
        assert (body["key"], body["value"]["state"], body["reply"]) == (
            f"o-{i}", final[f"o-{i}"], {"order_id": f"o-{i}"}), body
    assert service[0].get("/services/stats")[1]["replayed"] == len(retried)
    events: dict[str, list[str]] = {}
    for rec in read_topic(broker, f"{orders_app}-orders", isolation_level="read_committed"):
        events.setdefault(rec.key.decode(), []).append(orjson.loads(rec.value)["state"])
    assert events == {key: ["CREATED", state] for key, state in final.items()}
    commands = Counter(rec.key.decode() for rec in read_topic(
        broker, f"{orders_app}-validate", isolation_level="read_committed"))
    assert commands == Counter(list(final))
    replies = Counter(orjson.loads(rec.value)["id"] for rec in read_topic(
        broker, d.responses, isolation_level="read_committed"))
    assert replies == Counter(h["X-Correlation-Id"] for _, _, h in results + retried)
    recorded = Counter(rec.key for rec in read_topic(
        broker, f"{orders_app}-{d.services['orders']}-replies", isolation_level="read_committed")
        if rec.key.startswith(b"k"))
    assert recorded == Counter([f"kid:{h['X-Correlation-Id']}".encode() for _, _, h in results]
                               + [f"krq:{d.services['orders']}:o-{i}".encode() for i in range(n)])
