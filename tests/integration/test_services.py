"""The service helper under crashes: requests that arrive while a service is down, and a
request delivered again after its reply was sent but before its offset was committed."""
from __future__ import annotations

import asyncio

from streamkit.testing.kafka import committed_and_end

from .test_gateway import Deployment, call, expected_echo, session
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
