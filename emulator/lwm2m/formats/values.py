"""Content-format numbers, the value model's type names and the helpers every format module shares
(type lookup, value checks, id checks). Its own module so that the format modules and the package's
dispatch (``formats/__init__``) both import it without importing each other."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Union

# --------------------------------------------------------------------------
# content-format numbers

TEXT = 0  #: text/plain
LINK = 40  #: application/link-format
OPAQUE = 42  #: application/octet-stream
TLV = 11542  #: application/vnd.oma.lwm2m+tlv
JSON = 11543  #: application/vnd.oma.lwm2m+json

# numbers used before the IANA registration (LwM2M 1.0 drafts, old servers)
OLD_TEXT = 1541
OLD_TLV = 1542
OLD_JSON = 1543

_OLD_TO_NEW = MappingProxyType({OLD_TEXT: TEXT, OLD_TLV: TLV, OLD_JSON: JSON})

#: content-format number -> media type
MEDIA_TYPES: Mapping[int, str] = MappingProxyType(
    {
        TEXT: "text/plain;charset=utf-8",
        LINK: "application/link-format",
        OPAQUE: "application/octet-stream",
        TLV: "application/vnd.oma.lwm2m+tlv",
        JSON: "application/vnd.oma.lwm2m+json",
    }
)

#: content formats that carry resource data (after :func:`normalize`)
DATA_FORMATS = frozenset({TEXT, OPAQUE, TLV, JSON})

#: the LwM2M type names of the value model
TYPES = frozenset({"string", "integer", "float", "boolean", "opaque", "time", "objlnk", "none"})

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1
MAX_ID = 65535


class FormatError(ValueError):
    """A payload cannot be decoded, or a value cannot be encoded, in a format."""


def normalize(cf: int) -> int:
    """Map the pre-standard numbers 1541/1542/1543 to 0/11542/11543.

    Any other number is returned unchanged.
    """
    return _OLD_TO_NEW.get(cf, cf)


def media_type(cf: int) -> str | None:
    """The media type of a content format (old numbers accepted), or None."""
    return MEDIA_TYPES.get(normalize(cf))


# --------------------------------------------------------------------------
# value model helpers (used by the sub-modules)

TypeLookup = Union[Callable[[int], "str | None"], Mapping[int, str], None]


def lookup_type(types: TypeLookup, rid: int) -> str | None:
    """Resolve a resource type through a callable or mapping lookup."""
    if types is None:
        return None
    if isinstance(types, Mapping):
        t = types.get(rid)
    else:
        t = types(rid)
    if t is not None and t not in TYPES:
        raise FormatError(f"unknown LwM2M type {t!r} for resource {rid}")
    return t


def infer_type(value: Any) -> str:
    """The LwM2M type a Python value maps to when no model type is known.

    ``bool`` -> boolean, ``int`` -> integer, ``float`` -> float, ``str`` ->
    string, bytes-like -> opaque, 2-tuple of ints -> objlnk.  Time values are
    plain ints and so infer as integer (same wire encoding in every format).
    """
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "opaque"
    if isinstance(value, tuple) and len(value) == 2:
        return "objlnk"
    raise FormatError(f"cannot infer an LwM2M type for {type(value).__name__} value")


def check_value(type_: str, value: Any) -> Any:
    """Validate ``value`` against ``type_`` and return its canonical form.

    Raises FormatError when the value does not belong to the type (for
    example a bool for "integer", or an integer outside int64).  NaN and
    infinite floats pass here (TLV can carry them); text and JSON reject them.
    """
    if type_ == "string":
        if isinstance(value, str):
            return value
    elif type_ in ("integer", "time"):
        if isinstance(value, int) and not isinstance(value, bool):
            if INT64_MIN <= value <= INT64_MAX:
                return int(value)
            raise FormatError(f"{type_} value {value} does not fit in 64 bits")
    elif type_ == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise FormatError(f"integer {value} too large for a float") from None
    elif type_ == "boolean":
        if isinstance(value, bool):
            return value
    elif type_ == "opaque":
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
    elif type_ == "objlnk":
        if (
            isinstance(value, (tuple, list))
            and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        ):
            oid, iid = value
            if 0 <= oid <= MAX_ID and 0 <= iid <= MAX_ID:
                return (int(oid), int(iid))
            raise FormatError(f"object link {value!r} out of range 0..65535")
    elif type_ == "none":
        raise FormatError("executable resources carry no value")
    else:
        raise FormatError(f"unknown LwM2M type {type_!r}")
    raise FormatError(f"{type(value).__name__} value {value!r:.60} is not a valid {type_}")


def resolve(types: TypeLookup, rid: int, value: Any) -> str:
    """Type used to encode resource ``rid`` holding ``value`` (lookup, else inferred)."""
    t = lookup_type(types, rid)
    if t is not None:
        return t
    if isinstance(value, Mapping):
        for v in value.values():
            return infer_type(v)
        return "opaque"  # empty multiple resource: the type does not matter
    return infer_type(value)


def check_id(i: Any, what: str = "id") -> int:
    """Validate an object/instance/resource id (0..65535)."""
    if not isinstance(i, int) or isinstance(i, bool) or not 0 <= i <= MAX_ID:
        raise FormatError(f"invalid {what} {i!r}")
    return i


def is_finite(x: float) -> bool:
    return not (math.isnan(x) or math.isinf(x))


