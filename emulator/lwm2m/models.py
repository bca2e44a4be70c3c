"""LwM2M object models loaded from OMA DDF XML files.

The OMA "Device Description Framework" files (``<LWM2M><Object
ObjectType="MODefinition">...``) describe each object: its id, name,
multiplicity and, for every resource, the id, allowed operations, type,
range and units.  This module turns them into small immutable dataclasses.

Standard library only.  Parsing is defensive: whatever bytes are given,
:func:`parse_models` either returns models or raises :class:`ModelError`.

Public API::

    ModelError, ResourceModel, ObjectModel, ModelRegistry,
    parse_models(data), load_file(path), load_directory(path),
    builtin_objects_dir(), builtin_models(), clear_model_cache()

The built-in models (package data ``emulator.objects``) are parsed once per
process and shared read-only by every modem (:func:`builtin_models`); models a
host uploads to a modem's ``/XML/`` folder are that modem's own and parsed at
each of its boots.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Union
from xml.parsers import expat

__all__ = [
    "ModelError",
    "ResourceModel",
    "ObjectModel",
    "ModelRegistry",
    "parse_models",
    "load_file",
    "load_directory",
    "builtin_objects_dir",
    "builtin_models",
    "clear_model_cache",
]

PathLike = Union[str, "os.PathLike[str]"]

# --------------------------------------------------------------------------
# constants (all immutable)

#: Normalized operation strings.
OPERATIONS = frozenset({"R", "W", "RW", "E", ""})

#: DDF type spelling (lower-cased, inner whitespace collapsed) -> normalized type.
_TYPE_MAP = MappingProxyType(
    {
        "string": "string",
        "integer": "integer",
        "unsigned integer": "integer",
        "unsignedinteger": "integer",
        "float": "float",
        "boolean": "boolean",
        "opaque": "opaque",
        "time": "time",
        "objlnk": "objlnk",
        "corelnk": "string",
        "none": "none",
        "": "none",
    }
)

#: The normalized types a ResourceModel may carry.
TYPES = frozenset(_TYPE_MAP.values())

_MAX_ID = 65535
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)"
_RANGE = re.compile(
    rf"\s*({_NUMBER})\s*(?:\.\.\.?|\u2026|-|\u2013|\u2014|to)\s*({_NUMBER})\s*",
    re.ASCII | re.IGNORECASE,
)


class ModelError(ValueError):
    """A model file or document is malformed or inconsistent."""


# --------------------------------------------------------------------------
# dataclasses


@dataclass(frozen=True)
class ResourceModel:
    """One resource (``<Item>``) of an object model."""

    id: int
    name: str
    operations: str  # "R", "W", "RW", "E" or "" (normalized, upper-case)
    multiple: bool
    mandatory: bool
    type: str  # one of TYPES; "none" for executables / empty type
    range: str | None = None  # raw RangeEnumeration text
    units: str | None = None
    description: str = field(default="", compare=False, repr=False)

    @property
    def readable(self) -> bool:
        return "R" in self.operations

    @property
    def writable(self) -> bool:
        return "W" in self.operations

    @property
    def executable(self) -> bool:
        return self.operations == "E"

    def range_bounds(self) -> tuple[float, float] | None:
        """Numeric (low, high) bounds of the RangeEnumeration, if it is one.

        Understands ``"0..100"``, ``"0-100"``, ``"-40..85"``, ``"1-65534"``,
        ``"0...7"``, ``"0 to 255"``.  Anything else (``"0-255 bytes"``,
        ``"16-bit"``, enumerations, empty) gives ``None``; so does a range
        whose low end is above its high end.
        """
        return _parse_range(self.range)


@dataclass(frozen=True)
class ObjectModel:
    """One LwM2M object definition (``<Object>``)."""

    id: int
    name: str
    urn: str | None = None
    version: str = "1.0"
    multiple: bool = False
    mandatory: bool = False
    # Read-only mapping ordered by resource id.
    resources: Mapping[int, ResourceModel] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    lwm2m_version: str = "1.0"
    description: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        ordered = dict(sorted(dict(self.resources).items()))
        object.__setattr__(self, "resources", MappingProxyType(ordered))

    def resource(self, rid: int) -> ResourceModel | None:
        """The resource model with id ``rid``, or ``None``."""
        return self.resources.get(rid)


# --------------------------------------------------------------------------
# helpers


def _parse_range(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    m = _RANGE.fullmatch(text)
    if m is None:
        return None
    try:
        low, high = float(m.group(1)), float(m.group(2))
    except ValueError:  # pragma: no cover - the regex only admits numbers
        return None
    if low > high:
        return None
    return (low, high)


def _local(name: str) -> str:
    """Strip a namespace (``{uri}local`` or ``prefix:local``) from a name."""
    if name.startswith("{"):
        name = name.rpartition("}")[2]
    return name.rpartition(":")[2]


def _reject_entities(*_args: object) -> None:
    raise ModelError("entity declarations are not allowed in model files")


def _to_bytes(data: object) -> bytes:
    if isinstance(data, str):
        data = data.lstrip("\ufeff \t\r\n")
        # Expat is fed UTF-8 and told so; drop a conflicting declared encoding.
        if data.startswith("<?xml"):
            end = data.find("?>")
            if end != -1:
                decl = re.sub(
                    r"""\s+encoding\s*=\s*(?:"[^"]*"|'[^']*')""", "", data[: end]
                )
                data = decl + data[end:]
        return data.encode("utf-8", "surrogatepass")
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        # Leading whitespace and/or a UTF-8 BOM before the declaration.
        while True:
            stripped = raw.lstrip(b" \t\r\n")
            if stripped.startswith(b"\xef\xbb\xbf"):
                stripped = stripped[3:]
            if stripped == raw:
                return raw
            raw = stripped
    raise ModelError(f"model data must be bytes or str, not {type(data).__name__}")


