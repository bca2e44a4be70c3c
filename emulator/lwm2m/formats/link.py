"""CoRE link format (RFC 6690, application/link-format, 40) as used by LwM2M 1.0.

Registration payload (:func:`registration_links`)::

    </1/0>,</3/0>,</5>                       (default)
    </>;rt="oma.lwm2m";ct=11543,</1/0>,...   (root=True, content_format=11543)
    </lwm2m>;rt="oma.lwm2m",</lwm2m/1/0>,... (alternate_path="/lwm2m")

Choices:

* Every object instance is listed as ``</o/i>``; an object without
  instances is listed as ``</o>``.
* The root entry ``</>;rt="oma.lwm2m"`` is omitted by default (LwM2M 1.0
  clients commonly send it only when they use an alternate path).  It is
  emitted when ``root=True``, when an alternate path is used (then it is
  mandatory) or when ``content_format`` is given (``ct`` can only sit on
  the root entry).
* The Security object (0) is never part of a registration (LwM2M 1.0
  §5.3.1) and is skipped unless ``include_security=True``.
* An object whose version is not 1.0 gets an object-level link carrying
  the version before its instance links: ``</5>;ver=2.0,</5/0>``.  ``ver``
  belongs to the object level (Leshan 2 even rejects it on instance
  links).  LwM2M 1.0 is not consistent about quoting it (§5.2.7.3 writes
  ``ver=1.9``, §6.2.3 writes ``ver="2.2"``), 1.1 forbids quotes, Leshan
  writes it unquoted and reads both: it is written unquoted unless
  ``quote_version=True``.

Discover answers (:func:`discover_links`, LwM2M 1.0 §5.4.1):

* /o     -> ``</o>`` (with ``ver`` and the object's attributes), then each
  ``</o/i>`` (with its attributes) followed by its ``</o/i/r>`` links;
* /o/i   -> ``</o/i>`` with its attributes, then its resources;
* /o/i/r -> ``</o/i/r>`` only.

Resource links carry ``dim=N`` for multiple resources, then the attributes
attached at that level.  For a Discover on a resource the attributes
inherited from the instance and object levels are merged in (resource
level wins) unless ``inherit=False``.

:func:`parse_links` is tolerant (whitespace, empty entries, quoted or bare
values, flag parameters) but raises FormatError on text that is not a link
list at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .values import MAX_ID, FormatError, check_id
from .text import format_float

__all__ = [
    "registration_links",
    "discover_links",
    "format_link",
    "parse_links",
    "parse_path",
]

_VERSION = re.compile(r"[0-9]+\.[0-9]+", re.ASCII)
_TOKEN = re.compile(r"[!#$%&'()*+\-./0-9:<=>?@A-Z\[\]^_`a-z{|}~]+", re.ASCII)
_PARAM_NAME = re.compile(r"[A-Za-z0-9!#$&+\-.^_`|~*]+", re.ASCII)

Attrs = Mapping[str, Any]


class _Raw(str):
    """An attribute value written verbatim (already quoted when needed)."""


def _fmt_value(v: Any) -> str:
    if isinstance(v, _Raw):
        return str(v)
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return format_float(v)
    s = str(v)
    if _TOKEN.fullmatch(s) and ";" not in s and "," not in s and "<" not in s and ">" not in s:
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_link(uri: str, attrs: Attrs | Iterable[tuple[str, Any]] | None = None) -> str:
    """``<uri>;name=value;flag`` (None values give bare flags; strings with
    special characters are quoted)."""
    parts = [f"<{uri}>"]
    items = attrs.items() if isinstance(attrs, Mapping) else (attrs or ())
    for name, value in items:
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise FormatError(f"invalid link parameter name {name!r}")
        parts.append(name if value is None else f"{name}={_fmt_value(value)}")
    return ";".join(parts)


def _prefix(alternate_path: str) -> str:
    if not isinstance(alternate_path, str) or not alternate_path.startswith("/"):
        raise FormatError(f"alternate path must start with '/': {alternate_path!r}")
    if any(c in alternate_path for c in '<>,;" '):
        raise FormatError(f"invalid alternate path {alternate_path!r}")
    return alternate_path.rstrip("/")


def _ver_attr(version: str | None, quote: bool) -> list[tuple[str, Any]]:
    if version is None or version == "1.0":
        return []
    if not isinstance(version, str) or not _VERSION.fullmatch(version):
        raise FormatError(f"invalid object version {version!r} (expected x.y)")
    return [("ver", _Raw(f'"{version}"' if quote else version))]


def registration_links(
    objects: Mapping[int, Iterable[int]],
    version_of: Callable[[int], str | None] | None = None,
    *,
    root: bool = False,
    content_format: int | None = None,
    alternate_path: str = "/",
    quote_version: bool = False,
    include_security: bool = False,
) -> str:
    """The Register / Update payload: objects (id -> instance ids) as links."""
    prefix = _prefix(alternate_path)
    links: list[str] = []
    if root or prefix or content_format is not None:
        attrs: list[tuple[str, Any]] = [("rt", _Raw('"oma.lwm2m"'))]
        if content_format is not None:
            if not isinstance(content_format, int) or isinstance(content_format, bool) or content_format < 0:
                raise FormatError(f"invalid content format {content_format!r}")
            attrs.append(("ct", content_format))
        links.append(format_link(prefix or "/", attrs))
    for oid in sorted(objects):
        check_id(oid, "object id")
        if oid == 0 and not include_security:
            continue
        iids = sorted(set(objects[oid]))
        for iid in iids:
            check_id(iid, "instance id")
        ver = _ver_attr(version_of(oid) if version_of else None, quote_version)
        if ver or not iids:
            links.append(format_link(f"{prefix}/{oid}", ver))
        links.extend(f"<{prefix}/{oid}/{iid}>" for iid in iids)
    return ",".join(links)


def discover_links(
    path: tuple[int, ...],
    instances: Mapping[int, Iterable[int]],
    *,
    attributes: Callable[[tuple[int, ...]], Attrs | None] | None = None,
    dim: Callable[[tuple[int, int, int]], int | None] | None = None,
    version: str | None = None,
    inherit: bool = True,
    quote_version: bool = False,
) -> str:
    """The answer to a Discover on /o, /o/i or /o/i/r.

    ``instances`` maps the instance ids of object ``path[0]`` to the ids of
    the resources present in them; ``attributes(p)`` gives the attributes
    attached at path ``p`` (any level); ``dim(p)`` gives the number of
    instances of multiple resource ``p`` (None for single resources);
    ``version`` is the object version (shown on the object link if not 1.0).
    Raises FormatError if the path does not exist in ``instances``.
    """
    if not isinstance(path, (tuple, list)) or not 1 <= len(path) <= 3:
        raise FormatError(f"invalid Discover path {path!r}")
    p = tuple(check_id(x, "path element") for x in path)
    oid = p[0]

    def attrs_at(q: tuple[int, ...]) -> list[tuple[str, Any]]:
        a = attributes(q) if attributes else None
        return [(k, v) for k, v in (a or {}).items() if k not in ("dim", "ver")]

    def resource_link(iid: int, rid: int, inherited: bool) -> str:
        q = (oid, iid, rid)
        items: list[tuple[str, Any]] = []
        n = dim(q) if dim else None
        if n is not None:
            items.append(("dim", n))
        if inherited:
            merged: dict[str, Any] = {}
            for level in ((oid,), (oid, iid), q):
                merged.update(attrs_at(level))
            items.extend(merged.items())
        else:
            items.extend(attrs_at(q))
        return format_link(f"/{oid}/{iid}/{rid}", items)

    def instance_links(iid: int) -> list[str]:
        out = [format_link(f"/{oid}/{iid}", attrs_at((oid, iid)))]
        out += [resource_link(iid, rid, False) for rid in sorted(set(instances[iid]))]
        return out

    if len(p) >= 2 and p[1] not in instances:
        raise FormatError(f"no instance /{oid}/{p[1]}")
    if len(p) == 1:
        links = [format_link(f"/{oid}", _ver_attr(version, quote_version) + attrs_at((oid,)))]
        for iid in sorted(instances):
            links += instance_links(check_id(iid, "instance id"))
        return ",".join(links)
    if len(p) == 2:
        return ",".join(instance_links(p[1]))
    if p[2] not in set(instances[p[1]]):
        raise FormatError(f"no resource /{oid}/{p[1]}/{p[2]}")
    return resource_link(p[1], p[2], inherit)


# --------------------------------------------------------------------------
# parsing


def parse_links(text: str | bytes) -> list[tuple[str, dict[str, str | None]]]:
    """Parse a link-format document into ``[(uri, {param: value or None})]``.

    Quoted values are unquoted (``\\"`` escapes resolved); parameters without
    a value map to None; when a parameter repeats, the first value is kept.
    """
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            raise FormatError(f"invalid UTF-8 in link format: {e}") from None
    if not isinstance(text, str):
        raise FormatError("link format payload must be str or bytes")
    out: list[tuple[str, dict[str, str | None]]] = []
    n = len(text)
    i = 0

    def skip_ws(j: int) -> int:
        while j < n and text[j] in " \t\r\n":
            j += 1
        return j

    while True:
        i = skip_ws(i)
        if i >= n:
            break
        if text[i] == ",":  # empty entry
            i += 1
            continue
        if text[i] != "<":
            raise FormatError(f"expected '<' at offset {i} in link format")
        end = text.find(">", i + 1)
        if end < 0:
            raise FormatError("unterminated '<' in link format")
        uri = text[i + 1 : end].strip()
        params: dict[str, str | None] = {}
        i = end + 1
        while True:
            i = skip_ws(i)
            if i >= n or text[i] == ",":
                i += 1
                break
            if text[i] != ";":
                raise FormatError(f"expected ';' or ',' at offset {i} in link format")
            i = skip_ws(i + 1)
            start = i
            while i < n and text[i] not in "=;, \t\r\n":
                i += 1
            name = text[start:i]
            i = skip_ws(i)
            if not name:
                if i < n and text[i] == "=":
                    raise FormatError(f"parameter without a name at offset {i}")
                continue  # tolerate ";;" and a trailing ';'
            value: str | None = None
            if i < n and text[i] == "=":
                i = skip_ws(i + 1)
                if i < n and text[i] == '"':
                    i += 1
                    buf = []
                    while True:
                        if i >= n:
                            raise FormatError("unterminated quoted string in link format")
                        c = text[i]
                        if c == "\\" and i + 1 < n:
                            buf.append(text[i + 1])
                            i += 2
                            continue
                        if c == '"':
                            i += 1
                            break
                        buf.append(c)
                        i += 1
                    value = "".join(buf)
                else:
                    start = i
                    while i < n and text[i] not in ";, \t\r\n":
                        i += 1
                    value = text[start:i]
            params.setdefault(name.lower(), value)
        out.append((uri, params))
    return out


def parse_path(uri: str, alternate_path: str = "/") -> tuple[int, ...] | None:
    """The LwM2M ids of a link target (``"/3/0"`` -> ``(3, 0)``), relative to
    ``alternate_path``; None when the uri is not an LwM2M object path (for
    example the root entry)."""
    prefix = _prefix(alternate_path)
    if prefix:
        if uri != prefix and not uri.startswith(prefix + "/"):
            return None
        uri = uri[len(prefix) :]
    if not uri.startswith("/"):
        return None
    segs = uri[1:].split("/")
    if segs == [""]:
        return None
    out = []
    for s in segs:
        if not s.isascii() or not s.isdigit() or len(s) > 5 or int(s) > MAX_ID:
            return None
        out.append(int(s))
    return tuple(out) if len(out) <= 4 else None
