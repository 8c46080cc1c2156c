"""Store key encodings whose byte order is the order of the key type, so that RocksDB
iterates strings lexicographically and integers numerically."""
from __future__ import annotations

import struct
from typing import Any, Protocol

from ..serde import Serde

_SIGN = 1 << 63
_U64 = struct.Struct(">Q")


class KeyCodec(Protocol):
    def encode(self, key: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


class StrKeys:
    """UTF-8: byte order equals code-point order."""

    def encode(self, key: Any) -> bytes:
        return key.encode() if isinstance(key, str) else str(key).encode()

    def decode(self, data: bytes) -> str:
        return data.decode()


class IntKeys:
    """64-bit big-endian with the sign bit flipped, so negatives sort first."""

    def encode(self, key: Any) -> bytes:
        return _U64.pack((int(key) + _SIGN) & 0xFFFFFFFFFFFFFFFF)

    def decode(self, data: bytes) -> int:
        return _U64.unpack(data)[0] - _SIGN


class SerdeKeys:
    """Any other key type: its serialized bytes (ordered as bytes)."""

    def __init__(self, serde: Serde) -> None:
        self.serde = serde

    def encode(self, key: Any) -> bytes:
        return self.serde.encode(key)

    def decode(self, data: bytes) -> Any:
        return self.serde.decode(data)


def codec_for(serde: Serde) -> KeyCodec:
    """The ordered store encoding for keys carried by this serde."""
    if serde.name == "str":
        return StrKeys()
    if serde.name == "int":
        return IntKeys()
    return SerdeKeys(serde)
