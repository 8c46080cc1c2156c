"""Metadata asked for again after an error, once at a time, by both request-path clients."""
from __future__ import annotations

import asyncio
from typing import Any, Callable

RETRY_BACKOFF_S = 0.1


class MetadataRefresh:
    """Calling it asks the client for metadata, unless a request is already on its way;
    `then` runs a retry backoff after the answer (so that a partition still without a
    leader asks again then, not at once), unless the owner has closed meanwhile."""

    def __init__(self, client: Callable[[], Any], then: Callable[[], None],
                 closed: Callable[[], bool]) -> None:
        self._client, self._then, self._closed = client, then, closed
        self._busy = False

    def __call__(self) -> None:
        if self._busy or self._closed():
            return
        self._busy = True
        loop = asyncio.get_running_loop()
        self._client().force_metadata_update().add_done_callback(
            lambda _: loop.call_later(RETRY_BACKOFF_S, self._done))

    def _done(self) -> None:
        self._busy = False
        if not self._closed():
            self._then()
