"""One request partition of a service: its requests handled in order, each reply sent and
recorded before the partition's offset moves past the request (with exactly-once, the
handlers' records, the replies, their record and the offset in one transaction)."""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Protocol

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError, KafkaTimeoutError, ProducerClosed, ProducerFenced
from aiokafka.structs import ConsumerRecord

from ..clients import NOT_AUTHORIZED
from ..envelope import ReplyEnvelope, RequestEnvelope
from ..errors import EnvelopeError, ServiceError, StoreUnavailable
from ..serde import dumps
from ..topics import dead_letter_topic
from ..wire import RequestProducer
from .handler import HandlerSpec, ServiceRequest, build_reply, readdress
from .replies import Item, ReplyLog

log = logging.getLogger(__name__)

UNAVAILABLE_RETRY_S = 0.2  # pause before a handler that met a moving store runs again
RETRY_S = 0.2  # pause before a batch whose replies failed is read again
EXPIRE_EVERY_S = 60.0
# The largest reply sent as it is: a record of it must fit a produce request (1 MiB, the
# producers' and the broker's default), and so must the record of it kept for request ids.
MAX_REPLY_BYTES = 1_000_000

Outgoing = tuple[str, ReplyEnvelope]


def now_ms() -> int:
    return int(time.time() * 1000)


class PartitionHost(Protocol):
    """What a partition worker needs of the service runner that holds it."""

    app_id: str
    group_id: str
    producer: RequestProducer
    counters: dict[str, int]
    inflight: dict[str, asyncio.Future]  # requests being handled, by dedupe key

    def handled(self, tp: TopicPartition, next_offset: int, worker: "PartitionWorker") -> None:
        """The partition's records before next_offset are answered (and recorded)."""

    def retry_from(self, tp: TopicPartition, offset: int, worker: "PartitionWorker") -> None:
        """Read the partition again from offset."""

    def producer_lost(self, tp: TopicPartition, worker: "PartitionWorker",
                      exc: BaseException) -> None:
        """The partition's transactional producer can no longer be used (fenced by another
        worker's, or broken): the worker has stopped."""

    def failed(self, tp: TopicPartition, worker: "PartitionWorker", exc: BaseException) -> None:
        """The worker met an error it cannot answer for and has stopped."""


class _Abandoned(Exception):
    """The partition is being revoked while the request waited: leave it unanswered, so
    that its next owner handles it."""


