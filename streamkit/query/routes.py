"""HTTP views of tables, right with any number of workers.

A read of one key is served by the worker that owns the key's partition (other workers
forward it, keeping its path and query string); scans and counts gather from every owner.
While partitions move or a table recovers the answer is 503 with Retry-After, never a
wrong or default value.
"""
from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any, Callable, NamedTuple

from aiohttp import web

from ..config import Settings
from ..errors import BadKey, PeerError, StoreMigrated
from ..http import error, json_response, unavailable
from ..parts import Part
from ..processing.runner import Runner
from ..processing.topology import TableSpec
from ..routing import Routes
from ..windows.reads import fetch_windows
from .forward import FORWARDED, SERVED_BY, STALE, Forwarder
from .keys import b64, parse_key, unb64
from .scan import local_count, local_scan, merge_pages
from .waiters import Waiters

log = logging.getLogger(__name__)

RETRY_MOVED_S = 1


class TableRoutes(Part):
    """The worker's part that serves its tables over HTTP."""

    def __init__(self, app_id: str, runner: Runner, settings: Settings,
                 forwarder: Forwarder) -> None:
        self.app_id = app_id
        self.own = runner.ownership
        self.restores = runner.restore_progress
        self.settings = settings
        self.forwarder = forwarder
        # Under exactly-once a read shows committed state only: an update of a transaction
        # that may still abort is never served (at-least-once serves it: see docs/queries.md).
        self.committed_reads = settings.exactly_once
        topo = runner.topology
        self.waiters = Waiters(lambda t, vb: topo.tables[t].values.decode(vb),
                               lambda t: topo.tables[t].group.root().id if t in topo.tables else -1,
                               runner.make_durable_soon)
        runner.commit_listeners.append(self.waiters.on_commit)
        runner.revoke_listeners.append(self.waiters.on_revoke)
        # A waiter is answered from committed state: commit at once what could answer one.
        runner.state_waiters.append(self.waiters)
        self.counters: Counter[str] = Counter(forwarded=0)

    def stats(self) -> dict[str, int]:
        """What /metrics shows of the query layer, read at scrape time."""
        return {"forwarded": self.counters["forwarded"], "waiting": len(self.waiters)}

    def install_routes(self, routes: Routes) -> None:
        # aiohttp tries the routes under /tables in the order they were added: the key
        # read, the most frequent request, goes first.
        routes.get("/tables/{table}/keys/{key}", self.get_key)
        routes.get("/tables", self.list_tables)
        routes.get("/metadata", self.metadata)
        routes.get("/tables/{table}", self.scan)
        routes.get("/tables/{table}/count", self.count)
        routes.get("/tables/{table}/_local/scan", self.local_scan)
        routes.get("/tables/{table}/_local/count", self.local_count)

    # helpers -----------------------------------------------------------------
    def _spec(self, request: web.Request) -> TableSpec | None:
        return self.own.tables().get(request.match_info["table"])

    def _unknown(self, request: web.Request) -> web.Response:
        return error(404, "unknown_table", f"no table named {request.match_info['table']!r}")

    def _not_ready(self) -> web.Response:
        return unavailable("partitions are being assigned or tables recovered")

    # routes ------------------------------------------------------------------------
    async def list_tables(self, request: web.Request) -> web.Response:
        return json_response({"tables": [
            {"name": name, "kind": "windowed" if _windowed(spec) else self.own.kind(name),
             "partitions": self.own.partitions(name),
             "keys": spec.keys.name, "values": spec.values.name}
            for name, spec in sorted(self.own.tables().items())]})

    async def metadata(self, request: web.Request) -> web.Response:
        # The restore figures are the ones /metrics shows (one source, read now).
        restore = {name: {"restored": t.restored, "total": t.total,
                          "partitions_left": t.partitions_left}
                   for name, t in sorted(self.restores.tables.items())}
        return json_response({"app": self.app_id, "ready": self.own.ready,
                              **self.own.describe(), "restore": restore})

    async def get_key(self, request: web.Request) -> web.Response:
        spec = self._spec(request)
        if spec is None:
            return self._unknown(request)
        try:
            key = parse_key(spec, request.match_info["key"])
            opts = self._read_options(request) if "?" in request.raw_path else _PLAIN
        except BadKey as exc:
            return error(400, "bad_request", str(exc))
        if getattr(spec, "faust", False):
            if opts.predicate is not None:
                return error(400, "bad_request", f"{spec.name} is a Faust table: wait_for is "
                             "served for streamkit's tables, whose commits it waits on")
            return await self._faust_key(request, spec, key)
        me = self.own.url
        stale = opts.allow_stale and opts.predicate is None
        partition, store = self.own.locate(spec.name, key, allow_standby=stale)
        if partition is None:
            return self._not_ready()
        if stale and store is not None:
            return self._read(request, spec, key, partition, store, {SERVED_BY: me, STALE: "true"})
        if not self.own.ready:
            return self._not_ready()
        if store is not None:
            if opts.predicate is not None and not _windowed(spec):
                return await self._wait(spec, key, partition, store, opts.predicate, opts.timeout_s)
            return self._read(request, spec, key, partition, store, {SERVED_BY: me})
        owner = self.own.owner(spec.name, partition)
        if owner is None or owner == me or request.headers.get(FORWARDED):
            # The assignment map and the local tasks disagree: a rebalance is under way.
            return unavailable(f"partition {partition} of {spec.name} is moving", owner=owner)
        self.counters["forwarded"] += 1
        return await self.forwarder.forward(request, owner)

    async def _faust_key(self, request: web.Request, spec: Any, key: Any) -> web.Response:
        """A Faust table's key. Faust writes each update to the changelog partition of the
        record being processed, which need not be the partition of the table's key: the
        worker looks in every partition it holds, then asks the other holders."""
        if not self.own.ready:
            return self._not_ready()
        me = self.own.url
        owners = self.own.owners_of(spec.name)
        mine = [p for p, o in owners.items() if o == me]
        if mine:
            store: Any = self.own.local_store(spec.name, mine[0])  # a FaustPartition
            value = None if store is None else store.read(key)
            if value is not None:
                return self._value(spec, key, store.partition_of(key), value, {SERVED_BY: me})
        if request.headers.get(FORWARDED):
            return error(404, "unknown_key", f"no key {key!r} in {spec.name}", {SERVED_BY: me})
        missing = [p for p, o in owners.items() if o is None]
        for owner in sorted({o for o in owners.values() if o and o != me}):
            self.counters["forwarded"] += 1
            answer = await self.forwarder.forward(request, owner)
            if answer.status != 404:
                return answer
        if missing:
            return unavailable(f"partitions {missing} of {spec.name} have no owner yet")
        return error(404, "unknown_key", f"no key {key!r} in {spec.name}", {SERVED_BY: me})

    def _read_options(self, request: web.Request) -> "_ReadOptions":
        max_wait = self.settings.max_wait_ms
        return _ReadOptions(
            _wait_predicate(request.query.get("wait_for")),
            _int_param(request, "timeout_ms", min(10_000, max_wait), 1, max_wait) / 1000,
            request.query.get("allow_stale") == "true")

    def _read(self, request: web.Request, spec: TableSpec, key: Any, partition: int, store,
              headers: dict[str, str]) -> web.Response:
        if _windowed(spec):
            return self._windows(request, spec, key, partition, store, headers)
        return self._value(spec, key, partition, store.read(key, self.committed_reads), headers)

    def _windows(self, request: web.Request, spec, key: Any, partition: int, store,
                 headers: dict[str, str]) -> web.Response:
        """A windowed table's open windows of key, whose start lies in [from_ms, to_ms]."""
        try:
            lo = _int_param(request, "from_ms", -(1 << 62), -(1 << 62), 1 << 62)
            hi = _int_param(request, "to_ms", 1 << 62, -(1 << 62), 1 << 62)
        except BadKey as exc:
            return error(400, "bad_request", str(exc))
        rows = fetch_windows(store, key, lo, hi, self.committed_reads)
        if not rows:
            return error(404, "unknown_key", f"no open window of {key!r} in {spec.name}", headers)
        return json_response({"key": key, "partition": partition, "windows": [
            {"start": r.start, "end": r.end, "value": r.value} for r in rows]}, headers=headers)

    def _value(self, spec: TableSpec, key: Any, partition: int, value: Any,
               headers: dict[str, str]) -> web.Response:
        if value is None:
            return error(404, "unknown_key", f"no key {key!r} in {spec.name}", headers)
        return json_response({"key": key, "value": value, "partition": partition}, headers=headers)

    async def _wait(self, spec: TableSpec, key: Any, partition: int, store,
                    predicate: Callable[[Any], bool], timeout_s: float) -> web.Response:
        headers = {SERVED_BY: self.own.url}
        current = store.get_committed(key)
        if current is not None and predicate(current):
            return self._value(spec, key, partition, current, headers)
        try:
            value = await self.waiters.wait(spec.name, partition, spec.key_codec.encode(key),
                                            predicate, timeout_s)
        except asyncio.TimeoutError:
            return error(504, "timeout", f"{spec.name}[{key!r}] did not reach the state in time")
        except StoreMigrated:
            return unavailable(f"partition {partition} of {spec.name} moved", RETRY_MOVED_S)
        return self._value(spec, key, partition, value, headers)

    async def scan(self, request: web.Request) -> web.Response:
        spec = self._spec(request)
        if spec is None:
            return self._unknown(request)
        if _windowed(spec):
            return error(400, "windowed_table", f"{spec.name} is windowed: read a key's windows "
                         "with /tables/{name}/keys/{key}?from_ms=&to_ms=")
        try:
            params = self._scan_params(spec, request)
        except BadKey as exc:
            return error(400, "bad_request", str(exc))
        if not self.own.ready:
            return self._not_ready()
        limit = params.pop("limit")
        try:
            pages = await self._gather(spec, "scan", {**params, "limit": str(limit + 1)})
        except PeerError as exc:
            return unavailable(str(exc), owner=exc.owner)
        items, more = merge_pages(pages, limit)
        return json_response({"items": [{"key": k, "value": v} for _, k, v in items],
                              "next": b64(items[-1][0]) if more else None})

    async def count(self, request: web.Request) -> web.Response:
        spec = self._spec(request)
        if spec is None:
            return self._unknown(request)
        if _windowed(spec):
            return error(400, "windowed_table", f"{spec.name} is windowed: it has no key count")
        if not self.own.ready:
            return self._not_ready()
        try:
            counts = await self._gather(spec, "count", {})
        except PeerError as exc:
            return unavailable(str(exc), owner=exc.owner)
        return json_response({"table": spec.name, "count": sum(counts)})

    def _scan_params(self, spec: TableSpec, request: web.Request) -> dict[str, Any]:
        q = request.query
        codec = spec.key_codec
        out: dict[str, Any] = {"limit": _int_param(request, "limit", 100, 1,
                                                   self.settings.scan_max_limit)}
        for name in ("start", "end"):
            if q.get(name):
                out[name] = b64(codec.encode(parse_key(spec, q[name])))
        if q.get("prefix"):
            if spec.keys.name != "str":
                raise BadKey("prefix scans need string keys")
            out["prefix"] = b64(q["prefix"].encode())
        if q.get("cursor"):
            unb64(q["cursor"])
            out["after"] = q["cursor"]
        return out

    async def _gather(self, spec: TableSpec, what: str, params: dict[str, str]) -> list[Any]:
        """Run the local `what` on every owner for its partitions."""
        owners = self.own.owners_of(spec.name)
        missing = [p for p, o in owners.items() if o is None]
        if missing or not owners:
            raise PeerError("", f"partitions {missing} of {spec.name} have no owner yet")
        by_owner: dict[str, list[int]] = {}
        for p, o in owners.items():
            if o is not None:
                by_owner.setdefault(o, []).append(p)
        jobs = []
        for owner, parts in by_owner.items():
            if owner == self.own.url:
                jobs.append(self._local(spec, what, parts, params))
            else:
                jobs.append(self._remote(spec, what, owner, parts, params))
        return list(await asyncio.gather(*jobs))

    async def _local(self, spec: TableSpec, what: str, parts: list[int], params: dict[str, str]):
        stores = []
        for p in parts:
            store = self.own.local_store(spec.name, p)
            if store is None:
                raise PeerError(self.own.url, f"partition {p} of {spec.name} is moving")
            stores.append(store)
        if what == "count":
            return local_count(stores)
        return local_scan(stores, _opt_bytes(params, "start"), _opt_bytes(params, "end"),
                          _opt_bytes(params, "prefix"), _opt_bytes(params, "after"),
                          int(params["limit"]))

    async def _remote(self, spec, what, owner, parts, params):
        body = await self.forwarder.get_json(owner, f"/tables/{spec.name}/_local/{what}",
                                             {**params, "partitions": ",".join(map(str, parts))})
        if what == "count":
            return body["count"]
        return [(unb64(kb), k, v) for kb, k, v in body["items"]]

    async def local_scan(self, request: web.Request) -> web.Response:
        return await self._local_route(request, "scan")

    async def local_count(self, request: web.Request) -> web.Response:
        return await self._local_route(request, "count")

    async def _local_route(self, request: web.Request, what: str) -> web.Response:
        """A peer's share of a scan or count: only partitions this worker runs."""
        spec = self._spec(request)
        if spec is None:
            return self._unknown(request)
        if _windowed(spec):
            return error(400, "windowed_table", f"{spec.name} is windowed")
        try:
            parts = [int(p) for p in request.query.get("partitions", "").split(",") if p]
            params = {k: v for k, v in request.query.items() if v}
            params["limit"] = str(_int_param(request, "limit", 100, 1, self.settings.scan_max_limit + 1))
            result = await self._local(spec, what, parts, params)
        except (ValueError, BadKey) as exc:
            return error(400, "bad_request", str(exc))
        except PeerError as exc:
            return unavailable(str(exc))
        if what == "count":
            return json_response({"count": result})
        return json_response({"items": [[b64(kb), k, v] for kb, k, v in result]})


class _ReadOptions(NamedTuple):
    predicate: Callable[[Any], bool] | None
    timeout_s: float
    allow_stale: bool


_PLAIN = _ReadOptions(None, 0.0, False)  # a read without a query string: nothing to wait for


def _windowed(spec) -> bool:
    return getattr(spec, "windows", None) is not None


def _opt_bytes(params: dict[str, str], name: str) -> bytes | None:
    return unb64(params[name]) if params.get(name) else None


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadKey(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise BadKey(f"{name} must be between {low} and {high}")
    return value


def _wait_predicate(spec: str | None) -> Callable[[Any], bool] | None:
    """`field:V1,V2` -> value[field] in {V1, V2}."""
    if not spec:
        return None
    field, sep, values = spec.partition(":")
    if not sep or not field or not values:
        raise BadKey("wait_for takes field:VALUE[,VALUE...]")
    wanted = set(values.split(","))
    return lambda v: isinstance(v, dict) and str(v.get(field)) in wanted
