"""OMA-TLV content format (application/vnd.oma.lwm2m+tlv, 11542; old 1542).

LwM2M 1.0 §6.4.3.  Each TLV is::

    type byte | identifier (1 or 2 bytes) | length (0-3 bytes) | value

Type byte: bits 7-6 identifier kind (00 object instance, 01 resource
instance, 10 multiple resource, 11 resource with value); bit 5 identifier
length (0: 8 bits, 1: 16 bits); bits 4-3 length type (00: length in bits
2-0, 01/10/11: 8/16/24-bit length field follows the identifier); bits 2-0
the length when the length type is 00 (ignored otherwise).

Value encodings: integer and time are big-endian two's complement in 1, 2,
4 or 8 bytes (the encoder uses the shortest that fits); float is IEEE-754
big-endian, 4 or 8 bytes on input, and the encoder **always writes 8 bytes**
(the value model is a Python double; Leshan writes doubles as 8 bytes as
well and every decoder accepts both); boolean is one byte 0/1; objlnk is
two big-endian 16-bit unsigned ints; string is UTF-8; opaque is raw.

The encoder picks 8-bit identifiers below 256 and the shortest length
field.  The decoder is strict: a truncated header or value, a length that
runs past its container, a wrong nesting (only resources / multiple
resources inside an object instance, only resource instances inside a
multiple resource), duplicate ids, or a value of the wrong size all raise
FormatError; nothing else escapes.

High-level choices:

* :func:`encode_instance` writes bare resource TLVs (what the LwM2M 1.0
  example for a Read of /3/0 shows) unless ``instance_id`` is given, in
  which case they are wrapped in one object-instance TLV.  Leshan accepts
  both for a Read of /o/i (and checks the wrapped id against the path).
* :func:`encode_object` always wraps every instance.
* the decoders accept what servers send: a write to /o/i wrapped in an
  object-instance TLV (its id must match) or bare resources; a write to
  /o/i/r as a resource TLV, a multiple-resource TLV or bare resource
  instances; a create to /o as object-instance TLV(s) or bare resources
  (:func:`decode_create`).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from enum import IntEnum
from typing import Any, NamedTuple, Union

from .values import FormatError, TypeLookup, check_id, check_value, lookup_type, resolve

__all__ = [
    "Kind",
    "Entry",
    "decode_entries",
    "encode_entries",
    "encode_value",
    "decode_value",
    "encode_resource",
    "encode_instance",
    "encode_object",
    "decode_resource",
    "decode_instance",
    "decode_object",
    "decode_create",
]

MAX_LENGTH = (1 << 24) - 1


class Kind(IntEnum):
    """TLV identifier kinds (type byte bits 7-6)."""

    OBJECT_INSTANCE = 0
    RESOURCE_INSTANCE = 1
    MULTIPLE_RESOURCE = 2
    RESOURCE = 3


class Entry(NamedTuple):
    """One TLV: ``value`` is bytes for RESOURCE / RESOURCE_INSTANCE and a
    list of child entries for OBJECT_INSTANCE / MULTIPLE_RESOURCE."""

    kind: Kind
    id: int
    value: Union[bytes, "list[Entry]"]


_CHILD_KINDS = {
    Kind.OBJECT_INSTANCE: (Kind.RESOURCE, Kind.MULTIPLE_RESOURCE),
    Kind.MULTIPLE_RESOURCE: (Kind.RESOURCE_INSTANCE,),
}


# --------------------------------------------------------------------------
# low level


def _parse(data: bytes, start: int, end: int, allowed: tuple[Kind, ...] | None) -> list[Entry]:
    out: list[Entry] = []
    pos = start
    while pos < end:
        t = data[pos]
        pos += 1
        kind = Kind(t >> 6)
        if allowed is not None and kind not in allowed:
            raise FormatError(f"TLV of kind {kind.name} not allowed here (offset {pos - 1})")
        id_len = 2 if t & 0x20 else 1
        len_type = (t >> 3) & 0x03
        if pos + id_len + len_type > end:
            raise FormatError(f"truncated TLV header at offset {pos - 1}")
        ident = int.from_bytes(data[pos : pos + id_len], "big")
        pos += id_len
        if len_type == 0:
            length = t & 0x07
        else:
            length = int.from_bytes(data[pos : pos + len_type], "big")
            pos += len_type
        if pos + length > end:
            raise FormatError(f"TLV length {length} runs past the payload (offset {pos})")
        if kind in _CHILD_KINDS:
            value: Any = _parse(data, pos, pos + length, _CHILD_KINDS[kind])
        else:
            value = data[pos : pos + length]
        pos += length
        out.append(Entry(kind, ident, value))
    return out


def decode_entries(data: bytes) -> list[Entry]:
    """Parse a TLV payload into a list of :class:`Entry` (nesting validated)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError("payload must be bytes")
    data = bytes(data)
    return _parse(data, 0, len(data), None)


