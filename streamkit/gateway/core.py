"""The gateway's core: park a request, send its envelope, wait for the reply (or a state).

HTTP and websocket requests both go through Gateway.dispatch(), which turns every outcome
(reply, unknown service, full table, timeout, broker failure) into a status and a JSON body,
so the two front ends cannot drift apart.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Mapping, cast

import aiohttp
from aiokafka.errors import KafkaError
from mode import Service

from ..clients import Clients
from ..config import Settings
from ..envelope import ReplyEnvelope, RequestEnvelope
from ..errors import GatewayTimeout, ParkedFull
from ..httpclient import peer_session
from ..topics import TopicAdmin, TopicSpec
from ..wire import RequestProducer
from .batching import BatchedSender
from .correlation import CorrelationIds
from .handoff import HandOff
from .metrics import RequestMetrics
from .parking import ParkedRequests
from .registry import Registry
from .responses import ResponseConsumer
from .settings import GatewaySettings
from .waits import WaitFor, wait_for_state

log = logging.getLogger(__name__)

Reply = tuple[ReplyEnvelope, bool]  # the reply, and whether another instance handed it over


@dataclass
class Outcome:
    """What to answer: a status, a JSON body and headers."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def error_body(code: str, message: str, **extra: Any) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def now_ms() -> int:
    return int(time.time() * 1000)


