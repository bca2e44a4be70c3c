"""The #LWM2M commands of the guide (section 3.1), on top of the agent.

Omitted sub-parameters follow the registry's rule (emulator/at/registry.py): the defaults below are
the guide's parameter tables (audited command by command: <agentInstance>/<agentInstanceID> 0 except
#LWM2MNFYACKENA, #LWM2MMON <action> 0, #LWM2MENA <en> 0 <pdpId> 1 <mode> 0 guard times 5,
#LWM2MACK and #LWM2MFOTAACK <action> 1, #LWM2MFOTACFG <mode> 0); "N/A" parameters stay mandatory.
#LWM2MFOTACFG holds its mode (an omitted <mode> keeps it); #LWM2MENA holds nothing once disabled
(its read shows only 0), so its omitted parameters take the table's defaults.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..at.errors import MEMORY_FULL, OPERATION_NOT_ALLOWED, OPERATION_NOT_SUPPORTED, AtError
from ..at.parser import TEST
from ..at.registry import Family, Int, Raw, Str
from ..lwm2m import events as ev
from ..lwm2m import objects
from ..lwm2m.host_settings import EndpointKeys
from ..lwm2m.agent import DIS, LIST_LIMIT, Agent, AgentError, ValueRefused
from ..lwm2m.coap import server_uri_problem
from ..lwm2m.store import StoreError

family = Family()


# ---------------------------------------------------------------------------- events -> URC text
def tlt_text(agent: Agent, event: ev.Event) -> str | None:
    """The ``LWM2M-TLT`` URC of a life-cycle event (guide 3.1.3), or None when the profile turns these
    URCs off (``lwm2m.tlt_urcs = false``; FORCE_EXIT is always shown). ``lwm2m.tlt_guide_format``
    gives the guide's ``#LWM2M-TLT: "<event>",<ssid>,"<uri>"`` instead of the firmware's
    ``LWM2M-TLT:"<event>",SSID=<ssid>,"<uri>"``."""
    name = TLT_NAMES[type(event)]
    if not (agent.cfg.get("tlt_urcs", True) or isinstance(event, ev.ForceExit)):
        return None
    guide = agent.cfg.get("tlt_guide_format", False)
    if isinstance(event, ev.ServerEvent):
        tail = f',{event.ssid},"{event.uri}"' if guide else f',SSID={event.ssid},"{event.uri}"'
    else:
        tail = ""
    return f'#LWM2M-TLT: "{name}"{tail}' if guide else f'LWM2M-TLT:"{name}"{tail}'


TLT_NAMES = {ev.Registering: "REGISTERING", ev.Registered: "REGISTERED", ev.Deregistered: "DEREGISTERED",
             ev.Suspended: "SUSPENDED", ev.Bootstrapping: "BOOTSTRAPPING", ev.BootstrapDone: "BOOTSTRAPPED",
             ev.ForceExit: "FORCE_EXIT", ev.ClientDisabled: "CLIENT_DISABLED"}


def urc_text(agent: Agent, event: ev.Event) -> str | None:
    """The module's URC for an agent event, or None for events the host does not see."""
    if type(event) in TLT_NAMES:
        return tlt_text(agent, event)
    if isinstance(event, ev.Ring):
        return f'#LWM2MRING: "{event.what}"'
    if isinstance(event, ev.End):
        return "#LWM2MEND: 0"
    if isinstance(event, ev.NotifyAck):
        o, i, r = event.path
        return f'#LWM2MNFYACK: 0,{event.ssid},"/{o}/{i}/{r}","{event.result}"'
    if isinstance(event, ev.MonitorUpdate):
        return '#LWM2MMON: UPD,"/{}/{}/{}/{}"'.format(*event.path)
    if isinstance(event, ev.Info):
        return f'#LWM2MINFO: "{event.category}","{event.text}"'
    if isinstance(event, ev.FotaRing):
        return f'#LWM2MFOTARING: 0,"{event.what}"'
    return None


@family.on_attach
def _agent_urcs(modem):
    """The agent's typed events become the module's URCs."""
    def on_event(lwm2m: ev.Event | None = None, **_):
        text = urc_text(modem.agent, lwm2m) if lwm2m is not None else None
        if text is not None:
            modem.urc(text)
    modem.events.subscribe("lwm2m", on_event)

ID = (0, 65535)
TYPE_NAMES = {0: "integer", 1: "float", 2: "string", 3: "opaque"}


