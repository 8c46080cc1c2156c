"""The consumer behind @streamkit.service: one per app, over every request topic it serves.

A plain aiokafka consumer in the worker's event loop rather than a Faust agent, for the
same reason as the gateway's response consumer (responses.py): Faust's consumer waits up
to 1500 ms per fetch, and the dev broker always waits that long. At-least-once: a request's
offset is committed only after its reply is acknowledged; a redelivered request is
answered from the reply cache.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from aiokafka.structs import ConsumerRecord
from mode import Service

from ..config import Settings
from ..http import json_response
from ..routing import Routes
from ..serde import dumps
from ..topics import TopicAdmin, TopicSpec, dead_letter_topic
from .envelope import EnvelopeError, ReplyEnvelope, RequestEnvelope
from .openapi import service_paths
from .service import HandlerSpec, ReplyCache, ServiceError, ServiceRequest, build_reply, readdress
from .settings import GatewaySettings

log = logging.getLogger(__name__)

COMMIT_INTERVAL_S = 1.0
PAUSE_AT_BATCHES = 4  # fetched batches queued for one partition before it stops fetching
_ATTR = "_streamkit_service_runner"

Outgoing = tuple[str, ReplyEnvelope]


def runner_for(app: Any) -> "ServiceRunner":
    """The app's service runner, created (and added to the app's services) on first use."""
    runner = getattr(app, _ATTR, None)
    if runner is None:
        runner = ServiceRunner(app, beacon=app.beacon)
        setattr(app, _ATTR, runner)
        # Added before Faust's own services, so its topics exist before anything subscribes.
        app.add_dependency(runner)
        if hasattr(app, "add_routes"):
            app.add_routes(runner.install_routes)
        # A plain faust.App works too; a streamkit.App also documents the route and waits
        # for the request consumer's assignment before /ready says 200.
        if hasattr(app, "openapi_paths"):
            app.openapi_paths.update(service_paths())
            app.readiness_checks.append(lambda: runner.assigned)
    return runner


def _key(key: str | bytes | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


class ServiceRunner(Service):
    """Consumes the request topics of an app's handlers and sends their replies."""

    def __init__(self, app: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.app_id = app.conf.id
        self.settings: Settings = getattr(app, "settings", None) or Settings.from_env()
        self.fetch_wait_ms = GatewaySettings.from_env(profile=self.settings.profile).fetch_wait_ms
        self.group_id = f"{self.app_id}-services"
        self.specs: dict[str, HandlerSpec] = {}
        self.caches: dict[str, ReplyCache] = {}  # per request topic
        self.counters = dict.fromkeys(("requests", "handled", "errors", "replayed", "expired",
                                       "bad_requests", "send_failed"), 0)
        self.assigned = False
        self.partitions: set[TopicPartition] = set()
        self._inflight: dict[str, asyncio.Future] = {}
        self._offsets: dict[TopicPartition, int] = {}
        self._workers: dict[TopicPartition, _Worker] = {}
        self._generation = 0
        self._last_commit = time.monotonic()
        self._task: asyncio.Task | None = None
        self.producer: AIOKafkaProducer | None = None
        self.consumer: AIOKafkaConsumer | None = None

    def add(self, spec: HandlerSpec) -> None:
        if spec.topic in self.specs:
            raise ValueError(f"{spec.topic!r} already has a handler")
        if self.producer is not None:
            raise RuntimeError("add services before the worker starts")
        self.specs[spec.topic] = spec
        self.caches[spec.topic] = ReplyCache(spec.dedupe_size)

    # lifecycle -------------------------------------------------------------------------
    async def on_start(self) -> None:
        s = self.settings
        common = dict(bootstrap_servers=s.bootstrap_servers, **s.security.client_kwargs())
        async with TopicAdmin(s) as admin:
            await admin.ensure([TopicSpec(t, s.partitions) for t in sorted(self.specs)]
                               + [TopicSpec(dead_letter_topic(self.app_id), s.partitions)])
        self.producer = AIOKafkaProducer(acks="all", linger_ms=0, **common)
        self.consumer = AIOKafkaConsumer(
            group_id=self.group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_wait_ms, session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            rebalance_timeout_ms=max(s.session_timeout_ms, 30000), **common)
        await self.producer.start()
        await self.consumer.start()
        self.consumer.subscribe(sorted(self.specs), listener=_Listener(self))
        self._task = asyncio.create_task(self._run())
        log.info("services of %s on %s (group %s)", self.app_id, sorted(self.specs), self.group_id)

    async def on_stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self.consumer is not None:
            await self._on_revoked()
            await self.consumer.stop()
        if self.producer is not None:
            await self.producer.stop()

    async def send(self, topic: str, key: str | bytes | None, value: Any) -> None:
        await self.producer.send_and_wait(topic, dumps(value), key=_key(key))

    def install_routes(self, routes: Routes) -> None:
        async def stats(request: web.Request) -> web.Response:
            return json_response({
                "app": self.app_id, "group": self.group_id, "assigned": self.assigned,
                "topics": sorted(self.specs),
                "cached_replies": sum(map(len, self.caches.values())),
                "partitions": sorted([tp.topic, tp.partition] for tp in self.partitions),
                **self.counters})

        routes.get("/services/stats", stats)

    # the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        """Fetch, and hand each partition's records to that partition's own worker, so a
        slow request holds up only the requests behind it in its partition."""
        consumer = self.consumer
        while True:
            generation = self._generation
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
            except KafkaError as exc:
                log.warning("request fetch failed, retrying: %r", exc)
                await asyncio.sleep(0.2)
                continue
            if generation != self._generation:
                # Fetched under the previous assignment: the new one restarts every
                # partition from its committed offset, so these are read again.
                continue
            for tp, recs in batches.items():
                worker = self._workers.get(tp)
                if worker is None or not recs:
                    continue
                worker.queue.put_nowait(recs)
                if worker.queue.qsize() >= PAUSE_AT_BATCHES:
                    consumer.pause(tp)
            if time.monotonic() - self._last_commit >= COMMIT_INTERVAL_S:
                await self._commit()

    async def _work(self, tp: TopicPartition, worker: "_Worker") -> None:
        """Handle one partition's records in order; its offset moves once replies are acked."""
        spec = self.specs[tp.topic]
        while not worker.stopping:
            records = await worker.queue.get()
            acks, last = [], None
            for rec in records:
                if worker.stopping:
                    break
                out = await self._handle(spec, tp, rec)
                if out is not None:
                    topic, reply = out
                    acks.append(await self.producer.send(topic, reply.encode(),
                                                         key=reply.id.encode()))
                last = rec.offset
            if last is None:
                continue
            try:
                await asyncio.gather(*acks)
            except KafkaError as exc:
                # Read the batch again: the handlers' replies come from the reply cache.
                self.counters["send_failed"] += 1
                log.warning("replies for %s[%d] not acknowledged, retrying: %r",
                            tp.topic, tp.partition, exc)
                while not worker.queue.empty():
                    worker.queue.get_nowait()
                if not worker.stopping:
                    self.consumer.seek(tp, records[0].offset)
                await asyncio.sleep(0.2)
                continue
            self._offsets[tp] = last + 1
            if worker.queue.qsize() < PAUSE_AT_BATCHES and tp in self.consumer.paused():
                self.consumer.resume(tp)

    async def _handle(self, spec: HandlerSpec, tp: TopicPartition, rec: ConsumerRecord
                      ) -> Outgoing | None:
        self.counters["requests"] += 1
        try:
            env = RequestEnvelope.decode(rec.value)
        except EnvelopeError as exc:
            return await self._bad_request(exc, tp, rec)
        if spec.skip_expired and env.deadline_ms and time.time() * 1000 > env.deadline_ms:
            self.counters["expired"] += 1
            return None
        req = ServiceRequest(env, tp.topic, tp.partition, rec.offset, self)
        keys = [f"id:{env.id}"]
        if spec.request_id is not None:
            try:
                rid = spec.request_id(req)
            except Exception as exc:  # a key function that fails must not stop the service
                log.warning("request_id failed for %r: %r", req, exc)
                rid = None
            if rid is not None:
                keys.append(f"rq:{spec.topic}:{rid}")
        cache = self.caches[spec.topic]
        for k in keys:
            done = cache.get(k)
            if done is None and k in self._inflight:
                done = await asyncio.shield(self._inflight[k])
            if done is not None:
                self.counters["replayed"] += 1
                return env.reply_to, readdress(done, env)
        return env.reply_to, await self._run_handler(spec, env, req, keys)

    async def _run_handler(self, spec: HandlerSpec, env: RequestEnvelope, req: ServiceRequest,
                           keys: list[str]) -> ReplyEnvelope:
        future = asyncio.get_running_loop().create_future()
        for k in keys:
            self._inflight[k] = future
        try:
            try:
                outcome = await spec.handler(req)
            except ServiceError as exc:
                outcome = exc
            except Exception as exc:
                log.exception("handler for %s failed on %r", spec.topic, req)
                outcome = exc
            reply = build_reply(env, outcome, self.app_id, spec.table)
            self.counters["errors" if reply.status >= 500 else "handled"] += 1
            if reply.status < 500:  # a server failure may succeed when retried
                for k in keys:
                    self.caches[spec.topic].put(k, reply)
            future.set_result(reply)
            return reply
        finally:
            for k in keys:
                if self._inflight.get(k) is future:
                    del self._inflight[k]
            if not future.done():
                future.cancel()

    async def _bad_request(self, exc: EnvelopeError, tp: TopicPartition, rec: ConsumerRecord
                           ) -> Outgoing | None:
        """A request that is not a valid envelope goes to the app's dead letters (and gets a
        400 reply when enough of it could be read to address one)."""
        self.counters["bad_requests"] += 1
        log.warning("bad request at %s[%d]@%d: %s", tp.topic, tp.partition, rec.offset, exc)
        headers = [("streamkit.error", f"EnvelopeError: {exc}".encode()[:2000]),
                   ("streamkit.stage", b"decode"), ("streamkit.topic", tp.topic.encode()),
                   ("streamkit.partition", str(tp.partition).encode()),
                   ("streamkit.offset", str(rec.offset).encode()),
                   ("streamkit.timestamp", str(rec.timestamp).encode())]
        await self.producer.send_and_wait(dead_letter_topic(self.app_id), rec.value, key=rec.key,
                                          headers=headers)
        cid, reply_to = exc.partial.get("id"), exc.partial.get("reply_to")
        if not (isinstance(cid, str) and cid and isinstance(reply_to, str) and reply_to):
            return None  # nobody to answer
        return reply_to, ReplyEnvelope(id=cid, status=400, instance=exc.partial.get("instance"),
                                       error={"code": "bad_request", "message": str(exc)})

    async def _commit(self) -> None:
        self._last_commit = time.monotonic()
        assigned = self.consumer.assignment()
        offsets = {tp: off for tp, off in self._offsets.items() if tp in assigned}
        self._offsets.clear()
        if not offsets:
            return
        try:
            await self.consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError, KafkaError) as exc:
            log.warning("request offsets not committed, they will be redelivered: %r", exc)

    # rebalance -------------------------------------------------------------------------
    async def _on_revoked(self) -> None:
        """Let each partition finish the request in hand, drop what is queued (it is read
        again after the assignment), and commit."""
        self.assigned = False
        self._generation += 1
        workers, self._workers = self._workers, {}
        for worker in workers.values():
            worker.stop()
        await asyncio.gather(*(w.task for w in workers.values()), return_exceptions=True)
        await self._commit()

    def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        self.partitions = set(assigned)
        for tp in assigned:
            if tp.topic in self.specs:
                self._workers[tp] = _Worker(self, tp)
        self.assigned = True
        log.info("request partitions assigned: %s",
                 sorted((tp.topic, tp.partition) for tp in assigned))


class _Worker:
    """The task that handles one partition's requests, and its queue of fetched batches."""

    def __init__(self, runner: ServiceRunner, tp: TopicPartition) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stopping = False
        self.task = asyncio.create_task(runner._work(tp, self))

    def stop(self) -> None:
        """Finish the request in hand (and send its reply), drop the queued ones."""
        self.stopping = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait([])  # wakes a worker that waits for records


class _Listener(ConsumerRebalanceListener):
    def __init__(self, runner: ServiceRunner) -> None:
        self.runner = runner

    async def on_partitions_revoked(self, revoked) -> None:
        await self.runner._on_revoked()

    async def on_partitions_assigned(self, assigned) -> None:
        self.runner._on_assigned(set(assigned))