def _header(kind: int, ident: int, length: int) -> bytes:
    check_id(ident, "TLV identifier")
    if length > MAX_LENGTH:
        raise FormatError(f"TLV value of {length} bytes exceeds the 24-bit length field")
    t = int(kind) << 6
    if ident < 256:
        idb = bytes([ident])
    else:
        t |= 0x20
        idb = ident.to_bytes(2, "big")
    if length < 8:
        t |= length
        lb = b""
    elif length < 1 << 8:
        t |= 0x08
        lb = length.to_bytes(1, "big")
    elif length < 1 << 16:
        t |= 0x10
        lb = length.to_bytes(2, "big")
    else:
        t |= 0x18
        lb = length.to_bytes(3, "big")
    return bytes([t]) + idb + lb


def _encode_entry(e: Any) -> bytes:
    if not isinstance(e, tuple) or len(e) != 3:
        raise FormatError(f"not a TLV entry: {e!r:.60}")
    kind, ident, value = e
    try:
        kind = Kind(kind)
    except ValueError:
        raise FormatError(f"invalid TLV kind {kind!r}") from None
    if kind in _CHILD_KINDS:
        if not isinstance(value, (list, tuple)):
            raise FormatError(f"{kind.name} TLV needs a list of children")
        parts = []
        for child in value:
            if not isinstance(child, tuple) or len(child) != 3 or child[0] not in _CHILD_KINDS[kind]:
                raise FormatError(f"invalid child {child!r:.60} inside {kind.name} TLV")
            parts.append(_encode_entry(child))
        body = b"".join(parts)
    else:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise FormatError(f"{kind.name} TLV needs a bytes value")
        body = bytes(value)
    return _header(kind, ident, len(body)) + body


def encode_entries(entries: Iterable[Entry]) -> bytes:
    """Serialize entries (nesting validated like :func:`decode_entries`)."""
    return b"".join(_encode_entry(e) for e in entries)


# --------------------------------------------------------------------------
# values


def encode_value(type_: str, value: Any) -> bytes:
    """The TLV value bytes of one resource (instance) value."""
    v = check_value(type_, value)
    if type_ in ("integer", "time"):
        for size in (1, 2, 4, 8):
            if -(1 << (8 * size - 1)) <= v < 1 << (8 * size - 1):
                return v.to_bytes(size, "big", signed=True)
    if type_ == "float":
        return struct.pack(">d", v)
    if type_ == "boolean":
        return b"\x01" if v else b"\x00"
    if type_ == "objlnk":
        return struct.pack(">HH", *v)
    if type_ == "string":
        try:
            return v.encode("utf-8")
        except UnicodeEncodeError as e:
            raise FormatError(f"string is not encodable as UTF-8: {e}") from None
    if type_ == "opaque":
        return v
    raise FormatError(f"type {type_!r} cannot be encoded")  # pragma: no cover


