"""Plain-text content format (text/plain, 0; old number 1541), LwM2M 1.0 §6.4.1.

Only single resource values are carried.  Encodings:

* string  -> UTF-8
* integer -> ASCII decimal (``-42``)
* time    -> ASCII decimal Unix seconds (``1367491215``)
* float   -> ASCII decimal, the shortest digit string that round-trips the
  double, always written positionally with a decimal point and never with
  an exponent: ``23.4``, ``23.0``, ``-0.5``, ``10000000000000000.0``,
  ``0.00001``.  That is what Leshan's text encoder produces for ordinary
  magnitudes (``Double.toString`` gives ``23.0``) and any float parser
  (Java ``Double.valueOf``, C ``strtod``) reads it back exactly.  NaN and
  infinities have no text form -> FormatError.
* boolean -> ``0`` / ``1``
* objlnk  -> ``oid:iid`` (decimal, e.g. ``3:0``; null link ``65535:65535``)
* opaque  -> not allowed in LwM2M 1.0 text (use the opaque format) -> FormatError
* none    -> executable, no value -> FormatError

Decoding is strict: only ASCII digits (no whitespace, no ``_``), integers
within int64, floats in decimal notation (an exponent is accepted on input:
``2.3E1``) and finite, booleans exactly ``0`` or ``1``, valid UTF-8.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from .values import INT64_MAX, INT64_MIN, MAX_ID, FormatError, check_value, is_finite

__all__ = ["encode_value", "decode_value", "format_float"]

_INT_RE = re.compile(rb"[+-]?[0-9]+")
_FLOAT_RE = re.compile(rb"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,5})?")
_OBJLNK_RE = re.compile(rb"([0-9]{1,5}):([0-9]{1,5})")


def format_float(x: float) -> str:
    """Shortest round-trip decimal representation of ``x`` without exponent."""
    if not is_finite(x):
        raise FormatError(f"{x!r} has no decimal representation")
    r = repr(float(x))
    if "e" in r or "E" in r:
        r = format(Decimal(r), "f")
    if "." not in r:
        r += ".0"
    return r


def encode_value(type_: str, value: Any) -> bytes:
    """Encode one resource value as plain text."""
    if type_ == "opaque":
        raise FormatError("opaque resources cannot be encoded as plain text in LwM2M 1.0")
    v = check_value(type_, value)
    if type_ == "string":
        try:
            return v.encode("utf-8")
        except UnicodeEncodeError as e:
            raise FormatError(f"string is not encodable as UTF-8: {e}") from None
    if type_ in ("integer", "time"):
        return str(v).encode("ascii")
    if type_ == "float":
        return format_float(v).encode("ascii")
    if type_ == "boolean":
        return b"1" if v else b"0"
    if type_ == "objlnk":
        return f"{v[0]}:{v[1]}".encode("ascii")
    raise FormatError(f"type {type_!r} cannot be encoded as plain text")  # pragma: no cover


def _int(data: bytes, what: str) -> int:
    if not _INT_RE.fullmatch(data):
        raise FormatError(f"invalid {what} {data[:40]!r}")
    negative = data[:1] == b"-"
    digits = data.lstrip(b"+-").lstrip(b"0") or b"0"
    if len(digits) > 19:  # beyond int64; also keeps int() away from huge strings
        raise FormatError(f"{what} out of 64-bit range")
    n = -int(digits) if negative else int(digits)
    if not INT64_MIN <= n <= INT64_MAX:
        raise FormatError(f"{what} {n} out of 64-bit range")
    return n


def decode_value(type_: str, data: bytes) -> Any:
    """Decode a plain-text payload into a value of ``type_`` (strict)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError("payload must be bytes")
    data = bytes(data)
    if type_ == "string":
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"invalid UTF-8 in text payload: {e}") from None
    if type_ == "integer":
        return _int(data, "integer")
    if type_ == "time":
        return _int(data, "time")
    if type_ == "float":
        if not _FLOAT_RE.fullmatch(data):
            raise FormatError(f"invalid float {data[:40]!r}")
        x = float(data)
        if not is_finite(x):
            raise FormatError(f"float {data[:40]!r} out of range")
        return x
    if type_ == "boolean":
        if data == b"1":
            return True
        if data == b"0":
            return False
        raise FormatError(f"invalid boolean {data[:40]!r} (expected 0 or 1)")
    if type_ == "objlnk":
        m = _OBJLNK_RE.fullmatch(data)
        if not m:
            raise FormatError(f"invalid object link {data[:40]!r} (expected oid:iid)")
        oid, iid = int(m.group(1)), int(m.group(2))
        if oid > MAX_ID or iid > MAX_ID:
            raise FormatError(f"object link {oid}:{iid} out of range")
        return (oid, iid)
    if type_ == "opaque":
        raise FormatError("opaque resources cannot be carried as plain text in LwM2M 1.0")
    if type_ == "none":
        raise FormatError("executable resources carry no value")
    raise FormatError(f"unknown LwM2M type {type_!r}")
