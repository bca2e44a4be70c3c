"""The server-facing resource tree: LwM2M 1.0 operations on the store, over aiocoap.

GET = Read (or Discover with Accept: link-format, or Observe), PUT = Write (replace) or
Write-Attributes (query only), POST = Execute on a resource, partial Write on an instance, Create on an
object, DELETE = Delete an instance.
"""
from __future__ import annotations

import logging
import math
import re
from typing import TYPE_CHECKING, Any

import aiocoap
from aiocoap import numbers
from aiocoap.resource import ObservableResource

from . import coap
from . import formats as fmt
from .formats import link
from .observe import Observation
from .store import StoreError

if TYPE_CHECKING:
    from .agent import Agent

log = logging.getLogger("emulator.lwm2m.site")
C = numbers.codes.Code

READ_FORMATS = (fmt.TEXT, fmt.OPAQUE, fmt.TLV, fmt.JSON)
# the critical options this client acts on; any other one in a request is 4.02 (RFC 7252 5.4.1):
# If-Match, Uri-Host, If-None-Match, Uri-Port, Uri-Path, Uri-Query, Accept, Block2, Block1
UNDERSTOOD_CRITICAL = frozenset({1, 3, 5, 7, 11, 15, 17, 23, 27})
ATTRS = ("pmin", "pmax", "gt", "lt", "st")
#: The largest request body (one datagram, or a Block1 transfer put together) the client takes, in bytes;
#: a larger one is answered 4.13 Request Entity Too Large with Size1 = this limit (RFC 7959 2.9.3). The
#: firmware package (/5/0/0) takes up to the FOTA package limit instead.
MAX_REQUEST_BODY = 8192
#: Observations kept at once (all servers); a further Observe is declined: a plain 2.05 answer without
#: the Observe option, so the server knows it does not observe (RFC 7641 4.1).
MAX_OBSERVATIONS = 64


def _resp(code, payload: bytes = b"", cf: int | None = None) -> aiocoap.Message:
    m = aiocoap.Message(code=code, payload=payload)
    if cf is not None:
        m.opt.content_format = cf
    return m


_PERIOD = re.compile(r"[0-9]{1,10}")
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?")


def _attribute_value_ok(name: str, value: str) -> bool:
    """pmin/pmax: a non-negative integer (seconds, below 2**31); gt/lt/st: a finite decimal number,
    st not negative. ASCII only: int()/float() would take other scripts' digits, "nan" or "1_0"."""
    if name in ("pmin", "pmax"):
        return value.isascii() and bool(_PERIOD.fullmatch(value)) and int(value) < 2**31
    if not (value.isascii() and _NUMBER.fullmatch(value) and math.isfinite(float(value))):
        return False
    return name != "st" or float(value) >= 0


def parse_path(parts) -> tuple[int, ...] | None:
    out = []
    for p in parts:
        if not (p.isascii() and p.isdigit()) or len(p) > 5 or int(p) > 65535:
            return None
        out.append(int(p))
    return tuple(out)


