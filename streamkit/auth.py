"""Optional bearer-token authentication (STREAMKIT_API_TOKEN) for every route but
/health and /ready."""
from __future__ import annotations

import hmac
from typing import Callable

from aiohttp import web

from .http import error

OPEN_PATHS = frozenset({"/health", "/ready"})


def auth_middleware(token: str, on_refused: Callable[[], None]) -> Callable:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def middleware(request: web.Request, handler) -> web.StreamResponse:
        if request.path in OPEN_PATHS:
            return await handler(request)
        given = request.headers.get("Authorization", "").encode()
        if request.path == "/ui" and "token" in request.query:
            # A browser cannot send a header when it opens a page; the page passes the
            # token on to its own requests as a header.
            given = f"Bearer {request.query['token']}".encode()
        # compare_digest takes the same time wherever the strings differ.
        if not hmac.compare_digest(given, expected):
            on_refused()
            return error(401, "unauthorized", "missing or wrong token",
                         {"WWW-Authenticate": "Bearer"})
        return await handler(request)

    return middleware
