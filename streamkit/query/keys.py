"""Table keys from URL text, and opaque scan cursors."""
from __future__ import annotations

import base64
import binascii
from typing import Any

import orjson

from ..errors import BadKey
from ..processing.topology import TableSpec


def parse_key(spec: TableSpec, raw: str) -> Any:
    """The key in the table's key type, from its URL text."""
    return parse_key_text(spec.keys.name, raw)


def parse_key_text(kind: str, raw: str) -> Any:
    """The key of a key serde named `kind` ('str', 'int', 'raw', 'json'), from URL text."""
    if kind == "str":
        return raw
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise BadKey(f"key {raw!r} is not an integer") from None
    if kind == "raw":
        return raw.encode()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw  # a bare string where a JSON key is expected


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise BadKey(f"{text!r} is not a valid cursor") from None
