"""OMA LwM2M JSON content format (application/vnd.oma.lwm2m+json, 11543; old 1543).

LwM2M 1.0 §6.4.4::

    {"bn":"/3/0/","e":[{"n":"0","sv":"Open Mobile Alliance"},
                       {"n":"6/0","v":1},{"n":"13","v":1367491215}]}

Value keys: ``v`` number (integer, float, time), ``sv`` string (string, and
opaque as standard base64 with padding), ``bv`` boolean, ``ov`` object link
``"oid:iid"``.

Encoders (the base names follow Leshan, which follows the spec examples):

* object /o            -> ``bn "/o/"``, names ``"i/r"`` / ``"i/r/ri"``
* instance /o/i        -> ``bn "/o/i/"``, names ``"r"`` / ``"r/ri"``
* single resource      -> ``bn "/o/i/r"``, one entry without ``n``
* multiple resource    -> ``bn "/o/i/r/"``, names ``"ri"``

Output is compact UTF-8 JSON with ``bn`` before ``e``; object links are
written with ``ov`` (as the spec says; Leshan reads ``ov`` and ``sv``).

Decoders accept ``bn`` present or absent.  The path of an entry is
``bn + n``; when it does not start with ``/`` it is taken relative to the
request path (so ``{"e":[{"n":"0","v":1}]}`` written to /1/0 means
/1/0/0).  Every entry must resolve to a resource or resource instance under
the request path.  ``t`` / ``bt`` are accepted (numbers) and ignored.
Objlnk values are read from ``ov`` or ``sv``.  Anything else is a
FormatError: invalid UTF-8 or JSON, NaN/Infinity literals, duplicate keys,
unknown keys, an entry with no or several value keys, a value key not
matching the resource type, integers beyond int64 or non-integral, bad
base64, duplicate or conflicting (``6`` and ``6/0``) entries.  JSON Create
payloads must name the instance (as Leshan's encoder always does).
"""

from __future__ import annotations

import base64
import binascii
import json as _json
import re
from collections.abc import Mapping
from typing import Any

from .values import (
    INT64_MAX,
    INT64_MIN,
    MAX_ID,
    FormatError,
    TypeLookup,
    check_id,
    check_value,
    is_finite,
    lookup_type,
    resolve,
)

__all__ = [
    "encode_resource",
    "encode_instance",
    "encode_object",
    "decode_resource",
    "decode_instance",
    "decode_object",
    "decode_create",
    "parse_entries",
]

_ROOT_KEYS = frozenset({"bn", "bt", "e"})
_ENTRY_KEYS = frozenset({"n", "t", "v", "sv", "bv", "ov"})
_VALUE_KEYS = ("v", "sv", "bv", "ov")
_SEGMENT = re.compile(r"[0-9]{1,5}", re.ASCII)
_OBJLNK = re.compile(r"([0-9]{1,5}):([0-9]{1,5})", re.ASCII)


# --------------------------------------------------------------------------
# encoding


def _value_item(type_: str, value: Any) -> tuple[str, Any]:
    v = check_value(type_, value)
    if type_ == "string":
        return "sv", v
    if type_ == "opaque":
        return "sv", base64.b64encode(v).decode("ascii")
    if type_ in ("integer", "time"):
        return "v", v
    if type_ == "float":
        if not is_finite(v):
            raise FormatError(f"{v!r} cannot be represented in JSON")
        return "v", v
    if type_ == "boolean":
        return "bv", v
    if type_ == "objlnk":
        return "ov", f"{v[0]}:{v[1]}"
    raise FormatError(f"type {type_!r} cannot be encoded")  # pragma: no cover


def _entry(name: str | None, type_: str, value: Any) -> dict[str, Any]:
    e: dict[str, Any] = {}
    if name is not None:
        e["n"] = name
    k, v = _value_item(type_, value)
    e[k] = v
    return e


def _sorted(m: Mapping[Any, Any], what: str) -> list[tuple[int, Any]]:
    if not isinstance(m, Mapping):
        raise FormatError(f"{what} must be a dict")
    for k in m:
        check_id(k, what + " key")
    return sorted(m.items())


def _resource_entries(prefix: str, rid: int, value: Any, type_: str) -> list[dict[str, Any]]:
    if isinstance(value, Mapping):
        return [_entry(f"{prefix}{rid}/{ri}", type_, v) for ri, v in _sorted(value, "resource instances")]
    return [_entry(f"{prefix}{rid}", type_, value)]


def _instance_entries(prefix: str, inst: Mapping[int, Any], types: TypeLookup) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for rid, v in _sorted(inst, "object instance"):
        out += _resource_entries(prefix, rid, v, resolve(types, rid, v))
    return out


