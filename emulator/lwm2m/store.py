"""Object instances and typed resource values, built on the DDF models.

Module-owned resources (manufacturer, IMEI, firmware, battery, memory, time ...) are live: a getter
computes them at each read. Every change goes out as an event (path, source) so the agent can emit
#LWM2MMON and notify observers. Values written by the host (#LWM2MSET/#LWM2MW/#LWM2MNEWINST) are
"Auto" settings: they are kept in the modem's NVM.
"""
from __future__ import annotations

import logging
from typing import Any, Callable

from .models import ModelRegistry, ObjectModel, ResourceModel

#: the store's NVM record: host instances and host-/server-set values ("Auto" settings)
NVM_KEY = "lwm2m_store"

log = logging.getLogger("emulator.lwm2m.store")

DEFAULTS = {"string": "", "integer": 0, "float": 0.0, "boolean": False, "opaque": b"",
            "time": 0, "objlnk": (65535, 65535), "none": None}

# #LWM2MSET / #LWM2MGET whitelist of the guide: (object, instance, resource, resource instance)
# Growth limits (the guide gives none). A Register lists every instance (`</oid/iid>`, <= 16 bytes
# with its comma); Leshan (Californium's default) refuses a request body above 8192 bytes with 4.13.
# 128 instances per object and 320 in all keep the Register under ~5.2 kB, with room for the links
# of the built-in and custom objects. Beyond them a create fails with StoreError("full").
MAX_INSTANCES_PER_OBJECT = 128
MAX_INSTANCES = 320
WHITELIST = {(3, 0, 6, 0), (3, 0, 7, 0), (3, 0, 8, 0), (3, 0, 9, 0), (3, 0, 17, 0), (3, 0, 20, 0)}


