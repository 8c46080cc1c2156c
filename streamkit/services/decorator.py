"""@streamkit.service: a handler becomes a service of its app."""
from __future__ import annotations

import inspect
from typing import Any, Callable

from .handler import Handler, HandlerSpec, RequestId
from .replies import DEFAULT_RETENTION_MS
from .runner import runner_for


def service(app: Any, topic: str, *, request_id: RequestId | None = None,
            table: str | None = None, skip_expired: bool = True,
            dedupe_ms: int = DEFAULT_RETENTION_MS) -> Callable[[Handler], Handler]:
    """Decorator: run `handler(request)` for every request on `topic`, replying on the topic
    the request names with key = its correlation id.

    request_id(request) -> a key that identifies retries of one request (for example
    `lambda r: r.request_id`): each reply is then recorded in a changelogged store (it
    survives a restart and a move of the partition) for `dedupe_ms` (default 24 hours; 5xx
    replies are not), and a request whose key, or whose correlation id, was answered
    already gets the same reply again without the handler running. Without request_id a
    request delivered again after a crash runs again (at least once).
    table: the table whose key a Reply's `entity` names (for ?wait_for=).
    skip_expired: drop requests whose gateway deadline has passed (the client has had its
    504) instead of running them.
    """
    def decorate(handler: Handler) -> Handler:
        if not inspect.iscoroutinefunction(handler):
            raise TypeError(f"{handler!r} must be an async function")
        if dedupe_ms < 1:
            raise ValueError(f"dedupe_ms must be at least 1, got {dedupe_ms}")
        runner_for(app).add(HandlerSpec(topic, handler, request_id, table, skip_expired,
                                        dedupe_ms))
        return handler

    return decorate