def _dump(bn: str, entries: list[dict[str, Any]]) -> bytes:
    try:
        s = _json.dumps({"bn": bn, "e": entries}, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return s.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as e:
        raise FormatError(f"cannot encode JSON: {e}") from None


def encode_resource(oid: int, iid: int, rid: int, value: Any, type_: str) -> bytes:
    """Read answer for /oid/iid/rid (single value, or ``dict`` for a multiple resource)."""
    for i in (oid, iid, rid):
        check_id(i, "path element")
    if isinstance(value, Mapping):
        entries = [_entry(str(ri), type_, v) for ri, v in _sorted(value, "resource instances")]
        return _dump(f"/{oid}/{iid}/{rid}/", entries)
    return _dump(f"/{oid}/{iid}/{rid}", [_entry(None, type_, value)])


def encode_instance(oid: int, iid: int, inst: Mapping[int, Any], types: TypeLookup = None) -> bytes:
    """Read answer for /oid/iid."""
    check_id(oid, "object id")
    check_id(iid, "instance id")
    return _dump(f"/{oid}/{iid}/", _instance_entries("", inst, types))


def encode_object(oid: int, obj: Mapping[int, Mapping[int, Any]], types: TypeLookup = None) -> bytes:
    """Read answer for /oid."""
    check_id(oid, "object id")
    entries: list[dict[str, Any]] = []
    for iid, inst in _sorted(obj, "object"):
        entries += _instance_entries(f"{iid}/", inst, types)
    return _dump(f"/{oid}/", entries)


# --------------------------------------------------------------------------
# decoding


def _no_constants(name: str) -> Any:
    raise FormatError(f"{name} is not valid JSON")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:
        if k in d:
            raise FormatError(f"duplicate JSON key {k!r}")
        d[k] = v
    return d


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _load(data: bytes) -> dict[str, Any]:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError("payload must be bytes")
    try:
        text = bytes(data).decode("utf-8")
    except UnicodeDecodeError as e:
        raise FormatError(f"invalid UTF-8 in JSON payload: {e}") from None
    try:
        doc = _json.loads(text, parse_constant=_no_constants, object_pairs_hook=_no_duplicates)
    except FormatError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError, int digit limit, deep nesting
        raise FormatError(f"invalid JSON: {str(e)[:100]}") from None
    if not isinstance(doc, dict):
        raise FormatError("LwM2M JSON payload must be a JSON object")
    extra = set(doc) - _ROOT_KEYS
    if extra:
        raise FormatError(f"unknown LwM2M JSON keys {sorted(extra)!r:.80}")
    if "e" not in doc or not isinstance(doc["e"], list):
        raise FormatError('LwM2M JSON payload needs an "e" array')
    if "bn" in doc and not isinstance(doc["bn"], str):
        raise FormatError('"bn" must be a string')
    if "bt" in doc and not _is_number(doc["bt"]):
        raise FormatError('"bt" must be a number')
    return doc


def _parse_path(s: str) -> tuple[int, ...]:
    body = s[1:]
    if body.endswith("/"):
        body = body[:-1]
    if body == "":
        return ()
    out = []
    for seg in body.split("/"):
        if not _SEGMENT.fullmatch(seg) or int(seg) > MAX_ID:
            raise FormatError(f"invalid path {s[:80]!r}")
        out.append(int(seg))
    return tuple(out)


def parse_entries(data: bytes, request_path: tuple[int, ...]) -> list[tuple[tuple[int, ...], str, Any]]:
    """Low-level decoding: ``[(absolute path, value key, raw JSON value)]``.

    Paths are resolved against ``bn`` and ``request_path`` and must be a
    resource (3 ids) or resource instance (4 ids) under ``request_path``.
    """
    doc = _load(data)
    bn = doc.get("bn", "")
    rp = "/" + "/".join(str(p) for p in request_path) + "/" if request_path else "/"
    out = []
    for e in doc["e"]:
        if not isinstance(e, dict):
            raise FormatError('"e" items must be JSON objects')
        extra = set(e) - _ENTRY_KEYS
        if extra:
            raise FormatError(f"unknown LwM2M JSON entry keys {sorted(extra)!r:.80}")
        name = e.get("n", "")
        if not isinstance(name, str):
            raise FormatError('"n" must be a string')
        if "t" in e and not _is_number(e["t"]):
            raise FormatError('"t" must be a number')
        keys = [k for k in _VALUE_KEYS if k in e]
        if len(keys) != 1:
            raise FormatError(f"entry {name[:40]!r} must have exactly one of v/sv/bv/ov")
        full = bn + name
        if not full.startswith("/"):
            full = rp + full
        path = _parse_path(full)
        if len(path) not in (3, 4) or path[: len(request_path)] != tuple(request_path):
            raise FormatError(f"entry path {full[:80]!r} is not a resource under the request path")
        out.append((path, keys[0], e[keys[0]]))
    return out


def _int_value(x: Any, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise FormatError(f"{what} needs a number")
    if isinstance(x, float):
        if not is_finite(x) or not x.is_integer():
            raise FormatError(f"{what} value {x!r} is not an integer")
        x = int(x)
    if not INT64_MIN <= x <= INT64_MAX:
        raise FormatError(f"{what} value out of 64-bit range")
    return x


def _value(type_: str, key: str, x: Any) -> Any:
    if type_ in ("integer", "time"):
        if key != "v":
            raise FormatError(f"{type_} resource needs a \"v\" value, got {key!r}")
        return _int_value(x, type_)
    if type_ == "float":
        if key != "v" or isinstance(x, bool) or not isinstance(x, (int, float)):
            raise FormatError('float resource needs a numeric "v" value')
        try:
            f = float(x)
        except OverflowError:
            raise FormatError("float value out of range") from None
        if not is_finite(f):
            raise FormatError("float value out of range")
        return f
    if type_ == "boolean":
        if key != "bv" or not isinstance(x, bool):
            raise FormatError('boolean resource needs a "bv" true/false value')
        return x
    if type_ == "string":
        if key != "sv" or not isinstance(x, str):
            raise FormatError('string resource needs an "sv" string value')
        try:
            x.encode("utf-8")                   # "\ud800" is valid JSON but not a Unicode string
        except UnicodeEncodeError:
            raise FormatError("string value with a lone surrogate") from None
        return x
    if type_ == "opaque":
        if key != "sv" or not isinstance(x, str):
            raise FormatError('opaque resource needs an "sv" base64 value')
        try:
            return base64.b64decode(x.encode("ascii"), validate=True)
        except (binascii.Error, ValueError, UnicodeEncodeError):
            raise FormatError("invalid base64 in opaque value") from None
    if type_ == "objlnk":
        if key not in ("ov", "sv") or not isinstance(x, str):
            raise FormatError('objlnk resource needs an "ov" "oid:iid" value')
        m = _OBJLNK.fullmatch(x)
        if not m or int(m.group(1)) > MAX_ID or int(m.group(2)) > MAX_ID:
            raise FormatError(f"invalid object link {x[:40]!r}")
        return (int(m.group(1)), int(m.group(2)))
    if type_ == "none":
        raise FormatError("executable resources carry no value")
    raise FormatError(f"unknown LwM2M type {type_!r}")


def _tree(
    entries: list[tuple[tuple[int, ...], str, Any]], types: TypeLookup
) -> dict[int, dict[int, Any]]:
    """instance id -> resource id -> value / {riid: value}."""
    tree: dict[int, dict[int, Any]] = {}
    for path, key, raw in entries:
        iid, rid = path[1], path[2]
        t = lookup_type(types, rid)
        if t is None:
            raise FormatError(f"unknown resource {rid}")
        inst = tree.setdefault(iid, {})
        v = _value(t, key, raw)
        if len(path) == 3:
            if rid in inst:
                raise FormatError(f"duplicate resource /{path[0]}/{iid}/{rid}")
            inst[rid] = v
        else:
            multi = inst.setdefault(rid, {})
            if not isinstance(multi, dict):
                raise FormatError(f"resource /{path[0]}/{iid}/{rid} given as single and multiple")
            if path[3] in multi:
                raise FormatError(f"duplicate resource instance /{path[0]}/{iid}/{rid}/{path[3]}")
            multi[path[3]] = v
    return tree


def decode_resource(data: bytes, oid: int, iid: int, rid: int, type_: str) -> Any:
    """Decode a write to /oid/iid/rid: a value, or a ``dict`` for a multiple
    resource (no entries at all gives ``{}``)."""
    entries = parse_entries(data, (oid, iid, rid))
    tree = _tree(entries, lambda r: type_ if r == rid else None)
    return tree.get(iid, {}).get(rid, {})


def decode_instance(data: bytes, oid: int, iid: int, types: TypeLookup) -> dict[int, Any]:
    """Decode a write to /oid/iid into an instance dict."""
    tree = _tree(parse_entries(data, (oid, iid)), types)
    return tree.get(iid, {})


def decode_object(data: bytes, oid: int, types: TypeLookup) -> dict[int, dict[int, Any]]:
    """Decode a payload for /oid into an object dict (every entry names its instance)."""
    return _tree(parse_entries(data, (oid,)), types)


def decode_create(data: bytes, oid: int, types: TypeLookup) -> list[tuple[int | None, dict[int, Any]]]:
    """Decode a Create on /oid: ``[(instance id, resources)]`` (ids always present in JSON)."""
    return list(decode_object(data, oid, types).items())
