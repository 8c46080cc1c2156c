"""OpenAPI descriptions of the gateway's routes, merged into the worker's GET /openapi.json
(the gateway is a part of its app: streamkit.parts)."""
from __future__ import annotations

from typing import Any

from ..ops.openapi import error_response, get_operation, ok_response

_ANY = {"description": "any JSON value"}
_err, _ok, _get = error_response, ok_response, get_operation


def _param(name: str, where: str, description: str, required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required or where == "path",
            "schema": {"type": "string"}, "description": description}


_SERVICE_ERRORS = {
    "400": _err("malformed JSON, bad X-Timeout-Ms or wait_for"),
    "401": _err("missing or wrong token"),
    "404": _err("unknown service"),
    "413": _err("body over STREAMKIT_GATEWAY_MAX_BODY_BYTES"),
    "502": _err("the service's reply names no entity to wait on"),
    "503": _err("too many parked requests or the broker is unavailable; retry after Retry-After"),
    "504": _err("no reply (or state) before the deadline"),
}


def _api_operation(method: str, with_path: bool) -> dict:
    params = [_param("service", "path", "a service named in STREAMKIT_GATEWAY_SERVICES")]
    if with_path:
        params.append(_param("path", "path", "passed to the service; its first segment is the "
                                             "entity id that keys the request"))
    params += [
        _param("wait_for", "query", "field:V1,V2 - answer once the entity the reply names has "
                                    "value[field] in (V1, V2)"),
        _param("X-Timeout-Ms", "header", "deadline in ms (default STREAMKIT_GATEWAY_TIMEOUT_MS)"),
        _param("Idempotency-Key", "header", "passed to the service as request_id"),
        _param("X-Trace-Id", "header", "carried in the envelope and the reply"),
    ]
    op: dict[str, Any] = {
        "summary": f"{method} to a service through its request topic, answered with its reply",
        "parameters": params,
        "responses": {"200": _ok("the service's reply (status and body are the service's)", _ANY),
                      **_SERVICE_ERRORS},
    }
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        op["requestBody"] = {"required": False,
                             "content": {"application/json": {"schema": _ANY}}}
    return op


def gateway_paths() -> dict[str, Any]:
    """The paths of a gateway app's own routes."""
    methods = ("get", "post", "put", "delete", "patch")
    app_param = _param("app", "path", "an app id from the registry")
    relay = {"404": _err("unknown app"), "503": _err("no host of the app answered")}
    return {
        "/api/{service}": {m: _api_operation(m.upper(), False) for m in methods},
        "/api/{service}/{path}": {m: _api_operation(m.upper(), True) for m in methods},
        "/ws": _get("websocket: {id, service, method, path, query, body, wait_for, timeout_ms} "
                    "frames in, {id, status, body} frames out", extra={
                        "101": {"description": "switching to the websocket protocol"},
                        "400": _err("not a websocket upgrade request"),
                        "429": _err("the instance holds its limit of websockets")}),
        "/gateway/stats": _get("parked requests, owned response partitions and counters"),
        "/gateway/workers": _get("every worker of every registered app, with its /metrics "
                                 "text (what the deployment's /ui shows)"),
        "/gateway/responses": {"post": {
            "summary": "replies handed over by the instance that consumed them (internal)",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"type": "array", "items": {"type": "object"}}}}},
            "responses": {"200": _ok("how many were delivered and how many were late"),
                          "400": _err("not a JSON list"), "401": _err("missing or wrong token")}}},
        "/apps": _get("every app the registry knows"),
        "/apps/{app}": _get("an app's registry record", [app_param], {"404": _err("unknown app")}),
        "/apps/{app}/tables/{table}/keys/{key}": _get(
            "one key of an app's table, read from its owner",
            [app_param, _param("table", "path", "table"), _param("key", "path", "key")], relay),
        "/apps/{app}/{tail}": _get("any query route of an app, sent to one of its hosts",
                                   [app_param, _param("tail", "path", "the route on the app")],
                                   relay),
    }
