"""Hand-off of replies that reached an instance which does not hold their request.

A reply lands on whichever instance owns its response partition now; after a rebalance,
or on an instance that owns no partition, that is not the instance that parked the HTTP
request. The reply names the parking instance, so it is POSTed there. Replies for one
target are batched: while one POST is in flight the next ones queue up and go together,
which keeps the common case (one reply) at one round trip and a post-rebalance burst at
a few.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import aiohttp
import orjson

from ..httpclient import peer_session

log = logging.getLogger(__name__)

HANDOFF_PATH = "/gateway/responses"
MAX_BATCH = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # what the receiving side accepts

Done = Callable[[], None]


class HandOff:
    """Sends replies to the instances that parked their requests."""

    def __init__(self, timeout_ms: int, token: str | None = None) -> None:
        self.timeout_ms, self.token = timeout_ms, token
        self.counters = {"handoffs_out": 0, "handoff_late": 0, "handoff_failed": 0}
        self._queues: dict[str, list[tuple[bytes, Done | None]]] = {}
        self._senders: dict[str, asyncio.Task] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    @staticmethod
    def valid_target(url: Any) -> bool:
        return isinstance(url, str) and url.startswith(("http://", "https://"))

    def submit(self, target: str, reply: bytes, done: Done | None = None) -> None:
        """Queue one encoded reply envelope for target; done() runs once it was delivered
        or given up."""
        self._queues.setdefault(target, []).append((reply, done))
        sender = self._senders.get(target)
        if sender is None or sender.done():
            self._senders[target] = asyncio.create_task(self._drain(target))

    @property
    def pending(self) -> int:
        return sum(len(q) for q in self._queues.values())

    async def _drain(self, target: str) -> None:
        queue = self._queues[target]
        while queue and not self._closed:
            n, size = 0, 0
            while n < len(queue) and n < MAX_BATCH and (n == 0 or size < MAX_BATCH_BYTES):
                size += len(queue[n][0])
                n += 1
            batch = queue[:n]
            del queue[:n]
            try:
                await self._post(target, [r for r, _ in batch])
            finally:
                for _, done in batch:
                    if done is not None:
                        done()
        if not queue:
            self._queues.pop(target, None)

    async def _post(self, target: str, replies: list[bytes]) -> None:
        if self._session is None:
            # The receiving instance checks STREAMKIT_API_TOKEN as for any other request.
            self._session = peer_session(self.token, self.timeout_ms)
        try:
            async with self._session.post(target.rstrip("/") + HANDOFF_PATH,
                                          data=b"[" + b",".join(replies) + b"]",
                                          headers={"Content-Type": "application/json"}) as resp:
                payload = await resp.read()
                if resp.status != 200:
                    raise aiohttp.ClientResponseError(
                        resp.request_info, (), status=resp.status,
                        message=payload[:200].decode(errors="replace"))
                result = orjson.loads(payload)
        except (aiohttp.ClientError, asyncio.TimeoutError, orjson.JSONDecodeError) as exc:
            # The parking instance is gone (or not a gateway): its requests fail, and only those.
            self.counters["handoff_failed"] += len(replies)
            log.warning("hand-off failed target=%s replies=%d error=%r", target, len(replies), exc)
            return
        self.counters["handoffs_out"] += int(result.get("delivered", 0))
        self.counters["handoff_late"] += int(result.get("late", 0))

    async def close(self) -> None:
        self._closed = True
        for task in self._senders.values():
            task.cancel()
        await asyncio.gather(*self._senders.values(), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
