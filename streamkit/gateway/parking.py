"""Parked requests: the HTTP (or websocket) requests waiting for their reply, by correlation id.

Bounded, so that a stalled service cannot make a gateway hold requests until it runs out
of memory, and every entry leaves the table on completion, timeout or cancellation (the
waiter's own finally block), so nothing is ever left behind to sweep. A reply for an id
that is not parked here any more is late: it is dropped and counted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ..errors import ParkedFull

log = logging.getLogger(__name__)

R = TypeVar("R")


@dataclass
class Parked(Generic[R]):
    id: str
    deadline_ms: int
    future: asyncio.Future
    parked_at: float = field(default_factory=time.monotonic)


class ParkedRequests(Generic[R]):
    """id -> Parked; complete() resolves one, wait() waits for one and always removes it."""

    COUNTERS = ("parked", "completed", "timed_out", "cancelled", "rejected_full", "late")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self._parked: dict[str, Parked[R]] = {}
        self.counters = dict.fromkeys(self.COUNTERS, 0)
        self.peak = 0

    def __len__(self) -> int:
        return len(self._parked)

    def __contains__(self, cid: str) -> bool:
        return cid in self._parked

    def park(self, cid: str, deadline_ms: int) -> Parked[R]:
        """Register a request; raises ParkedFull when the table is at its limit."""
        if len(self._parked) >= self.limit:
            self.counters["rejected_full"] += 1
            raise ParkedFull(f"{len(self._parked)} requests are parked (the limit)")
        if cid in self._parked:
            raise ValueError(f"correlation id {cid!r} is already parked")
        parked: Parked[R] = Parked(cid, deadline_ms, asyncio.get_running_loop().create_future())
        self._parked[cid] = parked
        self.counters["parked"] += 1
        self.peak = max(self.peak, len(self._parked))
        return parked

    def complete(self, cid: str, result: R) -> bool:
        """Hand `result` to the request parked under cid; False (and counted) if it is late."""
        parked = self._parked.pop(cid, None)
        if parked is None or parked.future.done():
            self.counters["late"] += 1
            log.debug("late reply dropped id=%s", cid)
            return False
        parked.future.set_result(result)
        self.counters["completed"] += 1
        return True

    async def wait(self, parked: Parked[R], timeout_s: float) -> R:
        """The result for a parked request; TimeoutError at the deadline. The entry is
        removed however this ends."""
        try:
            return await asyncio.wait_for(parked.future, max(timeout_s, 0.0))
        except asyncio.TimeoutError:
            self.counters["timed_out"] += 1
            raise
        except asyncio.CancelledError:
            self.counters["cancelled"] += 1
            raise
        finally:
            self.purge(parked.id)

    def purge(self, cid: str) -> None:
        """Forget a request (its waiter has given up or failed)."""
        parked = self._parked.pop(cid, None)
        if parked is not None and not parked.future.done():
            parked.future.cancel()

    def stats(self) -> dict:
        return {"parked": len(self._parked), "max_parked": self.limit, "peak": self.peak,
                **{f"{k}_total" if k == "parked" else k: v for k, v in self.counters.items()}}
