"""Opaque content format (application/octet-stream, 42), LwM2M 1.0 §6.4.2.

Carries the raw bytes of a single opaque resource; any other type raises
FormatError.
"""

from __future__ import annotations

from typing import Any

from .values import FormatError, check_value

__all__ = ["encode_value", "decode_value"]


def encode_value(type_: str, value: Any) -> bytes:
    """Raw bytes of an opaque resource value."""
    if type_ != "opaque":
        raise FormatError(f"the opaque format only carries opaque resources, not {type_!r}")
    return check_value("opaque", value)


def decode_value(type_: str, data: bytes) -> bytes:
    """The payload itself, for an opaque resource."""
    if type_ != "opaque":
        raise FormatError(f"the opaque format only carries opaque resources, not {type_!r}")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError("payload must be bytes")
    return bytes(data)