def _parse_xml(data: bytes) -> ET.Element:
    """Parse with expat into an ElementTree, refusing entity declarations.

    Namespace processing is off so unknown prefixes are tolerated; prefixes
    are stripped afterwards by :func:`_local`.
    """
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.buffer_text = True

    def start(tag: str, attrs: dict[str, str]) -> None:
        clean = {
            _local(k): v
            for k, v in attrs.items()
            if k != "xmlns" and not k.startswith("xmlns:")
        }
        builder.start(_local(tag), clean)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda tag: builder.end(_local(tag))
    parser.CharacterDataHandler = builder.data
    parser.EntityDeclHandler = _reject_entities
    parser.UnparsedEntityDeclHandler = _reject_entities
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        raise ModelError(f"malformed XML: {exc}") from None
    except ModelError:
        raise
    except (LookupError, ValueError) as exc:  # declared encoding unknown / unusable
        raise ModelError(f"malformed XML: bad encoding: {exc}") from None
    root = builder.close()
    if not isinstance(root, ET.Element):  # pragma: no cover - defensive
        raise ModelError("malformed XML: no root element")
    return root


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    for c in elem:
        if c.tag == name:
            return c
    return None


def _text(elem: ET.Element, name: str) -> str | None:
    """Stripped text of the first child ``name``; None if absent or empty."""
    c = _child(elem, name)
    if c is None:
        return None
    text = "".join(c.itertext()).strip()
    return text or None


def _parse_id(raw: str | None, what: str) -> int:
    if raw is None:
        raise ModelError(f"missing {what}")
    raw = raw.strip()
    if not _DIGITS.fullmatch(raw) or len(raw) > 6:
        raise ModelError(f"bad {what} {raw[:40]!r}: not a non-negative integer")
    value = int(raw)
    if value > _MAX_ID:
        raise ModelError(f"bad {what} {value}: above {_MAX_ID}")
    return value


