"""The event-driven variant: answer once an entity's table entry reaches a state.

`?wait_for=state:VALIDATED,FAILED` on a gateway route: after the service's reply names the
entity (app, table, key), the wait is registered on the worker that owns the key through
the workers' own route `GET /tables/{table}/keys/{key}?wait_for=...&timeout_ms=...`, which
answers when the committed value matches, forwards to the owner, and answers 503 when the
partition moves; a 503 or an unreachable worker is retried on any host of the app until
the gateway's deadline, which is what makes the wait survive a rebalance. One ask waits at
most ASK_SLICE_S (and a second more for its answer), so a frozen owner (which answers
nothing) holds a wait only that long. A worker that answers 200 with a value that does not
match yet (one that ignores wait_for) is asked again after a pause: the gateway never
answers with a state the client did not ask for.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import quote

import aiohttp
import orjson

from .registry import Registry

log = logging.getLogger(__name__)

RETRY_PAUSE_S = 0.1
# One ask waits at most this long, and the next goes to the owner the registry names then.
# A worker that froze (SIGSTOP, a long pause, a partitioned host) keeps an ask's
# connection open without answering: asked for the whole deadline, it would hold the wait
# while the worker that took its partitions reaches the state.
ASK_SLICE_S = 2.0


@dataclass(frozen=True)
class WaitFor:
    """A predicate on one field of a table value: value[field] in values."""

    field: str
    values: tuple[str, ...]

    @classmethod
    def parse(cls, raw: str) -> "WaitFor":
        """'state:VALIDATED,FAILED' -> WaitFor('state', ('VALIDATED', 'FAILED'))."""
        name, sep, rest = raw.partition(":")
        values = tuple(v.strip() for v in rest.split(",") if v.strip())
        if not sep or not name.strip() or not values:
            raise ValueError(f"wait_for must look like field:VALUE1,VALUE2, not {raw!r}")
        return cls(name.strip(), values)

    def param(self) -> str:
        return f"{self.field}:{','.join(self.values)}"

    def matches(self, value: Any) -> bool:
        return isinstance(value, dict) and str(value.get(self.field)) in self.values


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


async def wait_for_state(registry: Registry, session: aiohttp.ClientSession,
                         counters: dict[str, int], entity: Mapping[str, Any], cond: WaitFor,
                         timeout_s: float, max_ask_s: float) -> tuple[int, Any]:
    """(200, {"key", "value", "partition"}) once the entity matches; (504, error) at the
    deadline; (404, error) for an unknown app or table. Each ask of a worker waits at most
    ASK_SLICE_S (and max_ask_s, the workers' STREAMKIT_MAX_WAIT_MS: a longer one is
    refused with 400), and a wait longer than that is asked again, of the owner of the
    moment."""
    app, table, key = entity.get("app"), entity.get("table"), entity.get("key")
    if not app or not table:
        return 502, _error("no_entity", "the reply names no app and table to wait on")
    deadline = time.monotonic() + timeout_s
    counters["waits"] += 1
    path = f"/tables/{quote(str(table), safe='')}/keys/{quote(str(key), safe='')}"
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return 504, _error("gateway_timeout", f"{app}/{table}/{key} did not reach "
                                                  f"{cond.param()} in time")
        owner = registry.owner(app, table, str(key))
        hosts = registry.hosts(app)
        if owner:
            hosts = [owner] + [h for h in hosts if h != owner]
        if not hosts:
            # The app's first registry record may not have arrived yet.
            await asyncio.sleep(min(RETRY_PAUSE_S, remaining))
            continue
        status = 0
        for host in hosts:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            counters["wait_requests"] += 1
            status, body = await _ask(session, host, path, cond,
                                      min(remaining, max_ask_s, ASK_SLICE_S))
            if status == 200 and isinstance(body, dict) and cond.matches(body.get("value")):
                return 200, body
            if status == 200:
                counters["wait_polls"] += 1
                break
            if status == 404 and isinstance(body, dict) and \
                    body.get("error", {}).get("code") == "unknown_table":
                return 404, body
            if status == 504:
                break  # the worker waited its slice
            # 503 (moving, rebalancing), 0 (unreachable), anything else: try the next host.
        # After a slice that ran out, the owner of the moment is asked at once: no waiter
        # is registered meanwhile.
        if status != 504:
            await asyncio.sleep(min(RETRY_PAUSE_S, max(deadline - time.monotonic(), 0)))


async def _ask(session: aiohttp.ClientSession, host: str, path: str, cond: WaitFor,
               remaining_s: float) -> tuple[int, Any]:
    params = {"wait_for": cond.param(), "timeout_ms": str(max(int(remaining_s * 1000), 1))}
    # The worker answers 504 itself at timeout_ms; the extra second is for the answer to arrive.
    timeout = aiohttp.ClientTimeout(total=remaining_s + 1.0)
    try:
        async with session.get(host + path, params=params, timeout=timeout) as resp:
            payload = await resp.read()
            try:
                return resp.status, orjson.loads(payload) if payload else None
            except orjson.JSONDecodeError:
                return resp.status, None
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        log.info("wait on %s%s failed: %r", host, path, exc)
        return 0, None
