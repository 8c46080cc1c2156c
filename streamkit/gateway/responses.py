"""The response consumer: one consumer group of all gateway instances over the response topic.

It is a plain aiokafka consumer in the worker's event loop, not a Faust agent: Faust's
consumer fixes fetch_max_wait_ms at 1500, and the dev broker holds every fetch for its
full wait (measured: about 700 ms per hop), while this path needs a few milliseconds. Being
in the loop also means the assignment, read for every correlation id, is never read
across threads.

Offsets are committed only up to the first reply whose hand-off is still in flight, so a
reply is never lost to a crash between reading it and handing it over: the next owner of
the partition reads it again (the parking instance then drops the duplicate as late).
Revocation fails no parked request: every rebalance revokes every partition, and the
replies for requests parked here still come back, through a hand-off if need be.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable, cast

import orjson
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from ..clients import FATAL_FETCH_ERRORS, Clients, Rebalance, RetryLog
from ..config import Settings
from ..envelope import ReplyEnvelope
from ..errors import EnvelopeError
from ..wire import RequestConsumer
from .handoff import HandOff
from .settings import GatewaySettings

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0

# deliver(reply, handed_off) -> True when a request parked here took it
Deliver = Callable[[ReplyEnvelope, bool], bool]
IsParked = Callable[[str], bool]


class ResponseConsumer:
    """Consumes the response topic; delivers replies locally or hands them off."""

    def __init__(self, settings: Settings, gsettings: GatewaySettings, me: str,
                 is_parked: IsParked, deliver: Deliver, handoff: HandOff,
                 failed: Callable[[BaseException], None]) -> None:
        self.settings, self.gsettings, self.me = settings, gsettings, me.rstrip("/")
        self.failed = failed  # called when the consumer stops on an error
        self.topic = gsettings.responses
        self.group_id = f"{gsettings.gateway_id}-responses"
        self.is_parked, self.deliver, self.handoff = is_parked, deliver, handoff
        self.owned: frozenset[int] = frozenset()
        # Kept through a revocation: ids minted mid-rebalance most likely come back here.
        self.hint: frozenset[int] = frozenset()
        self.assigned = False
        self.generations = 0
        self.counters = {"replies": 0, "bad_replies": 0, "late_here": 0, "handed_off": 0}
        self._processed: dict[TopicPartition, int] = {}
        self._unresolved: dict[TopicPartition, set[int]] = {}
        self._committed: dict[TopicPartition, int] = {}
        self._consumer = cast(RequestConsumer, None)  # made in start()
        self._task: asyncio.Task | None = None
        self._last_commit = time.monotonic()

    async def start(self) -> None:
        # Fetches made by streamkit; the aiokafka member keeps the group and the offsets.
        self._consumer = RequestConsumer(
            Clients(self.settings).member(self.group_id, self.gsettings.fetch_wait_ms),
            self.gsettings.fetch_wait_ms, self.settings.isolation_level == "read_committed",
            close_timeout_s=self.settings.close_timeout_s)
        await self._consumer.start()
        self._consumer.subscribe([self.topic], listener=Rebalance(self._on_revoked, self._on_assigned))
        self._task = asyncio.create_task(self._run())
        self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task) -> None:
        # Nothing awaits the task before stop: its error is said here.
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            log.error("the response consumer stopped", exc_info=exc)
            self.failed(exc)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._consumer is not None:
            await self._commit()
            await self._consumer.stop()

    @property
    def alive(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _run(self) -> None:
        consumer = self._consumer
        retries = RetryLog(log, "response fetch")
        while True:
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=2000)
            except FATAL_FETCH_ERRORS:
                raise  # the gateway stops (_ended)
            except KafkaError as exc:
                retries.failed(exc)
                await asyncio.sleep(0.2)
                continue
            retries.recovered()
            for tp, records in batches.items():
                for rec in records:
                    try:
                        self._handle(tp, rec.offset, rec.key, rec.value)
                    except Exception:  # one reply must not end the reading of all others
                        self.counters["bad_replies"] += 1
                        log.exception("reply at %s[%d]@%d not handled", tp.topic,
                                      tp.partition, rec.offset)
                if records:
                    self._processed[tp] = records[-1].offset + 1
            if time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
                await self._commit()

    def _handle(self, tp: TopicPartition, offset: int, key: bytes | None, value: bytes | None
                ) -> None:
        self.counters["replies"] += 1
        try:
            raw = orjson.loads(value) if value else None
            raw = raw if isinstance(raw, dict) else {}
            reply = ReplyEnvelope.from_dict(raw, key)
        except (orjson.JSONDecodeError, EnvelopeError) as exc:
            self.counters["bad_replies"] += 1
            log.warning("undecodable reply at %s[%d]@%d: %s", tp.topic, tp.partition, offset, exc)
            return
        target = (reply.instance or "").rstrip("/")
        if self.is_parked(reply.id) or target == self.me or not HandOff.valid_target(target):
            if not self.deliver(reply, False):
                self.counters["late_here"] += 1
            return
        unresolved = self._unresolved.setdefault(tp, set())
        unresolved.add(offset)
        self.counters["handed_off"] += 1
        # The record as it came, unless it had to be completed (an id from its key).
        payload = value if value is not None and raw.get("id") == reply.id else reply.encode()
        self.handoff.submit(target, payload, lambda: unresolved.discard(offset))

    def _committable(self) -> dict[TopicPartition, int]:
        out = {}
        assignment = self._consumer.assignment() if self._consumer else set()
        for tp, done in self._processed.items():
            if tp not in assignment:
                continue
            pending = self._unresolved.get(tp)
            offset = min(pending) if pending else done
            if self._committed.get(tp) != offset:
                out[tp] = offset
        return out

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        offsets = self._committable()
        if not offsets:
            return
        try:
            # Bounded: with no broker answering, aiokafka looks for the coordinator for ever.
            await asyncio.wait_for(self._consumer.commit(offsets), self.settings.close_timeout_s)
            self._committed.update(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError, TimeoutError) as exc:
            # The partitions moved on; their next owner re-reads from the last commit.
            log.info("response offsets not committed: %r", exc)

    # rebalance ---------------------------------------------------------------------
    async def _on_revoked(self) -> None:
        self.assigned = False
        self.owned = frozenset()
        await self._commit()

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        mine = {tp for tp in assigned if tp.topic == self.topic}
        for tp in list(self._processed):
            if tp not in mine:
                self._processed.pop(tp, None)
                self._committed.pop(tp, None)
        self.owned = self.hint = frozenset(tp.partition for tp in mine)
        self.generations += 1
        self.assigned = True
        log.info("response partitions assigned: %s", sorted(self.owned))
