"""The parked-request table: bounded, and empty again however each request ends."""
import asyncio

import pytest

from streamkit.errors import ParkedFull
from streamkit.gateway.parking import ParkedRequests


async def test_completed_request_gets_its_result_and_leaves_the_table():
    table = ParkedRequests(10)
    parked = table.park("a", 0)
    assert len(table) == 1 and "a" in table
    asyncio.get_running_loop().call_soon(table.complete, "a", "reply-a")
    assert await table.wait(parked, 1.0) == "reply-a"
    assert len(table) == 0
    assert table.counters["completed"] == 1 and table.counters["late"] == 0


async def test_timed_out_request_is_purged_and_its_late_reply_is_counted():
    table = ParkedRequests(10)
    parked = table.park("a", 0)
    with pytest.raises(asyncio.TimeoutError):
        await table.wait(parked, 0.01)
    assert len(table) == 0 and table.counters["timed_out"] == 1
    assert table.complete("a", "too late") is False
    assert table.counters["late"] == 1 and table.counters["completed"] == 0


async def test_cancelled_waiter_is_purged():
    table = ParkedRequests(10)
    parked = table.park("a", 0)
    task = asyncio.create_task(table.wait(parked, 5.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(table) == 0 and table.counters["cancelled"] == 1


async def test_table_refuses_requests_past_its_limit_and_takes_them_again_once_freed():
    table = ParkedRequests(2)
    first, _ = table.park("a", 0), table.park("b", 0)
    with pytest.raises(ParkedFull):
        table.park("c", 0)
    assert table.counters["rejected_full"] == 1
    table.complete("a", 1)
    assert await table.wait(first, 1.0) == 1
    table.park("c", 0)
    assert len(table) == 2 and table.peak == 2


async def test_duplicate_reply_is_late_and_does_not_disturb_the_answer():
    table = ParkedRequests(10)
    parked = table.park("a", 0)
    assert table.complete("a", "first") is True
    assert table.complete("a", "second") is False
    assert await table.wait(parked, 1.0) == "first"
    assert table.counters["late"] == 1


async def test_many_requests_each_get_their_own_reply_and_none_remain():
    table = ParkedRequests(1000)
    parked = [table.park(f"id{i}", 0) for i in range(500)]
    waiters = [asyncio.create_task(table.wait(p, 2.0)) for p in parked]
    for i in reversed(range(0, 500, 2)):  # every other one answered, out of order
        table.complete(f"id{i}", i)
    answered, pending = waiters[0::2], waiters[1::2]
    assert await asyncio.gather(*answered) == list(range(0, 500, 2))
    assert not any(t.done() for t in pending)  # their replies never came
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    assert len(table) == 0
    stats = table.stats()
    assert stats["parked"] == 0 and stats["parked_total"] == 500 and stats["completed"] == 250
    assert stats["cancelled"] == 250


def test_a_parked_id_cannot_be_parked_twice():
    async def run():
        table = ParkedRequests(10)
        table.park("a", 0)
        with pytest.raises(ValueError):
            table.park("a", 0)
    asyncio.run(run())