def _busy_gate(ctx, form):
    """Right after #LWM2MENA the agent (de)activates its data context and takes no other #LWM2M
    command for a short while: such a command waits for the end of that window, then runs."""
    agent: Agent = ctx.modem.agent
    if form == TEST or not agent.busy:
        return None
    return agent.clock.sleep(agent.busy_until - agent.clock.now())


def _cmd(name, *args, gate=_busy_gate, **kw):
    return family.command(name, *args, lf_join=True, gate=gate, **kw)


def agent_of(ctx, *, enabled: bool = False, failed_ok: bool = False) -> Agent:
    """The modem's agent; a failed agent (it could not start at power-on) takes no command
    (OPERATION_NOT_ALLOWED) unless ``failed_ok``."""
    agent: Agent = ctx.modem.agent
    if agent.failure is not None and not failed_ok:
        raise AtError(OPERATION_NOT_ALLOWED)
    if enabled and not agent.enabled:              # "enabled and working": on, not stopped
        raise AtError(OPERATION_NOT_ALLOWED)
    return agent


def _ok(ctx):
    return None


def _unsupported(ctx):
    raise AtError()


def format_value(type_: str, value) -> str:
    if type_ == "opaque":
        return bytes(value).hex().upper()
    if type_ == "boolean":
        return "1" if value else "0"
    if type_ == "float":
        return f"{float(value):f}"
    if type_ == "objlnk":
        return f"{value[0]}:{value[1]}"
    return str(value)