def _parse_multiple(raw: str | None, where: str) -> bool:
    if raw is None:
        return False
    word = raw.lower()
    if word == "multiple":
        return True
    if word == "single":
        return False
    raise ModelError(f"{where}: MultipleInstances must be Single or Multiple, not {raw[:40]!r}")


def _parse_mandatory(raw: str | None, where: str) -> bool:
    if raw is None:
        return False
    word = raw.lower()
    if word == "mandatory":
        return True
    if word == "optional":
        return False
    raise ModelError(f"{where}: Mandatory must be Mandatory or Optional, not {raw[:40]!r}")


def _parse_operations(raw: str | None, where: str) -> str:
    ops = "".join((raw or "").split()).upper()
    if ops == "WR":
        ops = "RW"
    if ops not in OPERATIONS:
        raise ModelError(f"{where}: unknown Operations {raw[:40]!r}")
    return ops


def _parse_type(raw: str | None, where: str) -> str:
    key = " ".join((raw or "").split()).lower()
    try:
        return _TYPE_MAP[key]
    except KeyError:
        raise ModelError(f"{where}: unknown Type {raw[:40]!r}") from None


def _parse_resource(item: ET.Element, oid: int) -> ResourceModel:
    rid = _parse_id(item.get("ID"), f"resource ID in object {oid}")
    where = f"/{oid}/x/{rid}"
    return ResourceModel(
        id=rid,
        name=_text(item, "Name") or f"Resource {rid}",
        operations=_parse_operations(_text(item, "Operations"), where),
        multiple=_parse_multiple(_text(item, "MultipleInstances"), where),
        mandatory=_parse_mandatory(_text(item, "Mandatory"), where),
        type=_parse_type(_text(item, "Type"), where),
        range=_text(item, "RangeEnumeration"),
        units=_text(item, "Units"),
        description=_text(item, "Description") or "",
    )


def _parse_object(obj: ET.Element) -> ObjectModel:
    oid = _parse_id(_text(obj, "ObjectID"), "ObjectID")
    where = f"object {oid}"
    resources: dict[int, ResourceModel] = {}
    block = _child(obj, "Resources")
    if block is not None:
        for item in block:
            if item.tag != "Item":
                continue
            res = _parse_resource(item, oid)
            if res.id in resources:
                raise ModelError(f"{where}: duplicate resource ID {res.id}")
            resources[res.id] = res
    return ObjectModel(
        id=oid,
        name=_text(obj, "Name") or f"Object {oid}",
        urn=_text(obj, "ObjectURN"),
        version=_text(obj, "ObjectVersion") or "1.0",
        multiple=_parse_multiple(_text(obj, "MultipleInstances"), where),
        mandatory=_parse_mandatory(_text(obj, "Mandatory"), where),
        resources=resources,
        lwm2m_version=_text(obj, "LWM2MVersion") or "1.0",
        description=_text(obj, "Description1") or "",
    )


def _parse_models(data: object) -> list[ObjectModel]:
    root = _parse_xml(_to_bytes(data))
    if root.tag == "Object":
        elements = [root]
    elif root.tag == "LWM2M":
        elements = [c for c in root if c.tag == "Object"]
    else:
        raise ModelError(f"unexpected root element <{root.tag[:40]}>, expected <LWM2M>")
    if not elements:
        raise ModelError("no <Object> element found")
    models: list[ObjectModel] = []
    seen: set[int] = set()
    for elem in elements:
        model = _parse_object(elem)
        if model.id in seen:
            raise ModelError(f"object {model.id} defined twice in the same document")
        seen.add(model.id)
        models.append(model)
    return models


# --------------------------------------------------------------------------
# public functions


