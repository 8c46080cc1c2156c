"""The consumer behind @streamkit.service: one per app, over every request topic it serves.

A plain aiokafka consumer in the worker's event loop rather than a Faust agent, for the
same reason as the gateway's response consumer (responses.py): Faust's consumer waits up
to 1500 ms per fetch. At-least-once: a request's offset is committed only after its reply
and the record of that reply (replies.py) are acknowledged; a redelivered request, and a
retry with the same request id, are answered from that record without running the handler.
Exactly-once (STREAMKIT_PROCESSING_GUARANTEE=exactly_once): each request partition answers
in transactions of its own producer, which carry the partition's offsets
(transactions.py); this consumer then commits nothing itself.
"""
from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, cast

from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from mode import Service

from ..clients import FATAL_FETCH_ERRORS, Clients, Rebalance, RetryLog, stop_client
from ..config import Settings
from ..http import json_response
from ..ops.openapi import get_operation
from ..parts import Part, runs_as_worker
from ..routing import Routes
from ..state.restore import restore
from ..topics import TopicAdmin, TopicSpec, dead_letter_topic
from ..wire import RequestConsumer, RequestProducer
from .handler import HandlerSpec
from .partition import PartitionWorker
from .replies import ReplyLog, replies_topic
from .transactions import PartitionProducers

log = logging.getLogger(__name__)

PAUSE_AT_BATCHES = 4  # fetched batches queued for one partition before it stops fetching
_ATTR = "_streamkit_service_runner"


def runner_for(app: Any) -> "ServiceRunner":
    """The app's service runner, created (and added to the app's services) on first use."""
    runner = getattr(app, _ATTR, None)
    if runner is None:
        runner = ServiceRunner(app, beacon=app.beacon)
        setattr(app, _ATTR, runner)
        # Added before Faust's own services, so its topics exist before anything subscribes.
        app.add_dependency(runner)
        # A plain faust.App works too; a streamkit.App also serves /services/stats,
        # documents it, and waits for the request consumer's assignment before /ready.
        if hasattr(app, "add_part"):
            app.add_part(runner)
    return runner


