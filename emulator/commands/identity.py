"""Identity and SIM: +CGMI +CGMM +CGMR #CGMR +CGSN +CIMI #CCID +ICCID +CPIN +CCLK."""
from __future__ import annotations

import time

from ..at.errors import OPERATION_NOT_ALLOWED, OPERATION_NOT_SUPPORTED, AtError
from ..at.registry import Family, Str

family = Family()


def _ident(key: str):
    return lambda ctx: ctx.modem.profile["identity"][key]


def _plain(name: str, value, aliases=()):
    spec = family.command(name, aliases=aliases)
    spec.exec(value)
    spec.test(lambda ctx: None)
    return spec


_plain("+CGMI", _ident("manufacturer"), aliases=("+GMI",))
_plain("+CGMM", _ident("model"), aliases=("+GMM",))


def _revision(ctx):
    return ctx.modem.firmware_revision


_plain("+CGMR", _revision, aliases=("+GMR",))
_plain("#CGMR", lambda ctx: f"#CGMR: {_revision(ctx)}")
_plain("#SWPKGV", lambda ctx: [f"{ctx.modem.profile['identity']['software']}", _revision(ctx)])
_plain("+CGSN", _ident("imei"), aliases=("+GSN",))


def _sim_value(fmt):
    def handler(ctx):
        ctx.modem.sim.require_ready()
        return fmt(ctx.modem.sim)
    return handler


_plain("+CIMI", _sim_value(lambda s: s.imsi))


def _iccid(prefix):
    def handler(ctx):
        sim = ctx.modem.sim
        if not sim.present:
            sim.require_ready()
        return f"{prefix}: {sim.iccid}"
    return handler


_plain("#CCID", _iccid("#CCID"))
_plain("+ICCID", _iccid("+ICCID"))

cpin = family.command("+CPIN", Str("pin", max_len=8), Str("newpin", max_len=8), test_answer="")


@cpin.read
def _(ctx):
    sim = ctx.modem.sim
    if not sim.present:
        sim.require_ready()
    if sim.unlocked:
        return "+CPIN: READY"
    return "+CPIN: SIM PUK" if sim.attempts <= 0 else "+CPIN: SIM PIN"


@cpin.set
def _(ctx, pin, newpin):
    sim = ctx.modem.sim
    if not sim.present:
        sim.require_ready()
    if pin is None:
        raise AtError(OPERATION_NOT_SUPPORTED)
    if sim.unlocked:
        raise AtError(OPERATION_NOT_ALLOWED)
    if sim.attempts <= 0:          # PUK + new PIN
        if pin != sim.puk or not newpin:
            raise AtError(16)
        sim.pin, sim.attempts, sim.unlocked = newpin, 3, True
    elif pin != sim.pin:
        sim.attempts -= 1
        raise AtError(16)
    else:
        sim.attempts, sim.unlocked = 3, True
    ctx.modem.network.reevaluate()


cclk = family.command("+CCLK", Str("time", quoted=True, max_len=20), test_answer="")


def _tz_quarters(ctx) -> int:
    return ctx.modem.timezone.quarters


@cclk.read
def _(ctx):
    q = _tz_quarters(ctx)
    t = time.gmtime(ctx.modem.clock.wall() + q * 900)
    return f'+CCLK: "{time.strftime("%y/%m/%d,%H:%M:%S", t)}{q:+03d}"'


@cclk.set
def _(ctx, text):
    import calendar
    import re
    m = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)([+-]\d\d?)?", text or "")
    if not m:
        raise AtError(OPERATION_NOT_SUPPORTED)
    yy, mo, dd, hh, mi, ss = (int(x) for x in m.groups()[:6])
    q = int(m.group(7) or 0)
    if not (1 <= mo <= 12 and 1 <= dd <= 31 and hh < 24 and mi < 60 and ss < 60 and -48 <= q <= 56):
        raise AtError(OPERATION_NOT_SUPPORTED)
    try:
        local = calendar.timegm((2000 + yy, mo, dd, hh, mi, ss, 0, 0, 0))
    except (ValueError, OverflowError):
        raise AtError(OPERATION_NOT_SUPPORTED) from None
    ctx.modem.clock.set_wall(local - q * 900)
    ctx.modem.set_timezone(q)
