"""PDP contexts: +CGDCONT +CGACT +CGATT +CGPADDR #SGACT."""
from __future__ import annotations

from ..at.errors import OPERATION_NOT_ALLOWED, OPERATION_NOT_SUPPORTED, AtError
from ..at.registry import Family, Int, Str

family = Family()

PDP_TYPES = ("IP", "IPV6", "IPV4V6")
NO_NETWORK = 30
ALREADY_ACTIVE = 553

cgdcont = family.command(
    "+CGDCONT", Int("cid", (1, 6), optional=False), Str("pdp_type", max_len=8), Str("apn", max_len=100),
    Str("pdp_addr", max_len=40), Int("d_comp", (0, 0), default=0), Int("h_comp", (0, 0), default=0),
    needs_sim=False,
    test_answer=lambda ctx: [f'+CGDCONT: (1-6),"{t}",,,(0),(0)' for t in PDP_TYPES])


@cgdcont.set
def _(ctx, cid, pdp_type, apn, addr, d_comp, h_comp):
    pdp = ctx.modem.pdp
    if pdp_type is None and apn is None:
        if pdp.in_use(cid):            # active, or held by the LwM2M agent (even before activation)
            raise AtError(OPERATION_NOT_ALLOWED)
        pdp.undefine(cid)
        return
    if any(user(cid) for user in pdp.users):
        raise AtError(OPERATION_NOT_ALLOWED)     # the agent's context is not redefined under it
    pdp_type = (pdp_type or "IP").upper()
    if pdp_type not in PDP_TYPES:
        raise AtError(OPERATION_NOT_SUPPORTED)
    pdp.define(cid, pdp_type, apn or "")


@cgdcont.read
def _(ctx):
    return [f'+CGDCONT: {c.cid},"{c.pdp_type}","{c.apn}","",0,0'
            for c in sorted(ctx.modem.pdp.contexts.values(), key=lambda c: c.cid)]


def _activate(ctx, cid):
    m = ctx.modem
    m.sim.require_ready()
    if cid not in m.pdp.contexts:
        raise AtError(OPERATION_NOT_ALLOWED)
    if not m.network.registered:
        raise AtError(NO_NETWORK)
    return m.pdp.activate(cid)


cgact = family.command("+CGACT", Int("state", (0, 1), optional=False), Int("cid", (1, 6)), needs_sim=True)


@cgact.set
def _(ctx, state, cid):
    cids = [cid] if cid is not None else sorted(ctx.modem.pdp.contexts)
    for c in cids:
        if state:
            _activate(ctx, c)
        else:
            ctx.modem.pdp.deactivate(c)


@cgact.read
def _(ctx):
    return [f"+CGACT: {c},{int(ctx.modem.pdp.is_active(c))}" for c in sorted(ctx.modem.pdp.contexts)]


cgatt = family.command("+CGATT", Int("state", (0, 1), optional=False), needs_sim=True)


@cgatt.set
def _(ctx, state):
    m = ctx.modem
    if state == 0:
        m.pdp.drop_all()
        m.network.set_available(m.network.available)   # stays camped; contexts dropped
    elif not m.network.registered:
        raise AtError(NO_NETWORK)


@cgatt.read
def _(ctx):
    return f"+CGATT: {int(ctx.modem.network.registered)}"


cgpaddr = family.command("+CGPADDR", Int("cid", (1, 6)), needs_sim=True,
                         test_answer=lambda ctx: f"+CGPADDR: ({','.join(str(c) for c in sorted(ctx.modem.pdp.contexts))})")


def _addr_lines(ctx, cids):
    pdp = ctx.modem.pdp
    return [f'+CGPADDR: {c},"{pdp.contexts[c].address}"' if pdp.is_active(c) else f"+CGPADDR: {c}"
            for c in cids if c in pdp.contexts]


@cgpaddr.set
def _(ctx, cid):
    return _addr_lines(ctx, [cid] if cid is not None else sorted(ctx.modem.pdp.contexts))


@cgpaddr.exec
def _(ctx):
    return _addr_lines(ctx, sorted(ctx.modem.pdp.contexts))


sgact = family.command("#SGACT", Int("cid", (1, 6), optional=False), Int("stat", (0, 1), optional=False),
                       Str("user", max_len=64), Str("password", max_len=64), needs_sim=True,
                       test_answer="#SGACT: (1-6),(0,1)")


@sgact.set
def _(ctx, cid, stat, user, password):
    if stat == 0:
        ctx.modem.pdp.deactivate(cid)
        return
    if ctx.modem.pdp.is_active(cid):
        raise AtError(ALREADY_ACTIVE)
    return f"#SGACT: {_activate(ctx, cid).address}"


@sgact.read
def _(ctx):
    return [f"#SGACT: {c},{int(ctx.modem.pdp.is_active(c))}" for c in sorted(ctx.modem.pdp.contexts)]