class StoreError(Exception):
    """kind: 'object', 'instance', 'resource', 'rinstance' (missing), 'type', 'exists', 'method'."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def to_json(type_: str, value: Any) -> Any:
    if type_ == "opaque":
        return bytes(value).hex()
    if type_ == "objlnk":
        return list(value)
    return value


def from_json(type_: str, value: Any) -> Any:
    if type_ == "opaque":
        return bytes.fromhex(value)
    if type_ == "objlnk":
        return tuple(value)
    if type_ == "float":
        return float(value)
    return value


class Store:
    """The object instances of one agent and their typed values (LwM2M 1.0.2 6.1 data model).

    Shapes: ``objects[oid][iid][rid]`` is a value (``str``, ``int``, ``float``, ``bool``, ``bytes``,
    ``(oid, iid)`` for objlnk; time in Unix seconds) or, for a multiple resource, ``{riid: value}``.
    ``live[(oid, iid, rid)]`` computes a module-owned value at each read. Paths are ints 0..65535.
    Errors: :class:`StoreError` with ``kind`` "object" / "instance" / "resource" / "rinstance"
    (missing), "type" (a value of the wrong type or shape), "exists", "full" (MAX_INSTANCES_PER_OBJECT
    / MAX_INSTANCES reached), "method". Changes go to :meth:`on_change` listeners as ``(path, source)``
    (path of 4 ids, source "host" / "server" / "module") and instance creation / deletion to
    :meth:`on_structure` listeners as ``((oid, iid), "created" | "deleted")``. What the host set
    ("Auto" settings, guide 3.1.9 / 3.1.10) is kept in NVM under :data:`NVM_KEY`.
    """

    def __init__(self, models: ModelRegistry, nvm=None):
        self.models = models
        self.nvm = nvm
        self.objects: dict[int, dict[int, dict[int, Any]]] = {oid: {} for oid in models}
        self.live: dict[tuple[int, int, int], Callable[[], Any]] = {}
        self.user_instances: set[tuple[int, int]] = set()     # made by #LWM2MNEWINST
        self._host_written: set[tuple[int, int, int]] = set()  # values set by the host: persisted
        self._records: dict[tuple[int, int], list] = {}   # saved records per instance (save() cache)
        self._listeners: list[Callable[[tuple, str], None]] = []
        self._structure_listeners: list[Callable[[tuple, str], None]] = []

    # ------------------------------------------------------------------ model helpers
    def model(self, oid: int) -> ObjectModel:
        m = self.models.get(oid)
        if m is None:
            raise StoreError("object", str(oid))
        return m

    def resource_model(self, oid: int, rid: int) -> ResourceModel:
        r = self.model(oid).resources.get(rid)
        if r is None:
            raise StoreError("resource", f"/{oid}/x/{rid}")
        return r

    def types(self, oid: int) -> Callable[[int], str | None]:
        res = self.model(oid).resources
        return lambda rid: res[rid].type if rid in res else None

    # ------------------------------------------------------------------ listeners
    def on_change(self, fn: Callable[[tuple, str], None]) -> None:
        self._listeners.append(fn)

    def on_structure(self, fn: Callable[[tuple, str], None]) -> None:
        """fn((oid, iid), "created" | "deleted") after an instance comes or goes."""
        self._structure_listeners.append(fn)

    def _changed(self, path: tuple, source: str) -> None:
        for fn in list(self._listeners):
            try:
                fn(path, source)
            except Exception:
                log.exception("store listener failed")

    def _structure(self, path: tuple, event: str) -> None:
        for fn in list(self._structure_listeners):
            try:
                fn(path, event)
            except Exception:
                log.exception("store listener failed")

    # ------------------------------------------------------------------ instances
    def create_instance(self, oid: int, iid: int, values: dict[int, Any] | None = None, *,
                        source: str = "module", user: bool = False) -> None:
        model = self.model(oid)
        insts = self.objects.setdefault(oid, {})
        if iid in insts:
            raise StoreError("exists", f"/{oid}/{iid}")
        if not model.multiple and insts:
            raise StoreError("exists", f"/{oid} is single-instance")
        if len(insts) >= MAX_INSTANCES_PER_OBJECT or self.instance_count() >= MAX_INSTANCES:
            raise StoreError("full", f"/{oid}/{iid}: instance limit reached")
        inst: dict[int, Any] = {}
        for rid, r in model.resources.items():
            if r.type == "none":
                continue
            if r.multiple:
                inst[rid] = {0: DEFAULTS[r.type]} if r.mandatory else {}
            elif r.mandatory or user:
                inst[rid] = DEFAULTS[r.type]
        for rid, v in (values or {}).items():
            inst[rid] = v
        insts[iid] = inst
        self._records.pop((oid, iid), None)
        if user:
            self.user_instances.add((oid, iid))
            try:
                self.save()
            except Exception:          # not saved (NVM full or failing): not created either
                del insts[iid]
                self.user_instances.discard((oid, iid))
                raise
        self._structure((oid, iid), "created")

    def instance_count(self) -> int:
        """Object instances in the store, of every object."""
        return sum(len(insts) for insts in self.objects.values())

    def delete_instance(self, oid: int, iid: int) -> None:
        insts = self.objects.get(oid)
        if not insts or iid not in insts:
            raise StoreError("instance", f"/{oid}/{iid}")
        del insts[iid]
        self._records.pop((oid, iid), None)
        if (oid, iid) in self.user_instances:
            self.user_instances.discard((oid, iid))
            self.save()
        self._structure((oid, iid), "deleted")

    def instance_ids(self, oid: int) -> list[int]:
        return sorted(self.objects.get(oid, {}))

    def links(self) -> dict[int, list[int]]:
        return {oid: sorted(insts) for oid, insts in self.objects.items()}

    # ------------------------------------------------------------------ existence (#LWM2MEXIST)
    def exists(self, oid: int, iid: int | None = None, rid: int | None = None, riid: int | None = None) -> bool:
        if oid not in self.objects or oid not in self.models:
            return False
        if iid is None:
            return True
        inst = self.objects[oid].get(iid)
        if inst is None:
            return False
        if rid is None:
            return True
        rm = self.models.get(oid).resources.get(rid)
        if rm is None:
            return False
        if rm.type == "none":
            return riid in (None, 0)
        if rid not in inst and (oid, iid, rid) not in self.live:
            return False
        if riid is None:
            return True
        value = self._raw(oid, iid, rid)
        if isinstance(value, dict):
            return riid in value
        return riid == 0

    # ------------------------------------------------------------------ values
    def _inst(self, oid: int, iid: int) -> dict[int, Any]:
        if oid not in self.objects:
            raise StoreError("object", str(oid))
        inst = self.objects[oid].get(iid)
        if inst is None:
            raise StoreError("instance", f"/{oid}/{iid}")
        return inst

    def _raw(self, oid: int, iid: int, rid: int) -> Any:
        getter = self.live.get((oid, iid, rid))
        if getter is not None:
            return getter()
        inst = self._inst(oid, iid)
        if rid not in inst:
            raise StoreError("resource", f"/{oid}/{iid}/{rid}")
        return inst[rid]

    def get(self, oid: int, iid: int, rid: int, riid: int | None = None) -> Any:
        self._inst(oid, iid)
        self.resource_model(oid, rid)
        value = self._raw(oid, iid, rid)
        if riid is None:
            return value
        if isinstance(value, dict):
            if riid not in value:
                raise StoreError("rinstance", f"/{oid}/{iid}/{rid}/{riid}")
            return value[riid]
        if riid != 0:
            raise StoreError("rinstance", f"/{oid}/{iid}/{rid}/{riid}")
        return value

    def instance(self, oid: int, iid: int, readable_only: bool = True) -> dict[int, Any]:
        inst = self._inst(oid, iid)
        model = self.model(oid)
        out: dict[int, Any] = {}
        for rid, rm in model.resources.items():
            if readable_only and not rm.readable:
                continue
            if rid in inst or (oid, iid, rid) in self.live:
                out[rid] = self._raw(oid, iid, rid)
        return out

    def set(self, oid: int, iid: int, rid: int, value: Any, riid: int | None = None, *,
            source: str = "module", persist: bool = False, notify: bool = True) -> None:
        inst = self._inst(oid, iid)
        rm = self.resource_model(oid, rid)
        if rm.multiple:
            if riid is None:
                if not isinstance(value, dict):
                    raise StoreError("type", "multiple resource needs instances")
                inst[rid] = dict(value)
            else:
                cur = inst.get(rid)
                if not isinstance(cur, dict):
                    cur = inst[rid] = {}
                cur[riid] = value
        else:
            if riid not in (None, 0):
                raise StoreError("rinstance", f"/{oid}/{iid}/{rid}/{riid}")
            inst[rid] = value
        self._records.pop((oid, iid), None)
        if source != "module":
            self.live.pop((oid, iid, rid), None)      # a value set from outside replaces the live one
        if persist:
            self.save()
        if notify:
            self._changed((oid, iid, rid, 0 if riid is None else riid), source)

    # ------------------------------------------------------------------ whitelist (#LWM2MSET/GET)
    def whitelisted(self, oid: int, iid: int, rid: int, riid: int) -> bool:
        if (oid, iid, rid, riid) in WHITELIST:
            return True
        if (oid, iid) in self.user_instances:
            rm = self.models.get(oid).resources.get(rid) if oid in self.models else None
            return bool(rm and rm.operations == "R")
        return False

    # ------------------------------------------------------------------ persistence
    def save(self) -> None:
        if self.nvm is None:
            return
        # records of objects whose model is not loaded at this boot (a custom XML removed for now) stay
        old = self.nvm.get(NVM_KEY) or {}
        loaded = self.objects.keys()          # the objects modelled at this boot
        doc = {"instances": sorted([[oid, iid] for oid, iid in self.user_instances]
                                   + [e for e in old.get("instances", []) if e[0] not in loaded]),
               "values": [e for e in old.get("values", []) if e[0] not in loaded]}
        for oid, insts in self.objects.items():
            resources = self.models.get(oid).resources
            for iid, inst in insts.items():
                records = self._records.get((oid, iid))
                if records is None:         # changed since the last save: encode this instance again
                    records = self._records[(oid, iid)] = self._instance_records(oid, iid, inst, resources)
                doc["values"].extend(records)
        self.nvm.set(NVM_KEY, doc)

    def _instance_records(self, oid: int, iid: int, inst: dict, resources: dict) -> list:
        host_owned = (oid, iid) in self.user_instances
        out = []
        for rid, value in inst.items():
            rm = resources.get(rid)
            if rm is None or rm.type == "none":
                continue
            if host_owned or (oid, iid, rid) in self._host_written:
                v = {str(k): to_json(rm.type, x) for k, x in value.items()} if isinstance(value, dict) \
                    else to_json(rm.type, value)
                out.append([oid, iid, rid, v])
        return out

    def host_write(self, oid: int, iid: int, rid: int, value: Any, riid: int | None = None) -> None:
        """A host's write (#LWM2MSET/#LWM2MW): set, keep (Auto), then notify. If it cannot be saved
        (NVM full or failing) the old value stays and the error propagates: nothing unsaved lingers
        for a later write to persist."""
        inst = self._inst(oid, iid)
        had, prev = rid in inst, inst.get(rid)
        prev = dict(prev) if isinstance(prev, dict) else prev
        written = (oid, iid, rid) in self._host_written
        self.set(oid, iid, rid, value, riid, source="host", notify=False)
        self.mark_host_written(oid, iid, rid)
        try:
            self.save()
        except Exception:
            if had:
                inst[rid] = prev
            else:
                inst.pop(rid, None)
            if not written:
                self._host_written.discard((oid, iid, rid))
            self._records.pop((oid, iid), None)
            raise
        self._changed((oid, iid, rid, 0 if riid is None else riid), "host")

    def mark_host_written(self, oid: int, iid: int, rid: int) -> None:
        self._host_written.add((oid, iid, rid))
        self._records.pop((oid, iid), None)

    def host_written(self) -> set[tuple[int, int, int]]:
        """The resources whose value the host set (#LWM2MSET/#LWM2MW): kept in NVM."""
        return set(self._host_written)

    def forget_saved(self) -> None:
        """Factory reset of the LwM2M data (/3/0/5): what :meth:`load_saved` would restore is dropped."""
        self.nvm.delete(NVM_KEY)

    def load_saved(self) -> None:
        if self.nvm is None:
            return
        doc = self.nvm.get(NVM_KEY) or {}
        for oid, iid in doc.get("instances", []):
            if oid in self.models and iid not in self.objects.get(oid, {}):
                try:
                    self.create_instance(oid, iid, user=False)
                    self.user_instances.add((oid, iid))
                except StoreError:
                    pass
        for oid, iid, rid, v in doc.get("values", []):
            try:
                rm = self.resource_model(oid, rid)
                inst = self._inst(oid, iid)
                inst[rid] = {int(k): from_json(rm.type, x) for k, x in v.items()} if isinstance(v, dict) \
                    else from_json(rm.type, v)
                if (oid, iid) not in self.user_instances:
                    self.mark_host_written(oid, iid, rid)
            except (StoreError, ValueError, TypeError):
                log.warning("dropping unreadable stored value /%s/%s/%s", oid, iid, rid)
