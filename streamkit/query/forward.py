"""Requests to other workers: forwarding a read to a key's owner, gathering from peers."""
from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from ..errors import PeerError
from ..http import unavailable
from ..httpclient import peer_session

FORWARDED = "X-Streamkit-Forwarded"
SERVED_BY = "X-Streamkit-Served-By"
STALE = "X-Streamkit-Stale"
_PASS_BACK = (SERVED_BY, STALE, "Retry-After")


class Forwarder:
    """Reads from the other workers of the app: one session per worker process."""

    def __init__(self, timeout_ms: int, token: str | None = None) -> None:
        self.timeout_ms, self.token = timeout_ms, token
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = peer_session(self.token, self.timeout_ms)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def forward(self, request: web.Request, owner: str) -> web.Response:
        """The owner's answer to the same read: path and query string (every query route
        is a GET without a body)."""
        try:
            async with self.session.get(owner + request.rel_url.path_qs,
                                        headers={FORWARDED: "1"}) as resp:
                payload = await resp.read()
                return web.Response(body=payload, status=resp.status,
                                    content_type=resp.content_type,
                                    headers={k: v for k, v in resp.headers.items() if k in _PASS_BACK})
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return unavailable(f"the owner {owner} did not answer: {type(exc).__name__}",
                               owner=owner)

    async def get_json(self, owner: str, path: str, params: dict[str, str]) -> Any:
        """GET a peer's internal route; PeerError when it fails or is not ready."""
        try:
            async with self.session.get(owner + path, params=params,
                                        headers={FORWARDED: "1"}) as resp:
                payload = await resp.read()
                if resp.status != 200:
                    raise PeerError(owner, f"{owner} answered {resp.status}", resp.status)
                return orjson.loads(payload)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise PeerError(owner, f"{owner} did not answer: {type(exc).__name__}") from None