class ServiceRunner(Service, Part):
    """Consumes the request topics of an app's handlers and sends their replies."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_id = app.conf.id
        self._app = app
        self.settings: Settings = getattr(app, "settings", None) or Settings.from_env()
        self.clients = Clients(self.settings)
        self.group_id = f"{self.app_id}-services"
        self.state_dir = Path(self.settings.data_dir) / self.app_id / "service-replies"
        self.specs: dict[str, HandlerSpec] = {}
        self.counters = dict.fromkeys(("requests", "handled", "errors", "replayed", "expired",
                                       "bad_requests", "send_failed", "unavailable_retries",
                                       "replies_restored", "replies_expired", "undeliverable",
                                       "partition_failed"), 0)
        self.assigned = False
        self.partitions: set[TopicPartition] = set()
        self.inflight: dict[str, asyncio.Future] = {}
        self.offsets: dict[TopicPartition, int] = {}  # next offset to commit, per partition
        self._workers: dict[TopicPartition, PartitionWorker] = {}
        self._generation = 0
        self._last_commit = time.monotonic()
        self._task: asyncio.Task | None = None
        # Exactly-once: the transactional producer of each request partition held here.
        self.txn = PartitionProducers(self.clients, self.app_id) \
            if self.settings.exactly_once else None
        # Made when the service starts.
        self.producer = cast(RequestProducer, None)
        self.consumer = cast(RequestConsumer, None)
        self.restorer = cast(AIOKafkaConsumer, None)

    def add(self, spec: HandlerSpec) -> None:
        if spec.topic in self.specs:
            raise ValueError(f"{spec.topic!r} already has a handler")
        if self.producer is not None:
            raise RuntimeError("add services before the worker starts")
        self.specs[spec.topic] = spec

    # lifecycle -------------------------------------------------------------------------
    async def on_start(self) -> None:
        if not runs_as_worker(self._app):
            return  # a client of the services sends requests; it answers none
        s, clients = self.settings, self.clients
        async with TopicAdmin(s) as admin:
            counts = await admin.ensure([TopicSpec(t, s.partitions) for t in sorted(self.specs)]
                                        + [TopicSpec(dead_letter_topic(self.app_id), s.partitions)])
            # A request and its retries share a partition, so its reply record lives in
            # the same partition of the replies changelog.
            await admin.ensure([TopicSpec(replies_topic(self.app_id, t), counts[t], compact=True)
                                for t in sorted(self.specs)])
        if self.txn is not None:
            await self.txn.check_broker()
        # The requests and the replies go through produce and fetch requests made by
        # streamkit over the aiokafka clients' connections (streamkit.wire).
        self.producer = RequestProducer(clients.producer(), close_timeout_s=s.close_timeout_s)
        self.restorer = clients.reader(s.read_to_end_wait_ms, reset="none")
        self.consumer = RequestConsumer(clients.member(self.group_id, s.request_fetch_wait_ms),
                                        s.request_fetch_wait_ms,
                                        s.isolation_level == "read_committed",
                                        close_timeout_s=s.close_timeout_s)
        await asyncio.gather(*(client.start() for client in
                               (self.producer, self.restorer, self.consumer)))
        self._rebalance = Rebalance(self._on_revoked, self._on_assigned)
        self.consumer.subscribe(sorted(self.specs), listener=self._rebalance)
        self._task = asyncio.create_task(self._run())
        log.info("services of %s on %s (group %s)", self.app_id, sorted(self.specs), self.group_id)

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.consumer is not None:  # it started
            await self._on_revoked()
            await self.consumer.stop()
        if self.restorer is not None:
            await stop_client(self.restorer, self.settings.close_timeout_s)
        if self.producer is not None:
            await self.producer.stop()

    # the part of the worker -----------------------------------------------------------
    def ready(self) -> bool:
        return self.assigned

    def keeps_state(self) -> bool:
        return bool(self.specs)  # the record of each request partition's replies

    def openapi_paths(self) -> dict[str, Any]:
        return {"/services/stats": get_operation("the service consumer's assignment and counters")}

    def install_routes(self, routes: Routes) -> None:
        async def stats(request: web.Request) -> web.Response:
            return json_response({
                "app": self.app_id, "group": self.group_id, "assigned": self.assigned,
                "topics": sorted(self.specs),
                "partitions": sorted([tp.topic, tp.partition] for tp in self.partitions),
                **self.counters})

        routes.get("/services/stats", stats)

    # the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        """Fetch, and hand each partition's records to that partition's own worker, so a
        slow request holds up only the requests behind it in its partition."""
        consumer = self.consumer
        retries = RetryLog(log, "request fetch")
        while True:
            generation = self._generation
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
            except FATAL_FETCH_ERRORS as exc:
                await self.crash(exc)
                return
            except KafkaError as exc:
                retries.failed(exc)
                await asyncio.sleep(0.2)
                continue
            retries.recovered()
            if generation != self._generation:
                # The assignment changed while this fetch ran: its records may come from
                # the new assignment, whose positions are already past them. Nothing here
                # has handled them, so read them again.
                self._seek_back(batches)
                continue
            for tp, recs in batches.items():
                worker = self._workers.get(tp)
                if worker is None:
                    # Fetched before the partition's worker exists (aiokafka fetches as
                    # soon as it has an assignment, while the assignment callback still
                    # restores): read them again once it does.
                    self._seek_back({tp: recs})
                    continue
                worker.queue.put_nowait(recs)
                if worker.queue.qsize() >= PAUSE_AT_BATCHES:
                    consumer.pause(tp)
            if time.monotonic() - self._last_commit >= self.settings.commit_interval_ms / 1000:
                await self._commit()

    def _seek_back(self, batches: dict[TopicPartition, list]) -> None:
        """Put the position of each partition still assigned back to its first record."""
        assigned = self.consumer.assignment()
        for tp, records in batches.items():
            if records and tp in assigned:
                self.consumer.seek(tp, records[0].offset)

    def handled(self, tp: TopicPartition, next_offset: int, worker: PartitionWorker) -> None:
        """A partition worker's records before next_offset are answered and recorded."""
        if self.txn is None:  # with exactly-once, the transaction has committed the offset
            self.offsets[tp] = next_offset
        if worker.queue.qsize() < PAUSE_AT_BATCHES and tp in self.consumer.paused():
            self.consumer.resume(tp)

    def retry_from(self, tp: TopicPartition, offset: int, worker: PartitionWorker) -> None:
        """Read a partition again from offset (its replies were not all acknowledged)."""
        self.counters["send_failed"] += 1
        while not worker.queue.empty():
            worker.queue.get_nowait()
        if not worker.stopping:
            self.consumer.seek(tp, offset)

    def producer_lost(self, tp: TopicPartition, worker: PartitionWorker,
                      exc: BaseException) -> None:
        """A partition whose transactional producer was fenced (or broke): its worker has
        stopped, nothing of its last transaction is visible. Rejoin the group, whose
        assignment says who answers the partition now (this worker again, with a fresh
        producer, if nobody else)."""
        log.warning("request partition %s[%d] was fenced, or its producer failed; rejoining "
                    "the group: %r", tp.topic, tp.partition, exc)
        if self._workers.get(tp) is worker:
            del self._workers[tp]
            self.consumer.pause(tp)
            worker.replies.close()
        # aiokafka has no call to rejoin; subscribing again to the same topics is one.
        self.consumer.subscribe(sorted(self.specs), listener=self._rebalance)

    def failed(self, tp: TopicPartition, worker: PartitionWorker, exc: BaseException) -> None:
        """A request partition's worker stopped on an error it cannot answer for: the
        worker process stops with it (a supervisor starts it again, and the partition's
        requests from its committed offset are answered then, or by another worker)."""
        self.counters["partition_failed"] += 1
        self.add_future(self.crash(exc))

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        if self.txn is not None:
            return
        assigned = self.consumer.assignment()
        offsets = {tp: off for tp, off in self.offsets.items() if tp in assigned}
        self.offsets.clear()
        if not offsets:
            return
        try:
            # Bounded: with no broker answering, aiokafka looks for the coordinator for ever.
            await asyncio.wait_for(self.consumer.commit(offsets), self.settings.close_timeout_s)
        except (CommitFailedError, IllegalStateError, KafkaError, TimeoutError) as exc:
            log.warning("request offsets not committed, they will be redelivered: %r", exc)

    # rebalance -------------------------------------------------------------------------
    async def _on_revoked(self) -> None:
        """Let each partition finish the request in hand, drop what is queued (the next
        assignment reads it again from the committed offset), and commit."""
        self.assigned = False
        self._generation += 1
        workers, self._workers = self._workers, {}
        for worker in workers.values():
            worker.stop()
        await asyncio.gather(*(w.task for w in workers.values()), return_exceptions=True)
        await self._commit()
        for worker in workers.values():
            worker.replies.close()
        if self.txn is not None:
            await self.txn.close()

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        """Restore each partition's reply record before its first request is handled.
        The partitions stay paused meanwhile, so that nothing is fetched for them. If that
        fails, the worker process stops: the group's callback would only log the error, and
        the partitions would stay paused, their requests unanswered."""
        try:
            await self._assign(assigned)
        except Exception as exc:
            log.exception("request partitions %s not taken up",
                          sorted((tp.topic, tp.partition) for tp in assigned))
            await self.crash(exc)

    async def _assign(self, assigned: set[TopicPartition]) -> None:
        self.consumer.pause(*assigned)
        mine = sorted((tp for tp in assigned if tp.topic in self.specs),
                      key=lambda tp: (tp.topic, tp.partition))
        if self.txn is not None:
            # Before the replies are restored and the offsets read: starting the
            # partitions' producers fences their previous owners and settles their open
            # transactions.
            await self.txn.open(mine)
        logs = {}
        try:
            for tp in mine:
                changelog = TopicPartition(replies_topic(self.app_id, tp.topic), tp.partition)
                path = self.state_dir / tp.topic / str(tp.partition)
                logs[tp] = ReplyLog(path, changelog, self.specs[tp.topic].dedupe_ms).open()
            self.counters["replies_restored"] += await restore(
                self.restorer, {r.changelog: r.store for r in logs.values()})
            if self.txn is not None:
                await self._seek_committed(mine)
        except Exception:
            for r in logs.values():
                r.close()
            raise
        self.partitions = set(assigned)
        for tp in mine:
            self._workers[tp] = PartitionWorker(self, tp, self.specs[tp.topic], logs[tp],
                                                self.txn[tp] if self.txn is not None else None)
        self.consumer.resume(*assigned)
        self.assigned = True
        log.info("request partitions assigned: %s",
                 sorted((tp.topic, tp.partition) for tp in assigned))

    async def _seek_committed(self, tps: list[TopicPartition]) -> None:
        """Start at the committed offsets, read now that the previous owners' transactions
        are settled (an offset fetched earlier may predate their last commit)."""
        for tp in tps:
            offset = await self.consumer.committed(tp)
            if offset is not None:
                self.consumer.seek(tp, offset)