class Site(ObservableResource):
    """One resource object for the whole tree: LwM2M paths are data, not a fixed site map."""

    def __init__(self, agent: "Agent"):
        super().__init__()
        self.agent = agent
        coap.bound_blockwise(self, agent.clock)
        self.attributes: dict[tuple, dict[str, str]] = {}
        self.observers: dict[tuple, set] = {}
        self.bootstrapping = False

    @property
    def store(self):
        return self.agent.store

    async def needs_blockwise_assembly(self, request):
        return True

    async def render_to_pipe(self, pipe):
        unknown = sorted({int(o.number) for o in pipe.request.opt.option_list()
                          if o.number.is_critical() and int(o.number) not in UNDERSTOOD_CRITICAL})
        if unknown:
            pipe.add_response(_resp(C.BAD_OPTION, f"unknown critical option {unknown[0]}".encode()), is_last=True)
            return
        try:
            too_large = self._too_large(pipe.request)
            if too_large is not None:
                pipe.add_response(too_large, is_last=True)
                return
            if pipe.request.opt.observe == 0:
                pipe = coap.ObserveFromOne(pipe)
            return await super().render_to_pipe(pipe)
        except ValueError as exc:           # e.g. block options that contradict each other
            log.info("rejected request: %r", exc)
            pipe.add_response(_resp(C.BAD_REQUEST), is_last=True)

    def body_limit(self, request) -> int:
        """The largest body (bytes) this request's target takes: see MAX_REQUEST_BODY."""
        if parse_path(request.opt.uri_path) == (5, 0, 0) and getattr(self.agent, "fota", None) is not None:
            return int(self.agent.fota.max_package)
        return MAX_REQUEST_BODY

    def _too_large(self, request) -> aiocoap.Message | None:
        """4.13 with Size1 when the body, the Block1 transfer so far, or the announced Size1 exceeds the
        limit (checked before any block is kept, so nothing is ever partly written)."""
        size = len(request.payload)
        if not size and request.opt.block1 is None and request.opt.size1 is None:
            return None                 # no body (a Read, Observe, Discover, Delete): nothing to weigh
        limit = self.body_limit(request)
        block1 = coap.block1_of(request)
        if block1 is not None:
            size += block1[3]
        announced = request.opt.size1
        if size <= limit and (announced is None or announced <= limit):
            return None
        log.info("request body of %d bytes (Size1 %s) over the limit of %d: 4.13", size, announced, limit)
        m = _resp(C.REQUEST_ENTITY_TOO_LARGE)
        m.opt.size1 = limit
        return m

    # ------------------------------------------------------------------ observe
    async def add_observation(self, request, serverobservation):
        path = parse_path(request.opt.uri_path)
        if not path or len(path) > 3 or request.code != C.GET or request.opt.accept == fmt.LINK \
                or not self.agent.registered or not self.authorized(path) or not self._readable(path) \
                or sum(len(o) for o in self.observers.values()) >= MAX_OBSERVATIONS:
            coap.decline_observation(serverobservation)
            return
        obs = Observation(self, path, serverobservation, request)
        self.observers.setdefault(path, set()).add(obs)

        def cancel(path=path, o=obs):
            o.cancel()
            self.observers.get(path, set()).discard(o)
        serverobservation.accept(cancel)

    def authorized(self, path: tuple) -> bool:
        """The access rule, in one place: the Security Object (/0) is for the Bootstrap-Server only;
        a LwM2M Server gets 4.01 Unauthorized for any operation on it (LwM2M 1.0.2 E.1)."""
        return not (path and path[0] == 0 and not self.bootstrapping)

    def _readable(self, path) -> bool:
        try:
            self._read_node(path)
            return True
        except StoreError:
            return False

    def changed(self, path: tuple) -> None:
        """A value changed: the observations on it and on its parents decide whether to notify."""
        for n in range(1, len(path) + 1):
            for o in list(self.observers.get(path[:n], ())):
                o.changed()

    def structure_changed(self, path: tuple, event: str) -> None:
        """Instance path (oid, iid) was created or deleted. Observations of the object notify (subject
        to pmin, as any change); those of the deleted instance or of its resources end with a 4.04
        notification (RFC 7641 3.2: a non-2.xx notification ends the observation)."""
        oid = path[0]
        if event == "deleted":
            for p in [p for p in self.observers if len(p) >= 2 and p[:2] == tuple(path)]:
                for o in list(self.observers.pop(p, ())):
                    o.gone(_resp(C.NOT_FOUND))
        for o in list(self.observers.get((oid,), ())):
            o.changed()

    def drop_observations(self) -> None:
        """A new registration: the server forgot every observation, so do we (silently)."""
        for obs in self.observers.values():
            for o in list(obs):
                o.cancel()
        self.observers.clear()

    def notification(self, obs) -> aiocoap.Message:
        """The message of one notification (confirmable when the agent wants its ACK seen)."""
        resp = self._render(obs.request)
        resp.transport_tuning = coap.tuning(reliable=self.agent.wants_con(obs.path))
        return resp

    # ------------------------------------------------------------------ dispatch
    async def render(self, request):
        self.agent.modem.events.emit("lwm2m", event="request")
        try:
            return self._render(request)
        except fmt.FormatError as exc:
            log.info("bad payload: %s", exc)
            return _resp(C.BAD_REQUEST)
        except StoreError as exc:
            return _resp(C.NOT_FOUND if exc.kind in ("object", "instance", "resource", "rinstance")
                         else C.BAD_REQUEST)
        except Exception:
            log.exception("request failed")
            return _resp(C.INTERNAL_SERVER_ERROR)

    def _render(self, request) -> aiocoap.Message:
        if tuple(request.opt.uri_path) == ("bs",) and request.code == C.POST:
            if not self.bootstrapping:
                return _resp(C.METHOD_NOT_ALLOWED)
            return self.agent.bootstrap_finish()
        path = parse_path(request.opt.uri_path)
        if path is None or len(path) > 4:
            return _resp(C.NOT_FOUND if path is None else C.BAD_REQUEST)
        if len(path) == 0:
            if request.code == C.DELETE and self.bootstrapping:
                return self.agent.bootstrap_delete(())
            return _resp(C.METHOD_NOT_ALLOWED)
        self.agent.server_activity()
        if not self.authorized(path):
            return _resp(C.UNAUTHORIZED)
        oid = path[0]
        if oid not in self.store.models or oid not in self.store.objects:
            return _resp(C.NOT_FOUND)
        code = request.code
        if code == C.GET:
            if request.opt.accept == fmt.LINK:
                return self._discover(path)
            return self._read(request, path)
        if code == C.PUT:
            if not request.payload and request.opt.uri_query:
                return self._write_attributes(request, path)
            return self._write(request, path, replace=True)
        if code == C.POST:
            if len(path) == 3:
                return self._execute(request, path)
            if len(path) == 2:
                return self._write(request, path, replace=False)
            if len(path) == 1:
                return self._create(request, path)
            return _resp(C.METHOD_NOT_ALLOWED)
        if code == C.DELETE:
            if self.bootstrapping:
                return self.agent.bootstrap_delete(path)
            if len(path) != 2 or oid in (0, 1, 3):
                return _resp(C.METHOD_NOT_ALLOWED)
            self.store.delete_instance(oid, path[1])
            return _resp(C.DELETED)
        return _resp(C.METHOD_NOT_ALLOWED)

    # ------------------------------------------------------------------ read
    def _read_node(self, path) -> Any:
        oid = path[0]
        if len(path) == 1:
            return {iid: self.store.instance(oid, iid) for iid in self.store.instance_ids(oid)}
        if len(path) == 2:
            return self.store.instance(oid, path[1])
        rm = self.store.resource_model(oid, path[2])
        if not rm.readable:
            raise StoreError("method", "not readable")
        return self.store.get(*path)

    def _read(self, request, path) -> aiocoap.Message:
        try:
            node = self._read_node(path)
        except StoreError as exc:
            if exc.kind == "method":
                return _resp(C.METHOD_NOT_ALLOWED)
            raise
        accept = request.opt.accept
        types = self.store.types(path[0])
        if len(path) == 4:                      # a resource instance: text only in LwM2M 1.0
            rtype = types(path[2])
            cf = fmt.normalize(accept) if accept is not None else (fmt.OPAQUE if rtype == "opaque" else fmt.TEXT)
            if cf not in (fmt.TEXT, fmt.OPAQUE):
                return _resp(C.NOT_ACCEPTABLE)
            try:
                return _resp(C.CONTENT, fmt.encode(cf, (path[0], path[1], path[2]), node, types), cf)
            except fmt.FormatError:                 # e.g. an integer asked for as opaque
                return _resp(C.NOT_ACCEPTABLE)
        if accept is not None:
            cf = fmt.normalize(accept)
            if cf not in READ_FORMATS:
                return _resp(C.NOT_ACCEPTABLE)
        elif len(path) == 3 and not isinstance(node, dict):
            cf = fmt.OPAQUE if types(path[2]) == "opaque" else fmt.TEXT
        else:
            cf = fmt.TLV
        try:
            payload = fmt.encode(cf, path, node, types)
        except fmt.FormatError:
            return _resp(C.NOT_ACCEPTABLE)
        return _resp(C.CONTENT, payload, cf if accept is None else accept)

    # ------------------------------------------------------------------ discover / attributes
    def _discover(self, path) -> aiocoap.Message:
        store = self.store
        if len(path) == 1:
            insts = {iid: list(store.instance(path[0], iid, readable_only=False)) for iid in store.instance_ids(path[0])}
        elif len(path) == 2:
            insts = {path[1]: list(store.instance(path[0], path[1], readable_only=False))}
        else:
            store.get(path[0], path[1], path[2]) if store.resource_model(path[0], path[2]).readable else None
            insts = {path[1]: [path[2]]}

        def dim(p):
            try:
                v = store.get(*p)
            except StoreError:
                return None
            return len(v) if isinstance(v, dict) else None
        text = link.discover_links(path, insts, attributes=lambda p: self.attributes.get(p), dim=dim)
        return _resp(C.CONTENT, text.encode(), fmt.LINK)

    def _write_attributes(self, request, path) -> aiocoap.Message:
        """Write-Attributes (LwM2M 1.0.2 5.4.4, attributes of 5.1.2). pmin/pmax: non-negative integers,
        on an object, instance or resource; gt/lt/st: numbers, only on a resource of numeric type
        (Integer, Float), st not negative; "name" or "name=" removes one. Anything else is 4.00 and
        changes nothing. Values the text says to ignore rather than refuse (pmax below pmin, lt/gt/st
        that contradict each other) are stored and ignored by the observations (observe.py)."""
        if len(path) > 3:
            return _resp(C.BAD_REQUEST)
        if len(path) >= 2:
            self.store._inst(path[0], path[1])          # a missing instance or resource is 4.04
        numeric = False
        if len(path) == 3:
            rm = self.store.resource_model(path[0], path[2])
            numeric = rm.type in ("integer", "float")
        attrs = dict(self.attributes.get(path, {}))
        for q in request.opt.uri_query:
            name, _, value = q.partition("=")
            if name not in ATTRS:
                return _resp(C.BAD_REQUEST)
            if name in ("gt", "lt", "st") and not numeric:
                return _resp(C.BAD_REQUEST)
            if value == "":
                attrs.pop(name, None)
                continue
            if not _attribute_value_ok(name, value):
                return _resp(C.BAD_REQUEST)
            attrs[name] = value
        self.attributes[path] = attrs
        for p, obs in self.observers.items():
            if p[:len(path)] == path:
                for o in obs:
                    o._arm()
        return _resp(C.CHANGED)

    # ------------------------------------------------------------------ write / create
    def _writable(self, oid, rid) -> bool:
        if self.bootstrapping and oid in (0, 1):
            return True
        rm = self.store.models.get(oid).resources.get(rid)
        return bool(rm and rm.writable)

    def _shape_ok(self, oid, rid, value) -> bool:
        """A multiple resource takes {instance: value}, a single one a plain value (TLV and JSON carry both)."""
        rm = self.store.models.get(oid).resources.get(rid)
        return rm is not None and isinstance(value, dict) == bool(rm.multiple)

    def _write(self, request, path, replace: bool) -> aiocoap.Message:
        cf = request.opt.content_format
        if cf is None:
            return _resp(C.BAD_REQUEST)
        cf = fmt.normalize(cf)
        if cf not in READ_FORMATS:
            return _resp(C.UNSUPPORTED_CONTENT_FORMAT)
        oid = path[0]
        types = self.store.types(oid)
        if oid in (0, 1) and self.bootstrapping:
            return self.agent.bootstrap_write(path, cf, request.payload)
        if len(path) == 1:
            return _resp(C.METHOD_NOT_ALLOWED)
        if len(path) == 4:
            return _resp(C.METHOD_NOT_ALLOWED)
        if len(path) == 3:
            if not self._writable(oid, path[2]):
                return _resp(C.METHOD_NOT_ALLOWED)
            self.store._inst(oid, path[1])
            value = fmt.decode(cf, path, request.payload, types)
            if not self._shape_ok(oid, path[2], value):
                return _resp(C.BAD_REQUEST)
            refused = self.agent.check_server_write(path, value)
            if refused is not None:
                return _resp(refused)
            return _resp(self.agent.server_write(path, value) or C.CHANGED)
        self.store._inst(oid, path[1])
        values = fmt.decode(cf, path, request.payload, types)
        for rid in values:
            if not self._writable(oid, rid):
                return _resp(C.METHOD_NOT_ALLOWED)
            if not self._shape_ok(oid, rid, values[rid]):
                return _resp(C.BAD_REQUEST)
            refused = self.agent.check_server_write((oid, path[1], rid), values[rid])
            if refused is not None:
                return _resp(refused)
        for rid, v in values.items():
            code = self.agent.server_write((oid, path[1], rid), v)
            if code is not None and not code.is_successful():
                return _resp(code)
        return _resp(C.CHANGED)

    def _create(self, request, path) -> aiocoap.Message:
        cf = request.opt.content_format
        oid = path[0]
        if oid in (0, 1, 2, 3, 5) and not self.bootstrapping:
            return _resp(C.METHOD_NOT_ALLOWED)
        items = fmt.decode_create(fmt.normalize(cf if cf is not None else fmt.TLV), oid, request.payload,
                                  self.store.types(oid))
        model = self.store.model(oid)
        created = []
        for iid, values in items:
            if iid is None:
                iid = next(i for i in range(65535) if i not in self.store.objects.get(oid, {}))
            if iid in self.store.objects.get(oid, {}):
                return _resp(C.BAD_REQUEST)
            for rid in values:
                if rid not in model.resources or not self._shape_ok(oid, rid, values[rid]):
                    return _resp(C.BAD_REQUEST)
            self.store.create_instance(oid, iid, values, source="server")
            created.append(iid)
        m = _resp(C.CREATED)
        if len(created) == 1:
            m.opt.location_path = (str(oid), str(created[0]))
        return m

    # ------------------------------------------------------------------ execute
    def _execute(self, request, path) -> aiocoap.Message:
        oid, iid, rid = path
        self.store._inst(oid, iid)
        rm = self.store.resource_model(oid, rid)
        if not rm.executable:
            return _resp(C.METHOD_NOT_ALLOWED)
        return _resp(self.agent.server_execute(path, request.payload.decode("utf-8", "replace")) or C.CHANGED)