class Gateway(Service):
    """Parked requests, the request producer, the response consumer and the registry view."""

    def __init__(self, settings: Settings, gsettings: GatewaySettings, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.settings, self.gs = settings, gsettings
        self.me = self.settings.web_url.rstrip("/")
        self.parked: ParkedRequests[Reply] = ParkedRequests(gsettings.max_parked)
        self.ids = CorrelationIds(gsettings.response_partitions)
        self.handoff = HandOff(gsettings.handoff_timeout_ms, self.settings.api_token)
        self.responses = ResponseConsumer(self.settings, gsettings, self.me,
                                          self.parked.__contains__, self._deliver, self.handoff,
                                          self._responses_failed)
        self.registry = Registry(self.settings, gsettings.registry_topic,
                                 dict(gsettings.static_apps))
        self.counters = {"requests": 0, "handoffs_in": 0, "send_failed": 0, "waits": 0,
                         "wait_requests": 0, "wait_polls": 0}
        self.metrics = RequestMetrics(frozenset(gsettings.services))
        self.accepting = False
        # Made when the gateway starts.
        self.producer = cast(RequestProducer, None)
        self.sender = cast(BatchedSender, None)
        self.http = cast(aiohttp.ClientSession, None)

    # lifecycle -------------------------------------------------------------------
    async def on_start(self) -> None:
        s, gs = self.settings, self.gs
        async with TopicAdmin(s) as admin:
            counts = await admin.ensure(
                [TopicSpec(gs.responses, gs.response_partitions),
                 TopicSpec(gs.registry_topic, 1, compact=True)]
                + [TopicSpec(t, s.partitions) for t in sorted(set(gs.services.values()))])
        # An existing response topic may have another count; the ids must match what exists.
        self.ids = CorrelationIds(counts[gs.responses])
        # Produce requests made by streamkit over the aiokafka producer's connections.
        self.producer = RequestProducer(Clients(s).producer(), close_timeout_s=s.close_timeout_s)
        await self.producer.start()
        self.sender = BatchedSender(self.producer, gs.linger_ms)
        # Waits are asked of the apps' workers, which check the deployment's token.
        self.http = peer_session(s.api_token)
        await self.responses.start()
        await self.registry.start()
        self.accepting = True
        log.info("gateway %s at %s: services=%s responses=%s partitions=%d", gs.gateway_id,
                 self.me, dict(gs.services), gs.responses, counts[gs.responses])

    async def on_stop(self) -> None:
        # The web server is stopped before this service (it is the app's last runtime
        # dependency) and waits for its in-flight requests, whose replies still arrive here.
        self.accepting = False
        if len(self.parked):
            log.warning("stopping with %d requests still parked", len(self.parked))
        await self.registry.stop()
        await self.responses.stop()
        await self.handoff.close()
        if self.sender is not None:
            await self.sender.close()
        if self.producer is not None:
            await self.producer.stop()
        if self.http is not None:
            await self.http.close()

    def _responses_failed(self, exc: BaseException) -> None:
        """The response consumer stopped on an error no retry mends (a response partition
        it cannot read): the gateway process stops, rather than answer 504 for ever."""
        self.add_future(self.crash(exc))

    @property
    def ready(self) -> bool:
        """Started, and the response consumer holds an assignment (possibly empty)."""
        return self.accepting and self.responses.assigned and self.responses.alive

    def stats(self) -> dict:
        return {"instance": self.me, "gateway": self.gs.gateway_id, "ready": self.ready,
                "response_topic": self.gs.responses, "partitions": sorted(self.responses.owned),
                "assignments": self.responses.generations, "id_misses": self.ids.misses,
                **self.parked.stats(), **self.counters, **self.responses.counters,
                **self.handoff.counters, "handoffs_pending": self.handoff.pending,
                "produce_batches": self.sender.batches if self.sender is not None else 0}

    # replies ----------------------------------------------------------------------
    def _deliver(self, reply: ReplyEnvelope, handed_off: bool) -> bool:
        return self.parked.complete(reply.id, (reply, handed_off))

    def accept_handoff(self, replies: list) -> dict:
        """Replies another instance consumed for requests parked here."""
        delivered = late = bad = 0
        for raw in replies:
            try:
                reply = ReplyEnvelope.from_dict(raw)
            except (ValueError, AttributeError):
                bad += 1
                continue
            if self._deliver(reply, True):
                delivered += 1
            else:
                late += 1
        self.counters["handoffs_in"] += delivered
        return {"delivered": delivered, "late": late, "bad": bad}

    # requests ---------------------------------------------------------------------
    async def call(self, topic: str, method: str, path: str, query: Mapping[str, Any], body: Any,
                   timeout_ms: int, trace_id: str, request_id: str | None = None) -> Reply:
        """Send one request envelope and wait for its reply. Raises ParkedFull,
        GatewayTimeout (with the correlation id) or KafkaError."""
        started = time.monotonic()
        cid = self.ids.next(self.responses.hint)
        sent = now_ms()
        parked = self.parked.park(cid, sent + timeout_ms)
        env = RequestEnvelope(id=cid, reply_to=self.gs.responses, instance=self.me, method=method,
                              path=path, query=query, body=body, deadline_ms=sent + timeout_ms,
                              trace_id=trace_id, request_id=request_id, sent_ms=sent)
        try:
            # Sent with the requests that arrive with it; answered only once the broker has
            # acknowledged its own record.
            await asyncio.wait_for(self.sender.send(topic, env.encode(), env.key()),
                                   timeout_ms / 1000)
        except (KafkaError, asyncio.TimeoutError):
            self.parked.purge(cid)
            self.counters["send_failed"] += 1
            raise
        except BaseException:
            self.parked.purge(cid)
            raise
        try:
            return await self.parked.wait(parked, timeout_ms / 1000 - (time.monotonic() - started))
        except asyncio.TimeoutError:
            raise GatewayTimeout(cid) from None

    async def dispatch(self, service: str, method: str, path: str, query: Mapping[str, Any],
                       body: Any, timeout_ms: int | None = None, trace_id: str | None = None,
                       request_id: str | None = None, wait_for: WaitFor | None = None) -> Outcome:
        """Every outcome of a request to a service, as status, JSON body and headers;
        counted and timed for /metrics."""
        started = time.monotonic()
        outcome = await self._dispatch(service, method, path, query, body, timeout_ms,
                                       trace_id, request_id, wait_for)
        self.metrics.observe(service, method, outcome.status, time.monotonic() - started)
        return outcome

    async def _dispatch(self, service: str, method: str, path: str, query: Mapping[str, Any],
                        body: Any, timeout_ms: int | None, trace_id: str | None,
                        request_id: str | None, wait_for: WaitFor | None) -> Outcome:
        self.counters["requests"] += 1
        trace_id = trace_id or uuid.uuid4().hex
        headers = {"X-Trace-Id": trace_id, "X-Streamkit-Parked-By": self.me}
        topic = self.gs.services.get(service)
        if topic is None:
            return Outcome(404, error_body("unknown_service", f"no service named {service!r}",
                                           services=sorted(self.gs.services)), headers)
        if not self.accepting:
            return Outcome(503, error_body("unavailable", "the gateway is starting or stopping"),
                           {**headers, "Retry-After": "1"})
        timeout_ms = min(timeout_ms or self.gs.timeout_ms, self.gs.max_timeout_ms)
        started = time.monotonic()
        try:
            reply, handed_off = await self.call(topic, method, path, query, body, timeout_ms,
                                                trace_id, request_id)
        except ParkedFull as exc:
            return Outcome(503, error_body("too_many_requests", str(exc)),
                           {**headers, "Retry-After": "1"})
        except GatewayTimeout as exc:
            return Outcome(504, error_body("gateway_timeout",
                                           f"no reply from {service!r} within {timeout_ms} ms",
                                           correlation_id=exc.correlation_id),
                           {**headers, "X-Correlation-Id": exc.correlation_id})
        except (KafkaError, asyncio.TimeoutError) as exc:
            return Outcome(503, error_body("broker_unavailable", f"request not sent: {exc!r}"),
                           {**headers, "Retry-After": "1"})
        headers.update({"X-Correlation-Id": reply.id,
                        "X-Streamkit-Handed-Off": "1" if handed_off else "0"})
        if reply.status == 503:
            headers["Retry-After"] = "1"  # the service was unavailable: a retry may succeed
        if wait_for is None or reply.status >= 400:
            return Outcome(reply.status, reply.http_body(), headers)
        if not reply.entity or not reply.entity.get("key"):
            return Outcome(502, error_body("no_entity", f"{service!r} replied without naming the "
                                           "entity to wait on", reply=reply.body), headers)
        remaining = timeout_ms / 1000 - (time.monotonic() - started)
        status, state = await wait_for_state(self.registry, self.http, self.counters,
                                             reply.entity, wait_for, remaining,
                                             self.settings.max_wait_ms / 1000)
        if status != 200:
            return Outcome(status, state, headers)
        return Outcome(200, {"key": reply.entity["key"], "value": state.get("value"),
                             "reply": reply.body}, headers)
