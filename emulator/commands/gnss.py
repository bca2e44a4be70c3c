"""GNSS as host code drives it on these modules: $GPSCFG (priorities, TBF, constellation), $GPSP
(receiver power) and $GPSACP (the last fix). The receiver's fix comes from the module profile."""
from __future__ import annotations

import time

from ..at.errors import OPERATION_NOT_SUPPORTED, AtError
from ..at.registry import Family, Int

family = Family()

# $GPSCFG parameters: 0 startup priority (0 GNSS, 1 WWAN), 1 TBF, 2 constellation, 3 runtime priority
GPSCFG_RANGES = {0: (0, 1), 1: (1, 65535), 2: (0, 6), 3: (0, 1)}
GPSCFG_FACTORY = [1, 1000, 0, 1]


def gnss_on(modem) -> bool:
    """The receiver runs when the host powered it ($GPSP=1) or enabled it through /33211/0/0/0."""
    return modem.gnss.running


gpscfg = family.command("$GPSCFG", Int("parameter", (0, 3), optional=False), Int("value", (0, 65535), optional=False),
                        test_answer="$GPSCFG: (0-3),(0-65535)")


@gpscfg.set
def _(ctx, param, value):
    lo, hi = GPSCFG_RANGES[param]
    if not lo <= value <= hi:
        raise AtError(OPERATION_NOT_SUPPORTED)
    cfg = list(ctx.modem.nvm.get("gpscfg") or GPSCFG_FACTORY)
    cfg[param] = value
    ctx.modem.nvm.set("gpscfg", cfg)


@gpscfg.read
def _(ctx):
    return "$GPSCFG: " + ",".join(str(v) for v in (ctx.modem.nvm.get("gpscfg") or GPSCFG_FACTORY))


gpsp = family.command("$GPSP", Int("status", (0, 1), optional=False))


@gpsp.set
def _(ctx, status):
    ctx.modem.gnss.host_power = bool(status)


@gpsp.read
def _(ctx):
    return f"$GPSP: {int(ctx.modem.gnss.host_power)}"


def _coord(value: float, pos: str, neg: str, width: int) -> str:
    hemi = pos if value >= 0 else neg
    value = abs(value)
    deg = int(value)
    minutes = (value - deg) * 60
    return f"{deg:0{width}d}{minutes:07.4f}{hemi}"


gpsacp = family.command("$GPSACP")


@gpsacp.exec
def _(ctx):
    m = ctx.modem
    if not gnss_on(m):
        return "$GPSACP: ,,,,,1,,,,,,"
    g = m.profile["gnss"]
    t = time.gmtime(m.clock.wall())
    return (f"$GPSACP: {time.strftime('%H%M%S', t)}.000,{_coord(g['latitude'], 'N', 'S', 2)},"
            f"{_coord(g['longitude'], 'E', 'W', 3)},{g['hdop']:.1f},{g['altitude']:.1f},3,0.0,0.0,0.0,"
            f"{time.strftime('%d%m%y', t)},{int(g['satellites']):02d},00")
