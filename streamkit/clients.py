"""Every Kafka client streamkit makes, from one Settings: its brokers, its security, its
group timings. Producers wait for every in-sync replica (acks=all): a commit counts on
what they acknowledged."""
from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any, Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    ClusterAuthorizationFailedError,
    CorruptRecordException,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
    UnsupportedCodecError,
)

from .config import Settings

# Errors a consumer's every next fetch meets again, until an operator acts: a batch that
# cannot be read at the position, a topic or group this client may not read.
# What no retry mends until an operator grants it: an ACL the client lacks.
NOT_AUTHORIZED = (TopicAuthorizationFailedError, GroupAuthorizationFailedError,
                  ClusterAuthorizationFailedError, TransactionalIdAuthorizationFailed)
FATAL_FETCH_ERRORS = (CorruptRecordException, UnsupportedCodecError, *NOT_AUTHORIZED)


class RetryLog:
    """Warnings of an error retried in a loop: the first at once, then at most one each
    `every_s` saying how many tries in a row have failed, so that an outage of minutes is a
    few lines and not five a second; recovered() says when the tries succeed again."""

    def __init__(self, logger: logging.Logger, what: str, every_s: float = 10.0) -> None:
        self.logger, self.what, self.every_s = logger, what, every_s
        self.failures = 0
        self._logged_at = 0.0

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        now = time.monotonic()
        if self.failures == 1 or now - self._logged_at >= self.every_s:
            more = f" ({self.failures} tries in a row)" if self.failures > 1 else ""
            self.logger.warning("%s failed, retrying%s: %r", self.what, more, exc)
            self._logged_at = now

    def recovered(self) -> None:
        if self.failures:
            self.logger.info("%s works again after %d failed tries", self.what,
                             self.failures)
            self.failures = 0


log = logging.getLogger(__name__)

# How long a client's stop may wait for brokers that do not answer (Kafka's consumer's
# default close timeout).
CLOSE_TIMEOUT_S = 30.0

# A member that takes this long to rejoin (it is restoring tables in its assignment
# callback) is not yet dropped from its group.
MIN_REBALANCE_TIMEOUT_MS = 30_000


class Clients:
    """Makes producers, consumers and admin clients for one worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._common: dict[str, Any] = dict(bootstrap_servers=settings.bootstrap_servers,
                                            **settings.security.client_kwargs())
        # Consumers never see a record of an aborted or open transaction (exactly-once
        # outputs and changelogs), unless the profile's broker has no transactions.
        self._reading: dict[str, Any] = dict(isolation_level=settings.isolation_level)

    def producer(self, linger_ms: int = 0, **options: Any) -> AIOKafkaProducer:
        """A producer; with transactional_id=..., a transactional one (idempotent, and
        fencing any earlier producer of that id when it starts)."""
        return AIOKafkaProducer(acks="all", linger_ms=linger_ms, **self._common, **options)

    def member(self, group_id: str, fetch_wait_ms: int, **options: Any) -> AIOKafkaConsumer:
        """A consumer in a group, committing its own offsets, from the earliest record of
        partitions the group has never committed."""
        s = self.settings
        return AIOKafkaConsumer(
            group_id=group_id, enable_auto_commit=False, auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_wait_ms, session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=s.heartbeat_interval_ms,
            rebalance_timeout_ms=max(s.session_timeout_ms, MIN_REBALANCE_TIMEOUT_MS),
            **self._common, **self._reading, **options)

    def reader(self, fetch_wait_ms: int, reset: str = "earliest", **options: Any
               ) -> AIOKafkaConsumer:
        """A consumer without a group, positioned by its user."""
        return AIOKafkaConsumer(enable_auto_commit=False, auto_offset_reset=reset,
                                fetch_max_wait_ms=fetch_wait_ms, **self._common, **self._reading,
                                **options)

    def admin(self) -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self._common)


class Rebalance(ConsumerRebalanceListener):
    """A group member's rebalance callbacks: revoked() before its partitions are taken,
    assigned(partitions) once it has new ones (either may be a coroutine function; aiokafka
    waits for it, and fetches nothing for the new partitions meanwhile only if it pauses
    them)."""

    def __init__(self, revoked: Callable[[], Awaitable[None] | None],
                 assigned: Callable[[set[TopicPartition]], Awaitable[None] | None]) -> None:
        self._revoked, self._assigned = revoked, assigned

    async def on_partitions_revoked(self, revoked: Any) -> None:
        result = self._revoked()
        if inspect.isawaitable(result):
            await result

    async def on_partitions_assigned(self, assigned: Any) -> None:
        result = self._assigned(set(assigned))
        if inspect.isawaitable(result):
            await result


async def stop_client(client: AIOKafkaConsumer | AIOKafkaProducer,
                      timeout_s: float = CLOSE_TIMEOUT_S) -> None:
    """client.stop(), carried to its end when a broker is gone, within timeout_s.

    aiokafka (0.14) closes a consumer's fetcher by cancelling its fetch tasks and awaiting
    each without catching the cancellation: a fetch that failed (its broker dead, or failing
    over) and waits out its retry backoff makes stop() raise CancelledError half way, before
    the consumer's other fetch tasks and its connections are closed (its group coordinator's
    close can do the same, aio-libs/aiokafka#647, and then the fetcher is not closed at
    all). That error is not a cancellation of the caller, which is passed on. And a group
    member's stop looks for its group's coordinator, to leave the group, for as long as no
    broker answers: past timeout_s its connections are closed without it (the group drops
    the member at its session timeout), as Kafka's consumer closes within 30 s."""
    try:
        await asyncio.wait_for(client.stop(), timeout_s)
    except TimeoutError:
        log.warning("%s did not stop within %.0f s (no broker answers); closing its "
                    "connections", type(client).__name__, timeout_s)
        await _close_rest(client)
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise
        await _close_rest(client)


async def _close_rest(client: AIOKafkaConsumer | AIOKafkaProducer) -> None:
    """What a stop left open: a consumer's fetch tasks, and the client's connections."""
    fetcher = getattr(client, "_fetcher", None)  # a consumer's
    left = [t for t in (getattr(fetcher, "_fetch_task", None),
                        *getattr(fetcher, "_pending_tasks", ())) if t is not None]
    for t in left:
        t.cancel()
    await asyncio.gather(*left, return_exceptions=True)
    # A consumer's connections are its _client, a producer's its client.
    await (client.client if isinstance(client, AIOKafkaProducer) else client._client).close()
