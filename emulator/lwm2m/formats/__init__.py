"""LwM2M 1.0 content formats: plain text, opaque, OMA-TLV, OMA-JSON, CoRE link.

Standard library only; every function is pure and the package holds no
mutable module-level state.

Value model (typed Python values inside the emulator), keyed by the
lower-case LwM2M type names used by :mod:`emulator.lwm2m.models`:

=========  ==========================================================
"string"   ``str``
"integer"  ``int`` (signed 64 bit)
"float"    ``float`` (an ``int`` is accepted on encoding)
"boolean"  ``bool``
"opaque"   ``bytes`` (``bytearray``/``memoryview`` accepted on encoding)
"time"     ``int`` (Unix seconds, signed 64 bit)
"objlnk"   ``tuple[int, int]`` (object id, instance id; each 0..65535)
"none"     executable resource: carries no value, never encodable
=========  ==========================================================

Tree shapes:

* single resource: ``Value``
* multiple resource: ``dict[int, Value]`` (resource instance id -> value)
* object instance: ``dict[int, Value | dict[int, Value]]`` (resource id -> ...)
* object: ``dict[int, instance-dict]`` (instance id -> instance dict)

Type lookups (``types`` arguments) are ``Callable[[int], str | None]``
(resource id -> type, ``None`` when unknown); a ``Mapping[int, str]`` is
accepted as well.  Encoders given ``types=None`` (or a lookup answering
``None``) infer the type from the Python value (see :func:`infer_type`).

Every malformed payload makes a decoder raise :class:`FormatError` (a
``ValueError``); values that do not fit their type make an encoder raise it
too.

Sub-modules: :mod:`.text`, :mod:`.opaque`, :mod:`.tlv`, :mod:`.json`,
:mod:`.link`.  :func:`encode` / :func:`decode` / :func:`decode_create`
dispatch on a content-format number and a request path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Union

__all__ = [
    "TEXT",
    "LINK",
    "OPAQUE",
    "TLV",
    "JSON",
    "OLD_TEXT",
    "OLD_TLV",
    "OLD_JSON",
    "MEDIA_TYPES",
    "DATA_FORMATS",
    "TYPES",
    "FormatError",
    "normalize",
    "media_type",
    "infer_type",
    "check_value",
    "lookup_type",
    "encode",
    "decode",
    "decode_create",
]

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


# --------------------------------------------------------------------------
# dispatch on content format + path (imports are placed here so that the
# sub-modules can import the helpers above from this package)

from . import json as json  # noqa: E402
from . import link as link  # noqa: E402
from . import opaque as opaque  # noqa: E402
from . import text as text  # noqa: E402
from . import tlv as tlv  # noqa: E402


def _check_path(path: Any) -> tuple[int, ...]:
    if not isinstance(path, (tuple, list)) or not 1 <= len(path) <= 3:
        raise FormatError(f"unsupported path {path!r} (expected /o, /o/i or /o/i/r)")
    return tuple(check_id(p, "path element") for p in path)


def encode(cf: int, path: tuple[int, ...], node: Any, types: TypeLookup = None) -> bytes:
    """Encode a read/observe answer for ``path`` in content format ``cf``.

    ``node`` is an object dict (path /o), an instance dict (/o/i) or a
    resource value / multiple-resource dict (/o/i/r).  ``types`` maps the
    resource ids of object ``path[0]``.  TEXT and OPAQUE only encode single
    resources.  TLV instance reads are encoded as bare resource TLVs.
    """
    cf = normalize(cf)
    p = _check_path(path)
    if cf in (TEXT, OPAQUE):
        if len(p) != 3 or isinstance(node, Mapping):
            raise FormatError("text/opaque formats only carry a single resource value")
        t = resolve(types, p[2], node)
        return (text if cf == TEXT else opaque).encode_value(t, node)
    if cf == TLV:
        if len(p) == 1:
            return tlv.encode_object(node, types)
        if len(p) == 2:
            return tlv.encode_instance(node, types)
        return tlv.encode_resource(p[2], node, resolve(types, p[2], node))
    if cf == JSON:
        if len(p) == 1:
            return json.encode_object(p[0], node, types)
        if len(p) == 2:
            return json.encode_instance(p[0], p[1], node, types)
        return json.encode_resource(p[0], p[1], p[2], node, resolve(types, p[2], node))
    raise FormatError(f"content format {cf} cannot carry resource data")


def decode(cf: int, path: tuple[int, ...], data: bytes, types: TypeLookup, *, keep_unknown: bool = False) -> Any:
    """Decode a write payload sent to ``path`` in content format ``cf``.

    Returns an object dict (/o), instance dict (/o/i) or resource value /
    multiple-resource dict (/o/i/r).  For a Create on /o use
    :func:`decode_create`.  ``keep_unknown`` (TLV only) keeps resources the
    lookup does not know as raw bytes instead of raising FormatError.
    """
    cf = normalize(cf)
    p = _check_path(path)
    if cf in (TEXT, OPAQUE):
        if len(p) != 3:
            raise FormatError("text/opaque formats only carry a single resource value")
        t = lookup_type(types, p[2])
        if t is None:
            raise FormatError(f"unknown resource {p[2]}")
        return (text if cf == TEXT else opaque).decode_value(t, data)
    if cf == TLV:
        if len(p) == 1:
            return tlv.decode_object(data, types, keep_unknown=keep_unknown)
        if len(p) == 2:
            return tlv.decode_instance(data, types, p[1], keep_unknown=keep_unknown)
        t = lookup_type(types, p[2])
        if t is None and not keep_unknown:
            raise FormatError(f"unknown resource {p[2]}")
        return tlv.decode_resource(data, p[2], t or "opaque")
    if cf == JSON:
        if len(p) == 1:
            return json.decode_object(data, p[0], types)
        if len(p) == 2:
            return json.decode_instance(data, p[0], p[1], types)
        t = lookup_type(types, p[2])
        if t is None:
            raise FormatError(f"unknown resource {p[2]}")
        return json.decode_resource(data, p[0], p[1], p[2], t)
    raise FormatError(f"content format {cf} cannot carry resource data")


def decode_create(
    cf: int, oid: int, data: bytes, types: TypeLookup, *, keep_unknown: bool = False
) -> list[tuple[int | None, dict[int, Any]]]:
    """Decode a Create payload sent to /oid: ``[(instance id or None, instance dict)]``.

    ``None`` means the payload carried no instance id (bare resources, TLV
    only) and the client picks one.
    """
    cf = normalize(cf)
    check_id(oid, "object id")
    if cf == TLV:
        return tlv.decode_create(data, types, keep_unknown=keep_unknown)
    if cf == JSON:
        return json.decode_create(data, oid, types)
    raise FormatError(f"content format {cf} cannot carry a Create payload")
