"""A resubscription (Faust's conductor adding the topic of a stream made at run time) must
suspend Faust's flow control like any other rebalance.

aiokafka replaces its subscription before the rebalance, so at the revocation Faust finds
no assignment and leaves its flow control open: the records of the new assignment then
reach the streams' buffers before the recovery's flow_control.resume() clears them, and
they are lost (tests/compat/test_manual_stream.py lost one that way). streamkit.App
suspends the flow control at every revocation; the recovery resumes it, and the records
the conductor held meanwhile go to the streams after the clear."""
import asyncio

import faust

import streamkit
from streamkit import Settings


async def revoke_without_assignment(app, monkeypatch) -> None:
    """Faust's revocation handler as a resubscription runs it, on a running worker (its
    first recovery resumed the flow control) whose aiokafka consumer reports no
    assignment."""
    app.flow_control.resume()
    assert app.flow_control.is_active()
    monkeypatch.setattr(app.consumer, "assignment", lambda: set())
    await app._on_partitions_revoked({faust.types.TP(f"{app.conf.id}-__assignor-__leader", 0)})


async def test_faust_leaves_its_flow_open_when_a_revocation_finds_no_assignment(monkeypatch):
    # What streamkit.App corrects: the flow control of a plain faust.App stays active.
    app = faust.App("faust-resub", broker="kafka://127.0.0.1:1")
    await revoke_without_assignment(app, monkeypatch)
    assert app.flow_control.is_active()


async def test_a_revocation_without_assignment_suspends_the_flow(monkeypatch):
    app = streamkit.App("svc-resub", settings=Settings.from_env({}))

    @app.task
    async def doubler():
        async for _ in app.stream(app.topic("svc-resub-numbers")):
            pass

    await revoke_without_assignment(app, monkeypatch)
    assert not app.should_stop  # the revocation did not crash the app
    # The conductor waits here before it puts a record in a stream's buffer.
    assert not app.flow_control.is_active()
    held = asyncio.ensure_future(app.flow_control.acquire())
    for _ in range(5):  # let the waiter run as far as it can
        await asyncio.sleep(0)
    assert not held.done()

    app.flow_control.resume()  # Recovery._resume_streams: clear the buffers, then resume
    await asyncio.wait_for(held, 1.0)
