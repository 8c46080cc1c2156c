"""The OpenAPI 3 document of a worker's routes (GET /openapi.json). A test checks that every
route the worker serves is described here."""
from __future__ import annotations

import copy
from typing import Any

_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {
    "type": "object", "required": ["code", "message"],
    "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}}}


def _err(description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _ok(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_COMMON = {
    "400": _err("bad input"), "401": _err("missing or wrong token"), "414": _err("URI too long"),
    "431": _err("headers too large"),
    "503": _err("rebalancing or recovering; retry after Retry-After seconds"),
}
_TABLE = {"name": "table", "in": "path", "required": True, "schema": {"type": "string"}}
_KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
_PARTS = {"name": "partitions", "in": "query", "required": False,
          "schema": {"type": "string", "pattern": "^[0-9]+(,[0-9]+)*$"},
          "description": "comma-separated partitions this worker runs"}


def _q(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def _get(summary: str, ok: dict[str, Any], params: list | None = None, extra: dict | None = None,
         open_route: bool = False) -> dict[str, Any]:
    responses = {"200": ok, **({} if open_route else _COMMON), **(extra or {})}
    if open_route:
        responses["503"] = _COMMON["503"]
    return {"get": {"summary": summary, "parameters": params or [], "responses": responses,
                    **({"security": []} if open_route else {})}}


def error_response(description: str) -> dict[str, Any]:
    """A response carrying the JSON error body."""
    return _err(description)


def ok_response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A 200 response with a JSON body (an object unless schema says otherwise)."""
    return _ok(description, schema or {"type": "object"})


def get_operation(summary: str, params: list | None = None, extra: dict | None = None
                  ) -> dict[str, Any]:
    """A path item with one GET answering JSON (and 401 without the deployment's token)."""
    return {"get": {"summary": summary, "parameters": params or [],
                    "responses": {"200": ok_response(summary),
                                  "401": error_response("missing or wrong token"),
                                  **(extra or {})}}}


def document(title: str = "streamkit worker", extra_paths: dict[str, Any] | None = None,
             tables: list[str] | None = None, secured: bool = False,
             max_wait_ms: int = 60000) -> dict[str, Any]:
    """The document of this deployment: extra_paths (e.g. the gateway's routes) merged in,
    the table parameter limited to the exposed tables, bearer security when a token is set."""
    table_param = dict(_TABLE, schema={"type": "string", "enum": tables}) if tables else _TABLE
    paths = _paths(extra_paths, max_wait_ms)
    for ops in paths.values():
        for op in ops.values():
            op["parameters"] = [table_param if p is _TABLE else p for p in op.get("parameters", [])]
            if not secured:
                op.pop("security", None)
                op["responses"].pop("401", None)
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": "1"},
        "components": {
            "schemas": {"Error": _ERROR},
            **({"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}} if secured else {}),
        },
        **({"security": [{"bearer": []}]} if secured else {}),
        "paths": paths,
    }


def _paths(extra_paths: dict[str, Any] | None, max_wait_ms: int) -> dict[str, Any]:
    entry = {"type": "object", "required": ["key", "value"],
             "properties": {"key": {}, "value": {}, "partition": {"type": "integer"}}}
    return {
            "/health": _get("the process is up", _ok("up", {"type": "object"}), open_route=True),
            "/ready": _get("partitions assigned and tables recovered",
                           _ok("ready", {"type": "object"}), open_route=True),
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {
                "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}},
                "401": _COMMON["401"]}}},
            "/topology": _get("the processing graph", _ok("graph", {"type": "object"})),
            "/ui": {"get": {"summary": "the topology drawn, with live lag and counters",
                            "parameters": [_q("token", {"type": "string"}, "the API token, for browsers")],
                            "responses": {"200": {"description": "an HTML page", "content": {
                                "text/html": {"schema": {"type": "string"}}}},
                                "401": _COMMON["401"]}}},
            "/openapi.json": _get("this document", _ok("OpenAPI 3", {"type": "object"})),
            "/metadata": _get("which worker owns which partition of which table",
                              _ok("ownership", {"type": "object"})),
            "/tables": _get("the exposed tables", _ok("tables", {"type": "object", "properties": {
                "tables": {"type": "array", "items": {"type": "object"}}}})),
            "/tables/{table}": _get(
                "scan in key order, gathered from every worker, with paging",
                _ok("a page", {"type": "object", "required": ["items", "next"], "properties": {
                    "items": {"type": "array", "items": entry},
                    "next": {"type": "string", "nullable": True}}}),
                [_TABLE, _q("prefix", {"type": "string"}, "keys starting with (string keys)"),
                 _q("start", {"type": "string"}, "first key, inclusive"),
                 _q("end", {"type": "string"}, "last key, exclusive"),
                 _q("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "page size"),
                 _q("cursor", {"type": "string"}, "the previous page's next")],
                {"404": _err("unknown table")}),
            "/tables/{table}/count": _get(
                "number of keys", _ok("count", {"type": "object", "properties": {
                    "count": {"type": "integer"}}}), [_TABLE], {"404": _err("unknown table")}),
            "/tables/{table}/keys/{key}": _get(
                "one key, served by the worker that owns it", _ok("the value", entry),
                [_TABLE, _KEY,
                 _q("allow_stale", {"type": "string", "enum": ["true", "false"]},
                    "may read a standby replica"),
                 _q("wait_for", {"type": "string", "pattern": "^[^:]+:.+$"},
                    "field:V1,V2 - answer once value[field] is one of them"),
                 _q("timeout_ms", {"type": "integer", "minimum": 1, "maximum": max_wait_ms},
                    "for wait_for (at most STREAMKIT_MAX_WAIT_MS)"),
                 _q("from_ms", {"type": "integer"}, "windowed tables: windows starting at or after"),
                 _q("to_ms", {"type": "integer"}, "windowed tables: windows starting at or before")],
                {"404": _err("unknown table or key"), "504": _err("wait_for timed out")}),
            "/tables/{table}/_local/scan": _get(
                "a peer's share of a scan (internal)", _ok("items", {"type": "object"}),
                [_TABLE, _PARTS,
                 _q("limit", {"type": "integer", "minimum": 1, "maximum": 1001}, "page size"),
                 _q("start", {"type": "string"}, "encoded first key"),
                 _q("end", {"type": "string"}, "encoded end"),
                 _q("prefix", {"type": "string"}, "encoded prefix"),
                 _q("after", {"type": "string"}, "encoded cursor")],
                {"404": _err("unknown table")}),
            "/tables/{table}/_local/count": _get(
                "a peer's share of a count (internal)", _ok("count", {"type": "object"}),
                [_TABLE, _PARTS],
                {"404": _err("unknown table")}),
            **copy.deepcopy(extra_paths or {}),
    }
