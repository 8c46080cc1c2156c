"""The service helper: `@streamkit.service(app, "orders-requests")` turns an async handler into
a service that consumes its request topic and replies on the topic each request names.

    @streamkit.service(app, "orders-requests", table="orders",
                       request_id=lambda req: req.request_id)
    async def orders(req: streamkit.ServiceRequest):
        if req.method == "POST":
            order = {...}
            await req.send("orders", order["id"], order)     # acknowledged before the reply
            return streamkit.Reply(201, {"order_id": order["id"]}, entity=order["id"])
        raise streamkit.ServiceError(405, "method_not_allowed", req.method)

The handler returns a Reply, or any JSON value (200), or None (204); raising ServiceError
gives its status and code, any other exception 500. The records a handler sends go out
together: each send() hands its record to the producer without waiting for the broker, and
the reply is sent once all of them are acknowledged (one that is refused makes it a 500).
Requests of one partition are handled one after another (so one entity's requests stay in
order); partitions run concurrently.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol

from ..envelope import ReplyEnvelope, RequestEnvelope
from ..errors import ServiceError
from .replies import DEFAULT_RETENTION_MS


class Sender(Protocol):
    """What a request's send() goes through: its partition's producer (with exactly-once,
    in the transaction that carries the request's reply)."""

    async def send(self, topic: str, key: str | bytes | None, value: Any) -> asyncio.Future:
        """Hand one record to the producer; the future is its acknowledgement."""

_ID_NAMESPACE = uuid.UUID("6f1c2b1e-5d0a-4c61-9a53-3b7a3e2f6c10")
Handler = Callable[["ServiceRequest"], Awaitable[Any]]
RequestId = Callable[["ServiceRequest"], Any]


@dataclass(frozen=True)
class Reply:
    """A handler's answer. `entity` names the key of `table` the request created or changed
    (in `app`, this service's app unless named), which the gateway's ?wait_for= variant
    then waits on."""

    status: int = 200
    body: Any = None
    entity: str | int | None = None
    table: str | None = None
    app: str | None = None  # the app holding `table`, when it is another service's


class ServiceRequest:
    """One request as a handler sees it."""

    __slots__ = ("envelope", "topic", "partition", "offset", "_runner", "_ids", "_acks")

    def __init__(self, envelope: RequestEnvelope, topic: str, partition: int, offset: int,
                 runner: Sender | None = None) -> None:
        self.envelope, self.topic, self.partition, self.offset = envelope, topic, partition, offset
        self._runner = runner
        self._ids = 0
        self._acks: list[asyncio.Future] = []

    id = property(lambda self: self.envelope.id, doc="the correlation id")
    method = property(lambda self: self.envelope.method)
    path = property(lambda self: self.envelope.path, doc="the URL path after /api/{service}/")
    query = property(lambda self: self.envelope.query)
    body = property(lambda self: self.envelope.body)
    trace_id = property(lambda self: self.envelope.trace_id)
    request_id = property(lambda self: self.envelope.request_id,
                          doc="the client's Idempotency-Key or X-Request-Id, if it sent one")
    entity = property(lambda self: self.envelope.entity, doc="the first path segment")
    deadline_ms = property(lambda self: self.envelope.deadline_ms)

    @property
    def segments(self) -> list[str]:
        return [s for s in self.envelope.path.split("/") if s]

    def new_id(self, prefix: str = "") -> str:
        """A fresh unique id for an entity this request creates (`prefix` + 24 hex digits).

        Ids are derived from the request: its `request_id` (the client's Idempotency-Key)
        when it has one, else its correlation id. A handler that runs again for the same
        request (a redelivery after a crash, a client's retry with the same key) makes the
        same ids in the same order, so it writes to the same entities instead of new ones;
        requests that differ get different ids."""
        self._ids += 1
        origin = f"rq:{self.envelope.request_id}" if self.envelope.request_id else f"id:{self.id}"
        name = f"{self.topic}\n{origin}\n{self._ids}"
        return prefix + uuid.uuid5(_ID_NAMESPACE, name).hex[:24]

    def remaining_ms(self) -> int:
        """Milliseconds until the gateway gives up on this request."""
        return self.envelope.deadline_ms - int(time.time() * 1000)

    async def send(self, topic: str, key: str | bytes | None, value: Any) -> None:
        """Produce one record (UTF-8 key, JSON value). It returns once the producer holds
        the record, without waiting for the broker: the records of one request go out
        together, and its reply is sent only after every one of them is acknowledged
        (flush() waits for them sooner). With exactly-once, readers see them once the
        request's transaction commits, with the reply."""
        if self._runner is None:
            raise RuntimeError("this request is not attached to a running service")
        self._acks.append(await self._runner.send(topic, key, value))

    async def flush(self) -> None:
        """Wait until every record sent so far is acknowledged; raises the error of the
        first one the broker refused."""
        acks, self._acks = self._acks, []
        if acks:
            await asyncio.gather(*acks)

    def __repr__(self) -> str:
        return f"<ServiceRequest {self.method} {self.topic}/{self.path!r} id={self.id}>"


@dataclass(frozen=True)
class HandlerSpec:
    topic: str
    handler: Handler
    request_id: RequestId | None = None
    table: str | None = None
    skip_expired: bool = True
    dedupe_ms: int = DEFAULT_RETENTION_MS


def build_reply(env: RequestEnvelope, outcome: Any, app_id: str, table: str | None
                ) -> ReplyEnvelope:
    """The reply envelope for a handler's return value or exception."""
    base: dict[str, Any] = dict(id=env.id, instance=env.instance, trace_id=env.trace_id)
    if isinstance(outcome, ServiceError):
        return ReplyEnvelope(status=outcome.status,
                             error={"code": outcome.code, "message": outcome.message}, **base)
    if isinstance(outcome, BaseException):
        return ReplyEnvelope(status=500, error={"code": "internal_error", "message":
                                                f"the service failed: {type(outcome).__name__}"},
                             **base)
    if not isinstance(outcome, Reply):
        outcome = Reply(204) if outcome is None else Reply(200, outcome)
    entity = None
    if outcome.entity is not None:
        entity = {"app": outcome.app or app_id, "table": outcome.table or table,
                  "key": outcome.entity}
    return ReplyEnvelope(status=outcome.status, body=outcome.body, entity=entity, **base)


def readdress(reply: ReplyEnvelope, env: RequestEnvelope) -> ReplyEnvelope:
    """A cached reply, addressed to a new request (its correlation id and parking instance)."""
    return ReplyEnvelope(id=env.id, status=reply.status, body=reply.body, error=reply.error,
                         instance=env.instance, trace_id=env.trace_id, entity=reply.entity)