_INT = re.compile(r"^[+-]?\d{1,20}$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_value(type_: str, p) -> object:
    """A host-typed value for a resource of the given model type; AtError when it does not fit."""
    text = p.text if p is not None else ""
    try:
        if type_ in ("integer", "time"):
            if not _INT.match(text):
                raise ValueError
            v = int(text)
            if not -2**63 <= v < 2**63:
                raise ValueError
            return v
        if type_ == "float":
            if not _FLOAT.match(text):
                raise ValueError
            return float(text)
        if type_ == "boolean":
            if text not in ("0", "1"):
                raise ValueError
            return text == "1"
        if type_ == "opaque":
            if len(text) % 2:
                raise ValueError
            return bytes.fromhex(text)
        if type_ == "objlnk":
            a, b = text.split(":")
            a, b = int(a), int(b)
            if not (0 <= a <= 65535 and 0 <= b <= 65535):
                raise ValueError
            return (a, b)
        if type_ == "string":
            return text
    except ValueError:
        pass
    raise AtError(OPERATION_NOT_SUPPORTED)


# ---------------------------------------------------------------------------- #LWM2MSTAT
stat = _cmd("#LWM2MSTAT", gate=None)


@stat.exec
def _(ctx):
    agent = agent_of(ctx, failed_ok=True)
    if agent.status == DIS and agent.after_disable and agent.cfg.get("stat_dis_bare", True):
        return '#LWM2MGETSTAT: "DIS"'
    return f'#LWM2MGETSTAT: {int(agent.enabled)},"{agent.status}"'


stat.read(_unsupported)
stat.test(_ok)

# ---------------------------------------------------------------------------- #LWM2MENA
ena = _cmd("#LWM2MENA", Int("en", (0, 1), default=0), Int("pdpId", (1, 6), default=1),
           Int("mode", (0, 1), default=0), Int("guardRequestTime", (1, 100), default=5),
           Int("guardReleaseTime", (1, 100), default=5), needs_sim=True, gate=None)


@ena.set
def _(ctx, en, pdp, mode, greq, grel):
    agent = agent_of(ctx, failed_ok=True)
    if agent.failure is not None:       # the service failed at power-on: it disables itself again
        if en:
            agent.clock.call_later(0, lambda: agent.emit(ev.ClientDisabled()))
        return
    try:
        if en:
            agent.enable(pdp, mode, greq, grel)
        else:
            agent.disable()
    except AgentError:
        raise AtError(OPERATION_NOT_ALLOWED) from None


@ena.read
def _(ctx):
    agent = agent_of(ctx, failed_ok=True)
    if not agent.enabled:
        return "#LWM2MENA: 0"
    pdp, mode, greq, grel = agent.params
    return f'#LWM2MENA: 1,{pdp},{mode},{greq},{grel},"{agent.status}"'


# ---------------------------------------------------------------------------- #LWM2MACK
ack = _cmd("#LWM2MACK", Int("action", (1, 1), default=1), needs_sim=True, gate=None)


@ack.set
def _(ctx, action):
    try:
        agent_of(ctx).ack()      # a ring asks for it: never refused as busy
    except AgentError:
        raise AtError(OPERATION_NOT_ALLOWED) from None


ack.read(_unsupported)

# ---------------------------------------------------------------------------- #LWM2MMON
mon = _cmd("#LWM2MMON", Int("action", (0, 1), default=0), Int("objectID", (1, 65535), optional=False),
           needs_sim=True)


@mon.set
def _(ctx, action, oid):
    agent = agent_of(ctx)
    if action == 1:
        if oid in agent.monitor:
            return
        if len(agent.monitor) >= LIST_LIMIT:
            raise AtError(OPERATION_NOT_ALLOWED)
        agent.monitor.append(oid)
    else:
        if oid not in agent.monitor:
            raise AtError(OPERATION_NOT_ALLOWED)
        agent.monitor.remove(oid)


@mon.read
def _(ctx):
    return [f'#LWM2MMON: "{oid}"' for oid in agent_of(ctx).monitor]


# ---------------------------------------------------------------------------- #LWM2MR / #LWM2MW / #LWM2ME
def _host_path(agent, oid, iid, rid, riid, need: str):
    if not objects.host_may(oid):             # the object's rule (emulator/lwm2m/objects/)
        raise AtError(OPERATION_NOT_ALLOWED)
    store = agent.store
    try:
        rm = store.resource_model(oid, rid)
        store._inst(oid, iid)
    except StoreError:
        raise AtError(OPERATION_NOT_ALLOWED) from None
    if need == "R" and not rm.readable or need == "W" and not rm.writable or need == "E" and not rm.executable:
        raise AtError(OPERATION_NOT_ALLOWED)
    return rm


def _host_set(agent: Agent, path: tuple, value) -> None:
    try:
        agent.host_set(path, value)
    except ValueRefused:
        raise AtError(OPERATION_NOT_SUPPORTED) from None


_URI = (Int("agentInstance", (0, 4), default=0), Int("objectID", ID, optional=False),
        Int("objectInstanceID", ID, optional=False), Int("resourceID", ID, optional=False),
        Int("resourceInstanceID", ID, optional=False))

rd = _cmd("#LWM2MR", *_URI, needs_sim=True)


@rd.set
def _(ctx, agent_id, oid, iid, rid, riid):
    agent = agent_of(ctx, enabled=True)
    if agent_id != 0:
        raise AtError(OPERATION_NOT_SUPPORTED)
    rm = _host_path(agent, oid, iid, rid, riid, "R")
    try:
        value = agent.store.get(oid, iid, rid, riid)
    except StoreError:
        raise AtError(OPERATION_NOT_ALLOWED) from None
    return f"#LWM2MR: {format_value(rm.type, value)}"


rd.read(_ok)

wr = _cmd("#LWM2MW", *_URI, Raw("value", optional=False), needs_sim=True)


@wr.set
def _(ctx, agent_id, oid, iid, rid, riid, value):
    agent = agent_of(ctx, enabled=True)
    if agent_id != 0:
        raise AtError(OPERATION_NOT_SUPPORTED)
    rm = _host_path(agent, oid, iid, rid, riid, "W")
    if not rm.multiple and riid != 0:
        raise AtError(OPERATION_NOT_ALLOWED)
    _host_set(agent, (oid, iid, rid, riid), parse_value(rm.type, value))


wr.read(_ok)

ex = _cmd("#LWM2ME", *_URI, needs_sim=True)


@ex.set
def _(ctx, agent_id, oid, iid, rid, riid):
    agent = agent_of(ctx, enabled=True)
    if agent_id != 0:
        raise AtError(OPERATION_NOT_SUPPORTED)
    _host_path(agent, oid, iid, rid, riid, "E")
    agent.server_execute((oid, iid, rid), "")


ex.read(_ok)

# ---------------------------------------------------------------------------- #LWM2MSTS
SERVER_IDS = [(0, 0), (10, 12), (20, 20), (999, 999)]
sts = _cmd("#LWM2MSTS", Int("agentInstance", (0, 2), default=0), Int("serverURI", SERVER_IDS),
           Str("URI", max_len=255), Int("isBootstrapServer", (0, 1), default=0), needs_sim=True)


@sts.set
def _(ctx, agent_id, server, uri, is_bs):
    agent = agent_of(ctx)
    if server is None:
        agent.host_settings.set_pending_server("factory")
        return
    if server == 0:
        raise AtError(OPERATION_NOT_ALLOWED)
    if server == 999:
        if not uri or server_uri_problem(uri) is not None:     # scheme, host and port 1..65535
            raise AtError(OPERATION_NOT_SUPPORTED)
        entry = [uri, int(is_bs)]
    else:
        table = agent.cfg["servers"]
        if str(server) not in table:
            raise AtError(OPERATION_NOT_SUPPORTED)
        entry = list(table[str(server)])
    agent.host_settings.set_pending_server(entry)


sts.read(_ok)
sts.test(_ok)

# ---------------------------------------------------------------------------- #LWM2MSET / #LWM2MGET
_TYPED = (Int("type", (0, 3), optional=False), Int("objectID", ID, optional=False),
          Int("objectInstanceID", ID, optional=False), Int("resourceID", ID, optional=False),
          Int("resourceInstanceID", ID, optional=False))


def _typed_path(agent, t, oid, iid, rid, riid):
    if not agent.store.whitelisted(oid, iid, rid, riid):
        raise AtError(OPERATION_NOT_ALLOWED)
    try:
        rm = agent.store.resource_model(oid, rid)
        agent.store._inst(oid, iid)
    except StoreError:
        raise AtError(OPERATION_NOT_ALLOWED) from None
    ok = {0: ("integer", "boolean", "time"), 1: ("float",), 2: ("string",), 3: ("opaque",)}[t]
    if rm.type not in ok:
        raise AtError(OPERATION_NOT_ALLOWED)
    return rm


lset = _cmd("#LWM2MSET", *_TYPED, Raw("value", optional=False), needs_sim=True,
            test_answer="#LWM2MSET: (0-3)")


@lset.set
def _(ctx, t, oid, iid, rid, riid, value):
    agent = agent_of(ctx)
    rm = _typed_path(agent, t, oid, iid, rid, riid)
    if t == 0:
        v = parse_value("integer", value)
        if not -2**31 <= v < 2**31:
            raise AtError(OPERATION_NOT_SUPPORTED)
        if rm.type == "boolean":
            if v not in (0, 1):
                raise AtError(OPERATION_NOT_SUPPORTED)
            v = bool(v)
    else:
        v = parse_value(TYPE_NAMES[t], value)
    _host_set(agent, (oid, iid, rid, riid if rm.multiple else None), v)


lset.read(_ok)

lget = _cmd("#LWM2MGET", *_TYPED, needs_sim=True)


@lget.set
def _(ctx, t, oid, iid, rid, riid):
    agent = agent_of(ctx)
    rm = _typed_path(agent, t, oid, iid, rid, riid)
    try:
        value = agent.store.get(oid, iid, rid, riid)
    except StoreError:
        raise AtError(OPERATION_NOT_ALLOWED) from None
    return f"#LWM2MGET: {format_value(rm.type, value)}"


lget.read(_ok)

# ---------------------------------------------------------------------------- #LWM2MNEWINST
newinst = _cmd("#LWM2MNEWINST", Int("agentInstance", (0, 0), default=0),
               Int("objectID", (7, 65534), optional=False), Int("objectInstanceId", (0, 65534), optional=False),
               needs_sim=True)


@newinst.set
def _(ctx, agent_id, oid, iid):
    agent = agent_of(ctx)
    try:
        agent.store.create_instance(oid, iid, source="host", user=True)
    except StoreError as exc:
        if exc.kind == "full":              # the instance limits (emulator/lwm2m/store.py)
            raise AtError(MEMORY_FULL) from None
        raise AtError(OPERATION_NOT_ALLOWED) from None


newinst.read(_ok)

# ---------------------------------------------------------------------------- FOTA
fotacfg = _cmd("#LWM2MFOTACFG", Int("agentInstance", (0, 4), default=0), Int("mode", (0, 3), default=0),
               needs_sim=True, keeps=lambda ctx: (None, ctx.modem.agent.host_settings.fota_mode_set))


@fotacfg.set
def _(ctx, agent_id, mode):
    agent = agent_of(ctx)
    if agent_id != 0:
        raise AtError(OPERATION_NOT_SUPPORTED)
    agent.host_settings.set_fota_mode(mode)


fotacfg.read(_ok)

fotaack = _cmd("#LWM2MFOTAACK", Int("agentInstance", (0, 4), default=0), Int("action", (1, 1), default=1),
               needs_sim=True)


@fotaack.set
def _(ctx, agent_id, action):
    agent = agent_of(ctx)
    pending = agent.fota.pending if agent.fota is not None else None
    if agent_id != 0 or pending is None or pending.done():
        raise AtError(OPERATION_NOT_ALLOWED)
    pending.set_result(None)


fotaack.read(_unsupported)

# ---------------------------------------------------------------------------- #LWM2MINJKEYS
injkeys = _cmd("#LWM2MINJKEYS", Int("agentInstance", (0, 4), default=0), Int("mode", (0, 3), optional=False),
               Str("epName", max_len=64), Str("identity", max_len=64), Str("secretKey", max_len=64),
               needs_sim=True, test_answer=None)


@injkeys.set
def _(ctx, agent_id, mode, ep, identity, key):
    agent = agent_of(ctx)
    if agent_id != 0:
        raise AtError(OPERATION_NOT_SUPPORTED)
    keys = agent.host_settings.keys
    if mode == 0:
        keys = EndpointKeys()
    elif mode == 1:
        if (identity is None) != (key is None):
            raise AtError(OPERATION_NOT_SUPPORTED)
        if ep is None and identity is None:
            raise AtError(OPERATION_NOT_SUPPORTED)
        if ep is not None:
            keys = replace(keys, ep=ep)
        if identity is not None:
            keys = replace(keys, identity=identity, key=key)
    elif mode == 2:
        keys = replace(keys, ep=None)
    else:
        keys = replace(keys, identity=None, key=None)
    agent.host_settings.save_keys(keys)


injkeys.read(_ok)
injkeys.test(_ok)

# ---------------------------------------------------------------------------- notify-ack lists
nfyuri = _cmd("#LWM2MNFYACKURI", Int("agentInstanceID", (0, 4), default=0),
              Int("operation", (0, 2), optional=False), Int("objectID", ID), Int("objectInstanceID", ID),
              Int("resourceID", ID), needs_sim=True)


@nfyuri.set
def _(ctx, agent_id, op, oid, iid, rid):
    agent = agent_of(ctx)
    if agent_id != 0:
        raise AtError(OPERATION_NOT_SUPPORTED)
    if op == 2:
        if oid is not None:
            raise AtError(OPERATION_NOT_SUPPORTED)
        return [f'#LWM2MNFYACKURI: "/{o}/{i}/{r}"' for o, i, r in agent.nfy_uris]
    if None in (oid, iid, rid):
        raise AtError(OPERATION_NOT_SUPPORTED)
    uri = (oid, iid, rid)
    if op == 1:
        if uri in agent.nfy_uris:
            return
        if len(agent.nfy_uris) >= LIST_LIMIT:
            raise AtError(OPERATION_NOT_ALLOWED)
        agent.nfy_uris.append(uri)
    else:
        if uri not in agent.nfy_uris:
            raise AtError(OPERATION_NOT_ALLOWED)
        agent.nfy_uris.remove(uri)


nfyuri.read(_ok)

nfyena = _cmd("#LWM2MNFYACKENA", Int("agentInstanceID", (0, 4), optional=False),
              Int("action", (0, 2), optional=False), needs_sim=True)


@nfyena.set
def _(ctx, agent_id, action):
    agent = agent_of(ctx)
    if agent_id != 0:
        raise AtError(OPERATION_NOT_SUPPORTED)
    if action == 2:
        return f"LWM2MNFYACKENA: {agent_id},{int(agent.nfy_enabled)}"
    agent.nfy_enabled = action == 1


nfyena.read(_ok)

# ---------------------------------------------------------------------------- #LWM2MEXIST
exist = _cmd("#LWM2MEXIST", Raw("agentInstance", default=0), Raw("objectNumber"),
             Raw("objectInstanceNumber"), Raw("resourceNumber"), Raw("resourceInstanceNumber"), needs_sim=True,
             test_answer="#LWM2MEXIST: (0-2),(0-65535),(0-65535),(0-65535),(0-65535)")


@exist.set
def _(ctx, *raw):
    agent = agent_of(ctx)
    values = []
    seen_gap = False
    for p in raw:
        if isinstance(p, int):                  # the table's default (agentInstance 0)
            values.append(p)
            continue
        if p is None:
            seen_gap = True
            values.append(None)
            continue
        if seen_gap or p.quoted or not re.fullmatch(r"[0-9]{1,6}", p.text) or int(p.text) > 65535:
            raise AtError("Invalid args")
        values.append(int(p.text))
    agent_id, *uri = values
    if agent_id != 0:
        raise AtError("Invalid agent")
    uri = [u for u in uri if u is not None]
    if not agent.store.exists(*uri) if uri else False:
        raise AtError("Invalid URI")


exist.read(_ok)
