"""The one way streamkit calls other workers and gateway instances over HTTP: an aiohttp
session that sends the deployment's bearer token, which peers check as they do a client's."""
from __future__ import annotations

from typing import Any

import aiohttp


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def peer_session(token: str | None, timeout_ms: int | None = None, **options: Any
                 ) -> aiohttp.ClientSession:
    """A session to other streamkit processes (timeout_ms: for each whole request)."""
    if timeout_ms is not None:
        options["timeout"] = aiohttp.ClientTimeout(total=timeout_ms / 1000)
    return aiohttp.ClientSession(headers=auth_headers(token), **options)
