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
:mod:`.link`; the shared helpers live in :mod:`.values`.  :func:`encode` / :func:`decode` / :func:`decode_create`
dispatch on a content-format number and a request path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

from .values import (  # noqa: F401  (the package's public names)
    TEXT,
    LINK,
    OPAQUE,
    TLV,
    JSON,
    OLD_TEXT,
    OLD_TLV,
    OLD_JSON,
    MEDIA_TYPES,
    DATA_FORMATS,
    TYPES,
    INT64_MIN,
    INT64_MAX,
    MAX_ID,
    FormatError,
    normalize,
    media_type,
    TypeLookup,
    lookup_type,
    infer_type,
    check_value,
    resolve,
    check_id,
    is_finite,
)

# --------------------------------------------------------------------------
# dispatch on content format + path

from . import json as json
from . import link as link
from . import opaque as opaque
from . import text as text
from . import tlv as tlv


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
