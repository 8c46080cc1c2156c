"""JSON responses and errors shared by every HTTP route."""
from __future__ import annotations

from typing import Any, Mapping

from aiohttp import web

from .serde import dumps

JSON = "application/json"


def json_response(body: Any, status: int = 200, headers: Mapping[str, str] | None = None
                  ) -> web.Response:
    return web.Response(body=dumps(body), status=status, content_type=JSON, headers=headers)


def error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None,
          **extra: Any) -> web.Response:
    """`{"error": {"code", "message", ...}}` with the given status."""
    return json_response({"error": {"code": code, "message": message, **extra}}, status, headers)


def unavailable(message: str, retry_after_s: int = 1, **extra: Any) -> web.Response:
    return error(503, "unavailable", message, {"Retry-After": str(retry_after_s)}, **extra)
