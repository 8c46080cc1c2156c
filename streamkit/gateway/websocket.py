"""The websocket variant: `GET /ws`, request frames in, reply frames out.

In:  {"id", "service", "method" (default POST), "path", "query", "body",
      "wait_for" (optional), "timeout_ms" (optional)}
Out: {"id", "status", "body"}   (body is {"error": {...}} for a failure)

Each frame is parked like an HTTP request, on the instance that holds the socket, and its
envelope names that instance; so the seed's "table that maps request id to websocket" is
the parked-request table itself, and a reply consumed by another instance (after a
rebalance, or where this one owns no response partition) is handed back here the same way.
Frames are answered as their replies come, not in order.
"""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import WSMsgType, web

from ..envelope import METHODS
from ..errors import BadRequest
from ..http import error
from ..routing import Routes
from ..serde import dumps
from .routes import parse_timeout, parse_wait_for

if TYPE_CHECKING:
    from .core import Gateway

log = logging.getLogger(__name__)


class WebsocketRoute:
    def __init__(self, gateway: "Gateway") -> None:
        self.gateway = gateway
        self.gs = gateway.gs
        # Kept in the gateway's counters so that /gateway/stats shows them.
        self.counters = gateway.counters
        self.counters.update(ws_connections=0, ws_open=0, ws_frames=0, ws_refused=0,
                             ws_too_large=0)

    def install(self, routes: Routes) -> None:
        routes.get("/ws", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.counters["ws_open"] >= self.gs.max_websockets:
            self.counters["ws_refused"] += 1
            return error(429, "too_many_websockets",
                         f"this instance holds its limit of {self.gs.max_websockets} websockets",
                         {"Retry-After": "1"})
        # A frame carries a body plus a little envelope: allow for it above the body limit.
        ws = web.WebSocketResponse(max_msg_size=self.gs.max_body_bytes + 16 * 1024, heartbeat=20)
        await ws.prepare(request)
        self.counters["ws_connections"] += 1
        self.counters["ws_open"] += 1
        lock = asyncio.Lock()
        inflight: set[asyncio.Task] = set()
        try:
            async for msg in ws:
                if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                    self.counters["ws_frames"] += 1
                    task = asyncio.create_task(self._one(ws, lock, msg.data))
                    inflight.add(task)
                    task.add_done_callback(inflight.discard)
                elif msg.type == WSMsgType.ERROR:
                    # A frame over the size limit closes the socket with 1009 (message too big).
                    if ws.close_code == 1009 or getattr(ws.exception(), "code", None) == 1009:
                        self.counters["ws_too_large"] += 1
                    log.info("websocket closed with error: %r", ws.exception())
        finally:
            # Cancelling the waiters purges their parked entries; replies that still come
            # are dropped as late.
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            self.counters["ws_open"] -= 1
        return ws

    async def _one(self, ws: web.WebSocketResponse, lock: asyncio.Lock, data: Any) -> None:
        frame_id = None
        try:
            frame = orjson.loads(data)
            if not isinstance(frame, dict):
                raise BadRequest(400, "bad_frame", "a frame is a JSON object")
            frame_id = frame.get("id")
            status, body = await self._dispatch(frame)
        except orjson.JSONDecodeError as exc:
            status, body = 400, _error("malformed_json", f"the frame is not JSON: {exc}")
        except BadRequest as exc:
            status, body = exc.status, _error(exc.code, exc.message)
        if ws.closed:
            return
        async with lock:
            try:
                await ws.send_str(dumps({"id": frame_id, "status": status, "body": body}).decode())
            except ConnectionError:
                pass  # the client went away; its reply is not needed any more

    async def _dispatch(self, frame: dict) -> tuple[int, Any]:
        service = frame.get("service")
        if not isinstance(service, str) or not service:
            raise BadRequest(400, "bad_frame", "a frame needs a 'service'")
        method = str(frame.get("method") or "POST").upper()
        if method not in METHODS:
            raise BadRequest(400, "bad_method", f"unknown method {method!r}")
        path = frame.get("path") or ""
        query = frame.get("query") or {}
        if not isinstance(path, str) or not isinstance(query, dict):
            raise BadRequest(400, "bad_frame", "'path' is a string and 'query' an object")
        outcome = await self.gateway.dispatch(
            service, method, path.lstrip("/"), query, frame.get("body"),
            timeout_ms=parse_timeout(frame.get("timeout_ms"), self.gs.max_timeout_ms),
            trace_id=_text(frame.get("trace_id")), request_id=_text(frame.get("request_id")),
            wait_for=parse_wait_for(frame.get("wait_for")))
        return outcome.status, outcome.body


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
