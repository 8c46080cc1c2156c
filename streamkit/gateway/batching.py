"""Request envelopes sent in batches: the requests that arrive within a short window go to
the broker in one produce request.

Each request's record is a produce request of its own otherwise (aiokafka gathers records
only while an earlier request to the same broker is in flight), and every produce request
costs a socket write in the gateway, work in the broker, and a fetch answer in the service
that reads it. The window opens with the first request after a send and closes `linger_ms`
later; every request then waits for its own record's acknowledgement only, so an answer is
never given for a request whose record the broker refused.
"""
from __future__ import annotations

import asyncio
import functools

from ..wire import RequestProducer

Pending = tuple[str, bytes, bytes | None, asyncio.Future]


class BatchedSender:
    """send() hands a record over and returns the future of its acknowledgement."""

    def __init__(self, producer: RequestProducer, linger_ms: int) -> None:
        self.producer = producer
        self.linger_s = linger_ms / 1000
        self._pending: list[Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task] = set()
        self.batches = 0  # produce batches handed to the producer (for /gateway/stats)

    def send(self, topic: str, value: bytes, key: bytes | None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        ack: asyncio.Future = loop.create_future()
        self._pending.append((topic, value, key, ack))
        if self._timer is None:
            self._timer = loop.call_later(self.linger_s, self._flush)
        return ack

    def _flush(self) -> None:
        self._timer = None
        batch, self._pending = self._pending, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[Pending]) -> None:
        # Handed to the producer one after another without a pause between them (with the
        # topics' metadata known, send() does not wait), so they share its next request.
        self.batches += 1
        for topic, value, key, ack in batch:
            if ack.done():  # its request gave up meanwhile
                continue
            try:
                sent = await self.producer.send(topic, value, key=key)
            except Exception as exc:
                if not ack.done():
                    ack.set_exception(exc)
                continue
            sent.add_done_callback(functools.partial(_copy, ack))

    async def close(self) -> None:
        """Send what waits for its window, and wait until the producer holds it."""
        if self._timer is not None:
            self._timer.cancel()
            self._flush()
        await asyncio.gather(*self._sending, return_exceptions=True)


def _copy(ack: asyncio.Future, done: asyncio.Future) -> None:
    if ack.done():
        return
    if done.cancelled():
        ack.cancel()
    elif done.exception() is not None:
        ack.set_exception(done.exception())  # type: ignore[arg-type]
    else:
        ack.set_result(done.result())