def decode_value(type_: str, data: bytes) -> Any:
    """Decode TLV value bytes into a value of ``type_`` (strict sizes)."""
    n = len(data)
    if type_ in ("integer", "time"):
        if n not in (1, 2, 4, 8):
            raise FormatError(f"{type_} TLV value must be 1, 2, 4 or 8 bytes, got {n}")
        return int.from_bytes(data, "big", signed=True)
    if type_ == "float":
        if n == 4:
            return struct.unpack(">f", data)[0]
        if n == 8:
            return struct.unpack(">d", data)[0]
        raise FormatError(f"float TLV value must be 4 or 8 bytes, got {n}")
    if type_ == "boolean":
        if data == b"\x00":
            return False
        if data == b"\x01":
            return True
        raise FormatError(f"invalid boolean TLV value {data[:8].hex()}")
    if type_ == "objlnk":
        if n != 4:
            raise FormatError(f"objlnk TLV value must be 4 bytes, got {n}")
        return struct.unpack(">HH", data)
    if type_ == "string":
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"invalid UTF-8 in string TLV: {e}") from None
    if type_ == "opaque":
        return bytes(data)
    if type_ == "none":
        raise FormatError("executable resources carry no value")
    raise FormatError(f"unknown LwM2M type {type_!r}")


# --------------------------------------------------------------------------
# high level: encoders


def _resource_entry(rid: int, value: Any, type_: str) -> Entry:
    check_id(rid, "resource id")
    if isinstance(value, Mapping):
        children = [
            Entry(Kind.RESOURCE_INSTANCE, check_id(riid, "resource instance id"), encode_value(type_, v))
            for riid, v in sorted(value.items(), key=_key)
        ]
        return Entry(Kind.MULTIPLE_RESOURCE, rid, children)
    return Entry(Kind.RESOURCE, rid, encode_value(type_, value))


def _key(item: tuple[Any, Any]) -> Any:
    k = item[0]
    return (0, k) if isinstance(k, int) else (1, repr(k))  # bad keys sorted last, rejected by check_id


def _instance_entries(inst: Mapping[int, Any], types: TypeLookup) -> list[Entry]:
    if not isinstance(inst, Mapping):
        raise FormatError("an object instance must be a dict of resources")
    return [_resource_entry(rid, v, resolve(types, rid, v)) for rid, v in sorted(inst.items(), key=_key)]


def encode_resource(rid: int, value: Any, type_: str) -> bytes:
    """A resource TLV (single value) or multiple-resource TLV (``dict`` value)."""
    return encode_entries([_resource_entry(rid, value, type_)])


def encode_instance(inst: Mapping[int, Any], types: TypeLookup = None, instance_id: int | None = None) -> bytes:
    """Resource TLVs of one object instance; wrapped in an object-instance TLV
    when ``instance_id`` is given (see the module documentation)."""
    entries = _instance_entries(inst, types)
    if instance_id is None:
        return encode_entries(entries)
    return encode_entries([Entry(Kind.OBJECT_INSTANCE, check_id(instance_id, "instance id"), entries)])


def encode_object(obj: Mapping[int, Mapping[int, Any]], types: TypeLookup = None) -> bytes:
    """Object-instance TLVs, one per instance, in instance id order."""
    if not isinstance(obj, Mapping):
        raise FormatError("an object must be a dict of instances")
    return encode_entries(
        [
            Entry(Kind.OBJECT_INSTANCE, check_id(iid, "instance id"), _instance_entries(inst, types))
            for iid, inst in sorted(obj.items(), key=_key)
        ]
    )


# --------------------------------------------------------------------------
# high level: decoders


def _multi(children: list[Entry], type_: str, rid: int) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for c in children:
        if c.kind != Kind.RESOURCE_INSTANCE:
            raise FormatError(f"expected resource instance TLVs for resource {rid}, got {c.kind.name}")
        if c.id in out:
            raise FormatError(f"duplicate resource instance {rid}/{c.id}")
        out[c.id] = decode_value(type_, c.value)
    return out


