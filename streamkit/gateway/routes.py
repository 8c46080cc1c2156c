"""The gateway's HTTP routes: /api/{service}/{path}, its stats, and the hand-off endpoint."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from ..errors import BadRequest
from ..http import error, json_response
from ..routing import Routes
from .handoff import HANDOFF_PATH, MAX_REQUEST_BYTES
from .waits import WaitFor

if TYPE_CHECKING:
    from .core import Gateway, Outcome

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
TIMEOUT_HEADER = "X-Timeout-Ms"
_GATEWAY_PARAMS = frozenset({"wait_for"})


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body, refusing (413) more than limit bytes without buffering them."""
    if request.content_length is not None and request.content_length > limit:
        raise BadRequest(413, "body_too_large", f"the body is over {limit} bytes")
    buf = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        buf += chunk
        if len(buf) > limit:
            raise BadRequest(413, "body_too_large", f"the body is over {limit} bytes")
    return bytes(buf)


def parse_json(raw: bytes | str) -> Any:
    if not raw:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(400, "malformed_json", f"the body is not JSON: {exc}") from None


def query_dict(query) -> dict[str, Any]:
    """A multidict as {name: value}, or {name: [values]} for a repeated name."""
    out: dict[str, Any] = {}
    for name in query.keys():
        if name in _GATEWAY_PARAMS or name in out:
            continue
        values = query.getall(name)
        out[name] = values[0] if len(values) == 1 else list(values)
    return out


def parse_timeout(raw: Any, maximum: int) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = 0
    if value < 1:
        raise BadRequest(400, "bad_timeout", f"{TIMEOUT_HEADER} must be a positive whole number")
    return min(value, maximum)


def parse_wait_for(raw: Any) -> WaitFor | None:
    if raw is None:
        return None
    try:
        return WaitFor.parse(str(raw))
    except ValueError as exc:
        raise BadRequest(400, "bad_wait_for", str(exc)) from None


def trace_id_of(headers) -> str | None:
    if headers.get("X-Trace-Id"):
        return headers["X-Trace-Id"][:128]
    parts = headers.get("traceparent", "").split("-")
    return parts[1] if len(parts) >= 4 and len(parts[1]) == 32 else None


def outcome_response(outcome: "Outcome") -> web.Response:
    if outcome.status == 204 or (outcome.body is None and outcome.status < 200):
        return web.Response(status=outcome.status, headers=outcome.headers)
    return json_response(outcome.body, outcome.status, outcome.headers)


class GatewayRoutes:
    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway
        self.gs = gateway.gs

    def install(self, routes: Routes) -> None:
        for method in METHODS:
            routes.route(method, "/api/{service}", self.api)
            routes.route(method, "/api/{service}/{path:.*}", self.api)
        routes.get("/gateway/stats", self.stats)
        routes.post(HANDOFF_PATH, self.handoff_in)

    async def api(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        if service not in self.gs.services:
            self.gateway.metrics.observe(service, request.method, 404)
            return error(404, "unknown_service", f"no service named {service!r}",
                         services=sorted(self.gs.services))
        try:
            raw = await read_body(request, self.gs.max_body_bytes)
            body = parse_json(raw)
            timeout_ms = parse_timeout(request.headers.get(TIMEOUT_HEADER), self.gs.max_timeout_ms)
            wait_for = parse_wait_for(request.query.get("wait_for"))
        except BadRequest as exc:
            # Refused before it was sent: counted, not timed.
            self.gateway.metrics.observe(service, request.method, exc.status)
            return error(exc.status, exc.code, exc.message)
        outcome = await self.gateway.dispatch(
            service, request.method, request.match_info.get("path", ""),
            query_dict(request.query), body, timeout_ms=timeout_ms,
            trace_id=trace_id_of(request.headers),
            request_id=(request.headers.get("Idempotency-Key")
                        or request.headers.get("X-Request-Id")),
            wait_for=wait_for)
        return outcome_response(outcome)

    async def stats(self, request: web.Request) -> web.Response:
        return json_response(self.gateway.stats())

    async def handoff_in(self, request: web.Request) -> web.Response:
        # Open only to what the worker-wide STREAMKIT_API_TOKEN check lets through.
        try:
            replies = parse_json(await read_body(request, MAX_REQUEST_BYTES))
        except BadRequest as exc:
            return error(exc.status, exc.code, exc.message)
        if not isinstance(replies, list):
            return error(400, "bad_handoff", "a hand-off is a JSON list of reply envelopes")
        return json_response(self.gateway.accept_handoff(replies))
