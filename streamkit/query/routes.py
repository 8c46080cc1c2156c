"""HTTP views of tables: reads served by the worker that owns the key, forwarded otherwise."""
from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson
from aiohttp import web

from ..http import JSON, error, json_response, unavailable
from ..processing.outbox import partition_for
from ..processing.topology import TableSpec

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger(__name__)

FORWARDED = "X-Streamkit-Forwarded"
SERVED_BY = "X-Streamkit-Served-By"


class BadKey(ValueError):
    pass


def parse_key(spec: TableSpec, raw: str) -> Any:
    """The key in the table's key type, from its URL text."""
    kind = spec.keys.name
    if kind == "str":
        return raw
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise BadKey(f"key {raw!r} is not an integer") from None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


class TableRoutes:
    def __init__(self, app: "App") -> None:
        self.app = app
        self.runner = app.processors
        self._session: aiohttp.ClientSession | None = None

    def install(self, web_app: web.Application) -> None:
        web_app.router.add_get("/tables/{table}/keys/{key}", self.get_key)
        web_app.on_cleanup.append(self._close)

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    def _table(self, name: str) -> TableSpec | None:
        spec = self.app.topology.tables.get(name)
        return spec if spec is not None and spec.exposed else None

    async def get_key(self, request: web.Request) -> web.Response:
        spec = self._table(request.match_info["table"])
        if spec is None:
            return error(404, "unknown_table", f"no table named {request.match_info['table']!r}")
        try:
            key = parse_key(spec, request.match_info["key"])
        except BadKey as exc:
            return error(400, "bad_key", str(exc))
        if not self.app.is_ready:
            return unavailable("partitions are being assigned or tables recovered")
        runner = self.runner
        gid = spec.group.root().id
        n = runner.cluster.partitions.get(gid)
        if not n:
            return unavailable("table partitions are not known yet")
        partition = partition_for(spec.keys.encode(key), n)
        owner = runner.cluster.active.get((gid, partition))
        me = self.app.settings.web_url
        store = runner.store_for(spec.name, partition)
        if store is not None:
            value = store.get(key)
            if value is None:
                return error(404, "unknown_key", f"no key {key!r} in {spec.name}",
                             {SERVED_BY: me})
            return json_response({"key": key, "value": value, "partition": partition},
                                 headers={SERVED_BY: me})
        if owner is None or owner == me or request.headers.get(FORWARDED):
            # The map and the local tasks disagree: a rebalance is under way.
            return unavailable(f"partition {partition} of {spec.name} is moving", owner=owner)
        return await self._forward(request, owner)

    async def _forward(self, request: web.Request, owner: str) -> web.Response:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        timeout = aiohttp.ClientTimeout(total=self.app.settings.query_timeout_ms / 1000)
        body = await request.read()
        headers = {FORWARDED: "1", "Content-Type": request.headers.get("Content-Type", JSON)}
        try:
            async with self._session.request(request.method, owner + request.rel_url.path_qs,
                                             data=body or None, headers=headers,
                                             timeout=timeout) as resp:
                payload = await resp.read()
                out_headers = {k: v for k, v in resp.headers.items()
                               if k in (SERVED_BY, "Retry-After")}
                return web.Response(body=payload, status=resp.status,
                                    content_type=resp.content_type, headers=out_headers)
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            return unavailable(f"the owner {owner} did not answer: {exc!r}", owner=owner)
