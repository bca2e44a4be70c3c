"""Common configuration commands host init code sends before any LwM2M work: each keeps its values
(saved automatically) and reads them back. Declared as data: name, parameters, factory values."""
from __future__ import annotations

from ..at.registry import Family, Int, Str
from ..modem.settings import WS46_FACTORY, held, hold

family = Family()

# name: (parameters, factory values, read-line format); the read answer is "<name>: <values>"
SETTINGS = {
    "#SELINT": ((Int("interface", (0, 2), optional=False),), (2,)),
    "+WS46": ((Int("n", [(12, 12), (22, 22), (25, 25), (28, 31)], optional=False),), (28,)),
    "#WS46": ((Int("mode", (0, 2), optional=False),), WS46_FACTORY),     # 0 Cat-M1, 1 NB-IoT, 2 both
    "#QSS": ((Int("mode", (0, 2), optional=False),), (0,)),
    "#SIMDET": ((Int("mode", (0, 2), optional=False),), (2,)),
    "+CSCS": ((Str("chset", optional=False, choices=("GSM", "IRA", "8859-1", "PCCP437", "UCS2")),), ("IRA",)),
    "+CGEREP": ((Int("mode", (0, 2), default=0), Int("bfr", (0, 1), default=0)), (0, 0)),
    "+CTZU": ((Int("onoff", (0, 1), optional=False),), (0,)),
    "+CTZR": ((Int("reporting", (0, 3), optional=False),), (0,)),
    "#NITZ": ((Int("val", (0, 15), optional=False), Int("mode", (0, 1), default=0)), (1, 0)),
    "+CMGF": ((Int("mode", (0, 1), optional=False),), (0,)),
    "#PSNT": ((Int("mode", (0, 1), optional=False),), (0,)),
    "#SLED": ((Int("mode", (0, 5), optional=False), Int("on", (1, 100), default=10),
               Int("off", (1, 100), default=10)), (2, 10, 10)),
    "+CGEQOS": ((Int("cid", (1, 6)), Int("qci", (0, 9), default=0)), (1, 0)),
}


def current(modem, name: str) -> list:
    """The values a setting command holds now (its factory values until the host set it)."""
    return held(modem.nvm, name, SETTINGS[name][1])


def _declare(name: str, args, factory):
    def values(ctx):
        return current(ctx.modem, name)

    # parameter-type commands: an omitted sub-parameter keeps the value held now (guide 2.2)
    spec = family.command(name, *args, keeps=values)

    @spec.set
    def _(ctx, *given):
        hold(ctx.modem.nvm, name, list(given))

    @spec.read
    def _(ctx):
        shown = [f'"{v}"' if isinstance(v, str) else str(v) for v in values(ctx)]
        if name == "#QSS":                         # mode, then whether a SIM is inserted
            shown.append(str(int(ctx.modem.sim.present)))
        if name == "#SIMDET":
            shown.append(str(int(ctx.modem.sim.present)))
        if name == "#PSNT":                        # mode, then the network type (4: LTE)
            shown.append("4" if ctx.modem.network.registered else "5")
        return f"{name}: {','.join(shown)}"


for _name, (_args, _factory) in SETTINGS.items():
    _declare(_name, _args, _factory)
