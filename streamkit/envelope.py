"""The request and reply envelopes that travel on request and response topics (JSON).

Request (value on the service's request topic; key = entity id, else request id, else
correlation id):
    {"v": 1, "id", "reply_to", "instance", "method", "path", "query", "body",
     "deadline_ms", "trace_id", "request_id", "sent_ms"}
Reply (value on the gateway's response topic; key = correlation id, UTF-8):
    {"v": 1, "id", "status", "body", "error", "instance", "trace_id", "entity"}

`instance` is the URL of the gateway instance that parked the HTTP request; a service
copies it into its reply so that whichever instance consumes the reply can hand it to the
one that holds the request.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import orjson

from .errors import EnvelopeError
from .serde import dumps

VERSION = 1
METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "PATCH"})


def entity_of(path: str) -> str | None:
    """The entity a path names: its first segment ('o-17/items' -> 'o-17'), or None."""
    first = path.lstrip("/").split("/", 1)[0]
    return first or None


@dataclass(frozen=True)
class RequestEnvelope:
    id: str
    reply_to: str
    instance: str
    method: str
    path: str = ""
    query: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    deadline_ms: int = 0
    trace_id: str = ""
    request_id: str | None = None
    sent_ms: int = 0

    @property
    def entity(self) -> str | None:
        return entity_of(self.path)

    def key(self) -> bytes:
        """The record key: the entity id keeps one entity's requests in order; without
        one, the request id puts a client's retries where the first attempt went (and
        where its reply is recorded)."""
        return (self.entity or self.request_id or self.id).encode()

    def encode(self) -> bytes:
        return dumps({"v": VERSION, "id": self.id, "reply_to": self.reply_to,
                      "instance": self.instance, "method": self.method, "path": self.path,
                      "query": dict(self.query), "body": self.body,
                      "deadline_ms": self.deadline_ms, "trace_id": self.trace_id,
                      "request_id": self.request_id, "sent_ms": self.sent_ms})

    @classmethod
    def decode(cls, data: bytes | None) -> "RequestEnvelope":
        obj = _object(data)
        for name in ("id", "reply_to", "instance", "method"):
            if not isinstance(obj.get(name), str) or not obj[name]:
                raise EnvelopeError(f"request envelope lacks {name!r}", obj)
        if obj["method"] not in METHODS:
            raise EnvelopeError(f"unknown method {obj['method']!r}", obj)
        query = obj.get("query") or {}
        if not isinstance(query, dict):
            raise EnvelopeError("query must be an object", obj)
        request_id = obj.get("request_id")
        if request_id is not None and not isinstance(request_id, str):
            raise EnvelopeError("request_id must be a string", obj)
        return cls(id=obj["id"], reply_to=obj["reply_to"], instance=obj["instance"],
                   method=obj["method"], path=str(obj.get("path") or ""), query=query,
                   body=obj.get("body"), deadline_ms=_millis(obj, "deadline_ms"),
                   trace_id=str(obj.get("trace_id") or ""),
                   request_id=request_id, sent_ms=_millis(obj, "sent_ms"))


@dataclass(frozen=True)
class ReplyEnvelope:
    id: str
    status: int
    body: Any = None
    error: Mapping[str, Any] | None = None
    instance: str | None = None
    trace_id: str = ""
    entity: Mapping[str, Any] | None = None

    def encode(self) -> bytes:
        return dumps(self.to_dict())

    def to_dict(self) -> dict:
        return {"v": VERSION, "id": self.id, "status": self.status, "body": self.body,
                "error": dict(self.error) if self.error else None, "instance": self.instance,
                "trace_id": self.trace_id, "entity": dict(self.entity) if self.entity else None}

    def http_body(self) -> Any:
        """What the HTTP client gets: the body, or {"error": ...} for a failed request."""
        return {"error": dict(self.error)} if self.error else self.body

    @classmethod
    def decode(cls, data: bytes | None, key: bytes | None = None) -> "ReplyEnvelope":
        return cls.from_dict(_object(data), key)

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any], key: bytes | None = None) -> "ReplyEnvelope":
        cid = obj.get("id")
        if not cid and key:
            cid = key.decode(errors="replace")  # the key is the correlation id by contract
        if not isinstance(cid, str) or not cid:
            raise EnvelopeError("reply envelope lacks 'id'", obj)
        status = obj.get("status")
        if not isinstance(status, int) or not 100 <= status <= 599:
            raise EnvelopeError(f"reply status {status!r} is not an HTTP status", obj)
        error = obj.get("error")
        entity = obj.get("entity")
        instance = obj.get("instance")
        # A reply whose instance is not a URL is still answered by an instance that holds
        # its request; no other can be found for it.
        return cls(id=cid, status=status, body=obj.get("body"),
                   error=error if isinstance(error, dict) else None,
                   instance=instance if isinstance(instance, str) and instance else None,
                   trace_id=str(obj.get("trace_id") or ""),
                   entity=entity if isinstance(entity, dict) else None)


def _millis(obj: Mapping[str, Any], name: str) -> int:
    """A time in milliseconds since the epoch (0 when absent): a JSON number."""
    value = obj.get(name)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value \
            or abs(value) >= 1 << 62:
        raise EnvelopeError(f"{name} must be milliseconds since the epoch, not {value!r}", obj)
    return int(value)


def _object(data: bytes | None) -> dict:
    if not data:
        raise EnvelopeError("empty envelope")
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EnvelopeError(f"envelope is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise EnvelopeError("envelope is not a JSON object")
    return obj