class PartitionWorker:
    """The task that handles one partition's requests, and its queue of fetched batches.

    With a transactional producer (exactly-once), each fetched batch is answered in one
    transaction; otherwise through the runner's producer, at least once."""

    def __init__(self, runner: PartitionHost, tp: TopicPartition, spec: HandlerSpec,
                 replies: ReplyLog, transactional: AIOKafkaProducer | None = None) -> None:
        self.runner, self.tp, self.spec, self.replies = runner, tp, spec, replies
        self.producer: Any = transactional or runner.producer
        self._answer = self._answer_at_least_once if transactional is None \
            else self._answer_in_transaction
        self.queue: asyncio.Queue = asyncio.Queue()
        self.stopping = False
        self.unflushed: list[Item] = []  # reply records not yet acknowledged
        self._last_expiry = time.monotonic()
        self.task = asyncio.create_task(self._work())

    async def send(self, topic: str, key: str | bytes | None, value: Any) -> asyncio.Future:
        """A handler's record (ServiceRequest.send), handed to this partition's producer;
        the future is its acknowledgement, awaited before the request's reply."""
        return await self.producer.send(topic, dumps(value),
                                        key=key.encode() if isinstance(key, str) else key)

    def stop(self) -> None:
        """Finish the request in hand (and send its reply), drop the queued ones."""
        self.stopping = True
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait([])  # wakes a worker that waits for records

    async def _work(self) -> None:
        while not self.stopping:
            records = await self.queue.get()
            if not records:
                continue
            try:
                await self._answer(records)
            except KafkaError as exc:
                if _undeliverable(exc) or isinstance(exc, NOT_AUTHORIZED):
                    self._stop(exc)
                    return
                # A write that passes (a dead letter, expired replies' tombstones) met a
                # broker away: the batch is read again, as when its replies were not
                # acknowledged.
                self._retry(records[0].offset, exc)
                await asyncio.sleep(RETRY_S)
            except Exception as exc:  # nothing past the last answered request is committed
                self._stop(exc)
                return

    def _stop(self, exc: BaseException) -> None:
        log.error("request partition %s[%d] stopped", self.tp.topic, self.tp.partition,
                  exc_info=exc)
        self.stopping = True
        self.runner.failed(self.tp, self, exc)

    async def _handled(self, records: list[ConsumerRecord]
                       ) -> AsyncIterator[tuple[ConsumerRecord, Outgoing | None]]:
        """Each record with its reply (None: nobody to answer), in order, until the
        partition stops or a request is abandoned."""
        for rec in records:
            if self.stopping:
                return
            try:
                out = await self._handle(rec)
            except _Abandoned:
                return
            yield rec, out

    async def _answer_at_least_once(self, records: list[ConsumerRecord]) -> None:
        sent: list[tuple[ConsumerRecord, str, ReplyEnvelope, asyncio.Future]] = []
        last = None
        async for rec, out in self._handled(records):
            if out is not None:
                topic, reply = out
                try:
                    # The record of a reply is written before the reply: nobody sees
                    # a reply that a redelivery after a crash would not repeat.
                    await self._flush()
                except Exception as exc:
                    self._retry(rec.offset, exc)
                    await asyncio.sleep(RETRY_S)
                    break
                sent.append((rec, topic, reply, await self._send_reply(topic, reply)))
            last = rec.offset
        if last is None:
            return
        results = await asyncio.gather(*(f for *_, f in sent), return_exceptions=True)
        failed = [(rec, topic, reply, error) for (rec, topic, reply, _), error
                  in zip(sent, results) if isinstance(error, BaseException)]
        again = [error for *_, error in failed if not _undeliverable(error)]
        if again:  # the broker away, a leader moving: the batch is read again
            self._retry(records[0].offset, again[0])
            await asyncio.sleep(RETRY_S)
            return
        for rec, topic, reply, error in failed:
            await self._undelivered(rec, topic, reply, error)
        self.runner.handled(self.tp, last + 1, self)
        if time.monotonic() - self._last_expiry >= EXPIRE_EVERY_S:
            await self._expire()

    async def _answer_in_transaction(self, records: list[ConsumerRecord]) -> None:
        """Answer a batch in one transaction: what the handlers send, the replies, their
        record and expiries, and the partition's next offset. Only once it has committed
        does the reply store take the record: an aborted batch leaves no trace anywhere
        and is read again."""
        producer, last = self.producer, None
        try:
            await producer.begin_transaction()
            acks = []
            async for rec, out in self._handled(records):
                if out is not None:
                    topic, reply = out
                    acks.append(await producer.send(topic, reply.encode(), key=reply.id.encode()))
                last = rec.offset
            if time.monotonic() - self._last_expiry >= EXPIRE_EVERY_S:
                self._last_expiry = time.monotonic()
                self.unflushed += self._expired()
            recorded, self.unflushed = self.unflushed, []
            acks += await self._send_recorded(recorded)
            metas = await asyncio.gather(*acks)
            if last is not None:
                await producer.send_offsets_to_transaction({self.tp: last + 1},
                                                           self.runner.group_id)
            await producer.commit_transaction()
        except Exception as exc:
            self.replies.discard()
            self.unflushed = []
            # Fenced: another producer of this partition's id started (its owner answers
            # now). A producer that cannot abort cannot begin anything either.
            if isinstance(exc, ProducerFenced) or not await self._abort():
                self.stopping = True
                self.runner.producer_lost(self.tp, self, exc)
                return
            self._retry(records[0].offset, exc)
            await asyncio.sleep(RETRY_S)
            return
        if recorded:
            self.replies.apply(recorded, max(m.offset for m in metas[-len(recorded):]) + 1)
        if last is not None:
            self.runner.handled(self.tp, last + 1, self)

    async def _abort(self) -> bool:
        try:
            await self.producer.abort_transaction()
            return True
        except Exception as exc:  # the partition's next producer aborts it when it starts
            log.warning("could not abort the transaction of %s[%d]: %r",
                        self.tp.topic, self.tp.partition, exc)
            return False

    def _retry(self, offset: int, exc: BaseException) -> None:
        """Read the partition again from offset: what was answered is answered from the
        record of its reply (with exactly-once, nothing of the batch was answered)."""
        log.warning("replies for %s[%d] not acknowledged, reading again from %d: %r",
                    self.tp.topic, self.tp.partition, offset, exc)
        self.runner.retry_from(self.tp, offset, self)

    async def _send_reply(self, topic: str, reply: ReplyEnvelope) -> asyncio.Future:
        """The reply's acknowledgement; a reply the producer refused at once is a failed
        one, as one the broker refused."""
        try:
            return await self.producer.send(topic, reply.encode(), key=reply.id.encode())
        except Exception as exc:
            future = asyncio.get_running_loop().create_future()
            future.set_exception(exc)
            return future

    async def _undelivered(self, rec: ConsumerRecord, topic: str, reply: ReplyEnvelope,
                           exc: BaseException) -> None:
        """A reply the broker will never take (the topic refuses such records, or this
        service may not write to it): the request goes to the dead letters, and the caller
        gets a short error reply if that can be written, instead of the request being read
        again for ever."""
        self.runner.counters["undeliverable"] += 1
        log.warning("reply to %s for request %s not deliverable: %r", topic, reply.id, exc)
        await self._dead_letter(rec, "reply", exc)
        error = ReplyEnvelope(id=reply.id, status=502, instance=reply.instance,
                              trace_id=reply.trace_id,
                              error={"code": "reply_undeliverable",
                                     "message": f"the service's reply could not be written to "
                                                f"{topic}: {type(exc).__name__}"})
        try:
            await self.producer.send_and_wait(topic, error.encode(), key=reply.id.encode())
        except Exception as again:
            log.warning("error reply to %s for request %s not deliverable either: %r", topic,
                        reply.id, again)

    async def _dead_letter(self, rec: ConsumerRecord, stage: str, exc: BaseException) -> None:
        tp = self.tp
        headers = [("streamkit.error", f"{type(exc).__name__}: {exc}".encode()[:2000]),
                   ("streamkit.stage", stage.encode()), ("streamkit.topic", tp.topic.encode()),
                   ("streamkit.partition", str(tp.partition).encode()),
                   ("streamkit.offset", str(rec.offset).encode()),
                   ("streamkit.timestamp", str(rec.timestamp).encode())]
        await self.producer.send_and_wait(dead_letter_topic(self.runner.app_id), rec.value,
                                          key=rec.key, headers=headers)

    async def _send_recorded(self, items: list[Item]) -> list[asyncio.Future]:
        ctp = self.replies.changelog
        return [await self.producer.send(ctp.topic, vb, key=kb, partition=ctp.partition)
                for kb, vb in items]

    async def _flush(self) -> None:
        """Write the unacknowledged reply records to the changelog, then to the store."""
        if not self.unflushed:
            return
        items = self.unflushed
        metas = await asyncio.gather(*await self._send_recorded(items))
        self.replies.apply(items, max(m.offset for m in metas) + 1)
        self.unflushed = []

    def _expired(self) -> list[Item]:
        """Tombstones of the recorded replies whose time has passed."""
        gone = self.replies.expired(now_ms())
        self.runner.counters["replies_expired"] += len(gone) // 2
        return gone

    async def _expire(self) -> None:
        self._last_expiry = time.monotonic()
        self.unflushed += self._expired()
        await self._flush()

    # one request ----------------------------------------------------------------------
    async def _handle(self, rec: ConsumerRecord) -> Outgoing | None:
        runner, spec, tp = self.runner, self.spec, self.tp
        runner.counters["requests"] += 1
        try:
            env = RequestEnvelope.decode(rec.value)
        except EnvelopeError as exc:
            return await self._bad_request(exc, rec)
        keys = [f"id:{env.id}"]
        req = ServiceRequest(env, tp.topic, tp.partition, rec.offset, self)
        if spec.request_id is not None:
            try:
                rid = spec.request_id(req)
            except Exception as exc:  # a key function that fails must not stop the service
                log.warning("request_id failed for %r: %r", req, exc)
                rid = None
            if rid is not None:
                keys.append(f"rq:{spec.topic}:{rid}")
        now = now_ms()
        for k in keys:
            done = self.replies.get(k, now)
            if done is None and k in runner.inflight:
                done = await asyncio.shield(runner.inflight[k])
            if done is not None:
                runner.counters["replayed"] += 1
                return env.reply_to, readdress(done, env)
        if spec.skip_expired and env.deadline_ms and now > env.deadline_ms:
            runner.counters["expired"] += 1
            log.warning("request expired before it was handled, not run: id=%s topic=%s "
                        "partition=%d offset=%d late_ms=%d", env.id, tp.topic, tp.partition,
                        rec.offset, now - env.deadline_ms)
            return None
        return env.reply_to, await self._run_handler(env, req, keys)

    async def _run_handler(self, env: RequestEnvelope, req: ServiceRequest, keys: list[str]
                           ) -> ReplyEnvelope:
        runner = self.runner
        future = asyncio.get_running_loop().create_future()
        for k in keys:
            runner.inflight[k] = future
        try:
            outcome = await self._outcome(req)
            try:
                reply = _fitted(build_reply(env, outcome, runner.app_id, self.spec.table))
            except Exception as exc:  # a body that is not JSON (a set, a Decimal, ...)
                log.exception("the reply of the handler for %s cannot be sent", self.spec.topic)
                reply = build_reply(env, exc, runner.app_id, self.spec.table)
            runner.counters["errors" if reply.status >= 500 else "handled"] += 1
            # Replies are recorded for handlers that declare request_id (the promise of an
            # effect once); a server failure is not, since a retry may succeed.
            if self.spec.request_id is not None and reply.status < 500:
                self.unflushed += self.replies.record(keys, reply, now_ms())
            future.set_result(reply)
            return reply
        finally:
            for k in keys:
                if runner.inflight.get(k) is future:
                    del runner.inflight[k]
            if not future.done():
                future.cancel()

    async def _outcome(self, req: ServiceRequest) -> Any:
        """What the handler returned or raised. A table that is moving or restoring
        (StoreUnavailable) is waited for until the request's deadline: the request
        keeps its place in the partition's order."""
        while True:
            try:
                outcome = await self.spec.handler(req)
                await req.flush()
                return outcome
            except ServiceError as exc:
                await self._settle(req)
                return exc
            except StoreUnavailable as exc:
                if self.stopping:
                    raise _Abandoned() from exc
                if req.deadline_ms and req.remaining_ms() <= UNAVAILABLE_RETRY_S * 1000:
                    return ServiceError(503, "unavailable", f"{exc}; retry shortly")
                self.runner.counters["unavailable_retries"] += 1
                await asyncio.sleep(UNAVAILABLE_RETRY_S)
            except Exception as exc:
                log.exception("handler for %s failed on %r", self.spec.topic, req)
                await self._settle(req)
                return exc

    @staticmethod
    async def _settle(req: ServiceRequest) -> None:
        """A failed handler's records are acknowledged (or refused) before its error reply,
        as they would be after a successful one."""
        try:
            await req.flush()
        except Exception as exc:
            log.warning("a record sent by a failed handler of %r was refused too: %r", req, exc)

    async def _bad_request(self, exc: EnvelopeError, rec: ConsumerRecord) -> Outgoing | None:
        """A request that is not a valid envelope goes to the app's dead letters (and gets a
        400 reply when enough of it could be read to address one)."""
        tp = self.tp
        self.runner.counters["bad_requests"] += 1
        log.warning("bad request at %s[%d]@%d: %s", tp.topic, tp.partition, rec.offset, exc)
        await self._dead_letter(rec, "decode", exc)
        cid, reply_to = exc.partial.get("id"), exc.partial.get("reply_to")
        if not (isinstance(cid, str) and cid and isinstance(reply_to, str) and reply_to):
            return None  # nobody to answer
        instance = exc.partial.get("instance")
        return reply_to, ReplyEnvelope(id=cid, status=400,
                                       instance=instance if isinstance(instance, str) else None,
                                       error={"code": "bad_request", "message": str(exc)})


def _undeliverable(exc: BaseException) -> bool:
    """An error that sending the same record again cannot mend (too large for the topic,
    not authorized, an invalid topic); a timeout or a stopping producer can."""
    return isinstance(exc, KafkaError) and not exc.retriable \
        and not isinstance(exc, (KafkaTimeoutError, ProducerClosed))


def _fitted(reply: ReplyEnvelope) -> ReplyEnvelope:
    """The reply, or in its place an error saying it is too large to be sent."""
    size = len(reply.encode())
    if size <= MAX_REPLY_BYTES:
        return reply
    return ReplyEnvelope(id=reply.id, status=502, instance=reply.instance,
                         trace_id=reply.trace_id,
                         error={"code": "reply_too_large",
                                "message": f"the service's reply is {size} bytes, more than "
                                           f"the {MAX_REPLY_BYTES} a reply may have"})