def _resources(entries: list[Entry], types: TypeLookup, keep_unknown: bool) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for e in entries:
        if e.kind not in (Kind.RESOURCE, Kind.MULTIPLE_RESOURCE):
            raise FormatError(f"expected resource TLVs, got {e.kind.name} {e.id}")
        if e.id in out:
            raise FormatError(f"duplicate resource {e.id}")
        t = lookup_type(types, e.id)
        if t is None:
            if not keep_unknown:
                raise FormatError(f"unknown resource {e.id}")
            t = "opaque"
        if e.kind == Kind.RESOURCE:
            out[e.id] = decode_value(t, e.value)
        else:
            out[e.id] = _multi(e.value, t, e.id)
    return out


def decode_resource(data: bytes, rid: int, type_: str) -> Any:
    """Decode a write to /o/i/rid: a value, or a ``dict`` for a multiple resource.

    Accepts a resource TLV, a multiple-resource TLV (ids must match ``rid``)
    or bare resource-instance TLVs (an empty payload gives ``{}``).
    """
    entries = decode_entries(data)
    if len(entries) == 1 and entries[0].kind in (Kind.RESOURCE, Kind.MULTIPLE_RESOURCE):
        e = entries[0]
        if e.id != rid:
            raise FormatError(f"resource TLV id {e.id} does not match the path resource {rid}")
        if e.kind == Kind.RESOURCE:
            return decode_value(type_, e.value)
        return _multi(e.value, type_, rid)
    return _multi(entries, type_, rid)


def decode_instance(
    data: bytes, types: TypeLookup, instance_id: int | None = None, *, keep_unknown: bool = False
) -> dict[int, Any]:
    """Decode a write to /o/i: bare resource TLVs or one object-instance TLV.

    With ``instance_id`` given, a wrapping object-instance TLV must carry that
    id.  Unknown resources raise FormatError, or are kept as raw ``bytes``
    (``dict[int, bytes]`` for multiple resources) when ``keep_unknown``.
    """
    entries = decode_entries(data)
    if entries and entries[0].kind == Kind.OBJECT_INSTANCE:
        if len(entries) != 1:
            raise FormatError("more than one object instance in an instance payload")
        if instance_id is not None and entries[0].id != instance_id:
            raise FormatError(f"object instance TLV id {entries[0].id} does not match the path instance {instance_id}")
        entries = entries[0].value
    return _resources(entries, types, keep_unknown)


def decode_object(data: bytes, types: TypeLookup, *, keep_unknown: bool = False) -> dict[int, dict[int, Any]]:
    """Decode a payload made of object-instance TLVs into an object dict."""
    return _instances(decode_entries(data), types, keep_unknown)


def _instances(entries: list[Entry], types: TypeLookup, keep_unknown: bool) -> dict[int, dict[int, Any]]:
    out: dict[int, dict[int, Any]] = {}
    for e in entries:
        if e.kind != Kind.OBJECT_INSTANCE:
            raise FormatError(f"expected object instance TLVs, got {e.kind.name} {e.id}")
        if e.id in out:
            raise FormatError(f"duplicate object instance {e.id}")
        out[e.id] = _resources(e.value, types, keep_unknown)
    return out


def decode_create(
    data: bytes, types: TypeLookup, *, keep_unknown: bool = False
) -> list[tuple[int | None, dict[int, Any]]]:
    """Decode a Create on /o: ``[(instance id, resources)]``.

    Object-instance TLVs give their ids; bare resource TLVs give a single
    ``(None, resources)`` (the client allocates the id; an empty payload
    gives ``[(None, {})]``).  Mixing both is a FormatError.
    """
    entries = decode_entries(data)
    if entries and entries[0].kind == Kind.OBJECT_INSTANCE:
        return list(_instances(entries, types, keep_unknown).items())
    return [(None, _resources(entries, types, keep_unknown))]
