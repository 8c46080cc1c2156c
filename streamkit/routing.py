"""Route registration with the checks that every streamkit route gets.

The URL and header limits (414, 431) and the JSON form of aiohttp's own HTTP errors (a
body over the limit is 413) are applied by a wrapper around each handler, not by an
aiohttp middleware: with any middleware installed, aiohttp runs every request through
two more coroutine layers and a context manager, about a tenth of the cost of a key read
(`python bench/queries.py`). A catch-all route, added after every other, answers unknown
paths (404) and wrong methods (405) as JSON.
"""
from __future__ import annotations

import functools
from collections import Counter
from typing import Any, Awaitable, Callable

from aiohttp import web

from .http import JSON, error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CODES = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
_PASSED_HEADERS = ("Allow", "Retry-After")


class Routes:
    """Adds guarded routes to an aiohttp application."""

    def __init__(self, web_app: web.Application, settings: Any, breaches: Counter) -> None:
        self.app = web_app
        self.max_url = settings.max_url_bytes
        self.max_headers = settings.max_header_bytes
        self.breaches = breaches
        self._fallback: Any = None

    def get(self, path: str, handler: Handler) -> None:
        self.app.router.add_get(path, self.guard(handler))

    def post(self, path: str, handler: Handler) -> None:
        self.app.router.add_post(path, self.guard(handler))

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, self.guard(handler))

    def add_fallback(self) -> None:
        """The catch-all route: call once, after every other route is added."""
        # [\s\S], not `.`: a path may hold a newline (%0A), which `.` does not match.
        self._fallback = self.app.router.add_route("*", r"/{_unmatched:[\s\S]*}",
                                                   self.guard(self._unmatched)).resource

    def guard(self, handler: Handler) -> Handler:
        max_url, max_headers, breaches = self.max_url, self.max_headers, self.breaches

        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            if len(request.raw_path) > max_url:
                breaches["url"] += 1
                return error(414, "uri_too_long", f"the URL is longer than {max_url} bytes")
            if sum(len(k) + len(v) for k, v in request.raw_headers) > max_headers:
                breaches["headers"] += 1
                return error(431, "headers_too_large",
                             f"the headers are larger than {max_headers} bytes")
            try:
                return await handler(request)
            except web.HTTPException as exc:
                if exc.content_type == JSON:
                    raise
                if exc.status == 413:
                    breaches["body"] += 1
                return error(exc.status, _CODES.get(exc.status, "http_error"), exc.reason,
                             {k: v for k, v in exc.headers.items() if k in _PASSED_HEADERS})

        return guarded

    async def _unmatched(self, request: web.Request) -> web.Response:
        allowed: set[str] = set()
        for resource in self.app.router.resources():
            if resource is not self._fallback:
                _, methods = await resource.resolve(request)
                allowed |= methods
        if allowed:
            return error(405, "method_not_allowed", "Method Not Allowed",
                         {"Allow": ",".join(sorted(allowed))})
        return error(404, "not_found", "Not Found")
