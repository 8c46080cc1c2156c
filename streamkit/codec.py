"""orjson as Faust's "json" codec, so Faust agents and topics share streamkit's JSON."""
from __future__ import annotations

from typing import Any

import orjson
from faust.serializers import codecs

from .serde import dumps


class OrjsonCodec(codecs.Codec):
    """JSON through orjson; faust.Record values serialize as their fields."""

    def _loads(self, s: bytes) -> Any:
        return orjson.loads(s)

    def _dumps(self, s: Any) -> bytes:
        return dumps(s)


def install() -> None:
    """Register orjson under Faust's codec name "json" (idempotent)."""
    if not isinstance(codecs.codecs.get("json"), OrjsonCodec):
        codecs.register("json", OrjsonCodec())