def parse_models(data: bytes | str) -> list[ObjectModel]:
    """Parse one DDF document (which may define several objects).

    Raises :class:`ModelError` -- and nothing else -- for any bad input.
    """
    try:
        return _parse_models(data)
    except ModelError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # defensive: expat / codec oddities
        raise ModelError(f"cannot parse model: {type(exc).__name__}: {exc}") from None


def load_file(path: PathLike) -> list[ObjectModel]:
    """Read and parse one DDF file; errors name the file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"{p}: cannot read: {exc.strerror or exc}") from None
    try:
        return parse_models(data)
    except ModelError as exc:
        raise ModelError(f"{p}: {exc}") from None


def _xml_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise ModelError(f"{directory}: not a directory")
    try:
        return sorted(p for p in directory.iterdir() if p.suffix.lower() == ".xml" and p.is_file())
    except OSError as exc:
        raise ModelError(f"{directory}: cannot list: {exc.strerror or exc}") from None


def load_directory(path: PathLike) -> dict[int, ObjectModel]:
    """Load every ``*.xml`` of a directory (sorted by name).

    Later files override earlier ones for the same object id.  A bad file
    raises :class:`ModelError` naming it.
    """
    result: dict[int, ObjectModel] = {}
    for file in _xml_files(Path(path)):
        for model in load_file(file):
            result[model.id] = model
    return dict(sorted(result.items()))


def builtin_objects_dir() -> Path:
    """The folder of the built-in models (package ``emulator.objects``), when it is on a file system."""
    from importlib.resources import files
    return Path(str(files("emulator.objects")))


# The built-in models, parsed once per process: key = the files' identity (name, size, mtime), so an
# edited model file (a developer's checkout) is parsed again. The identity is read again when the
# folder itself changed (one stat per boot). The models are frozen dataclasses in a read-only
# mapping: sharing them between modems shares no mutable state.
_BUILTIN_CACHE: dict[tuple, Mapping[int, ObjectModel]] = {}
_LISTED: dict[str, tuple[int, tuple]] = {}      # folder -> (its mtime_ns, its files' identity)


def _folder_identity(root: Path) -> tuple:
    mtime = root.stat().st_mtime_ns
    seen = _LISTED.get(str(root))
    if seen is not None and seen[0] == mtime:
        return seen[1]
    with os.scandir(root) as it:
        key = tuple(sorted((e.name, st.st_size, st.st_mtime_ns) for e in it
                           if e.name.lower().endswith(".xml") and e.is_file() for st in (e.stat(),)))
    _LISTED[str(root)] = (mtime, key)
    return key


def _file_identity(f) -> tuple:
    if isinstance(f, Path):
        st = f.stat()
        return (str(f), st.st_size, st.st_mtime_ns)
    return (f.name, hash(f.read_bytes()))       # e.g. inside a zip: the content is the identity


def builtin_models() -> Mapping[int, ObjectModel]:
    """The built-in models (id -> model, read-only), parsed at the first call of the process.

    Raises :class:`ModelError` naming the file when a built-in model cannot be read or parsed, or
    when there is none: the package is broken, and the LwM2M agent cannot start.
    """
    from ..resources import builtin_model_files, builtin_models_root
    try:
        root = builtin_models_root()
        if isinstance(root, Path):          # the usual case: one stat per boot
            key = (str(root),) + _folder_identity(root)
            cached = _BUILTIN_CACHE.get(key)
            if cached is not None:
                return cached
        files = builtin_model_files()
        if not isinstance(root, Path):
            key = tuple(_file_identity(f) for f in files)
            cached = _BUILTIN_CACHE.get(key)
            if cached is not None:
                return cached
    except (OSError, ModuleNotFoundError) as exc:
        raise ModelError(f"built-in object models: cannot list: {exc}") from None
    if not files:
        raise ModelError("built-in object models: no *.xml found in package emulator.objects")
    table: dict[int, ObjectModel] = {}
    for f in files:
        try:
            data = f.read_bytes()
        except OSError as exc:
            raise ModelError(f"{f}: cannot read: {exc.strerror or exc}") from None
        try:
            for m in parse_models(data):
                table[m.id] = m
        except ModelError as exc:
            raise ModelError(f"{f}: {exc}") from None
    models = MappingProxyType(dict(sorted(table.items())))
    _BUILTIN_CACHE.clear()                      # one generation: an edited file replaces the old one
    _BUILTIN_CACHE[key] = models
    return models


def clear_model_cache() -> None:
    """Forget the parsed built-in models (the next :func:`builtin_models` parses them again)."""
    _BUILTIN_CACHE.clear()
    _LISTED.clear()


# --------------------------------------------------------------------------
# registry


class ModelRegistry:
    """Read-only lookup of object models by id.

    Build it from directories with :meth:`from_dirs`; later directories
    override earlier ones (e.g. built-ins first, then user files).
    """

    __slots__ = ("_models", "_errors")

    def __init__(
        self,
        models: Mapping[int, ObjectModel] | Iterable[ObjectModel] = (),
        errors: Iterable[str] = (),
    ) -> None:
        items = models.values() if isinstance(models, Mapping) else models
        table: dict[int, ObjectModel] = {}
        for m in items:
            if not isinstance(m, ObjectModel):
                raise TypeError(f"expected ObjectModel, got {type(m).__name__}")
            table[m.id] = m
        self._models: Mapping[int, ObjectModel] = MappingProxyType(dict(sorted(table.items())))
        self._errors: tuple[str, ...] = tuple(errors)

    @classmethod
    def from_dirs(
        cls, dirs: Iterable[PathLike | None], *, strict: bool = True
    ) -> "ModelRegistry":
        """Load every directory in order; later definitions win.

        With ``strict=False`` unreadable directories and bad files are
        skipped and described in :attr:`errors` instead of raising.
        ``None`` entries are ignored.
        """
        table: dict[int, ObjectModel] = {}
        errors: list[str] = []
        for d in dirs:
            if d is None:
                continue
            try:
                files = _xml_files(Path(d))
            except ModelError as exc:
                if strict:
                    raise
                errors.append(str(exc))
                continue
            for file in files:
                try:
                    models = load_file(file)
                except ModelError as exc:
                    if strict:
                        raise
                    errors.append(str(exc))
                    continue
                for m in models:
                    table[m.id] = m
        return cls(table, errors)

    @classmethod
    def builtin(cls) -> "ModelRegistry":
        """Registry of the built-in models (shared, parsed once per process); :class:`ModelError`
        when one of them is bad."""
        return cls(builtin_models())

    @classmethod
    def for_modem(cls, user_dirs: Iterable[PathLike | None]) -> "ModelRegistry":
        """The built-in models (shared, parsed once per process; :class:`ModelError` when broken)
        overridden by a modem's own model folders (e.g. its ``/XML/``), parsed now, non-strict:
        a bad user file is skipped and described in :attr:`errors`."""
        table = dict(builtin_models())
        user = cls.from_dirs(user_dirs, strict=False)
        table.update(user.models)
        return cls(table, user.errors)

    @property
    def errors(self) -> list[str]:
        """Problems skipped while loading (a fresh list each time)."""
        return list(self._errors)

    @property
    def models(self) -> Mapping[int, ObjectModel]:
        """Read-only id -> model mapping, ordered by id."""
        return self._models

    def get(self, oid: object) -> ObjectModel | None:
        if isinstance(oid, bool) or not isinstance(oid, int):
            return None
        return self._models.get(oid)

    def __getitem__(self, oid: int) -> ObjectModel:
        model = self.get(oid)
        if model is None:
            raise KeyError(oid)
        return model

    def __contains__(self, oid: object) -> bool:
        return self.get(oid) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)

    def __repr__(self) -> str:
        return f"ModelRegistry(ids={list(self._models)}, errors={len(self._errors)})"
