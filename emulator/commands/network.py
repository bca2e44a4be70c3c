"""Network registration and radio: +CREG +CGREG +CEREG (URCs), +CSQ +CESQ +COPS +WS46 #WS46."""
from __future__ import annotations

from ..at.errors import AtError
from ..at.registry import Family, Int, Str

family = Family()

REG_CMDS = ("+CREG", "+CGREG", "+CEREG")


def _reg_fields(modem, name: str, n: int) -> str:
    net = modem.network
    cfg = net.cfg
    out = f"{net.stat}"
    if n == 2 and net.registered:
        area = cfg["tac"] if name == "+CEREG" else cfg["lac"]
        out += f',"{area}","{cfg["ci"]}",{net.act}'
    return out


def _declare_reg(name: str):
    spec = family.command(name, Int("n", (0, 2), default=0))

    @spec.set
    def _(ctx, n):
        ctx.modem.settings.set(name, n)

    @spec.read
    def _(ctx):
        n = ctx.modem.settings.get(name)
        return f"{name}: {n},{_reg_fields(ctx.modem, name, n)}"


for _n in REG_CMDS:
    _declare_reg(_n)


@family.on_attach
def _registration_urcs(modem):
    def on_registration(stat):
        for name in REG_CMDS:
            n = modem.settings.get(name)
            if n:
                modem.urc(f"{name}: {_reg_fields(modem, name, n)}")
    modem.events.subscribe("registration", on_registration)


csq = family.command("+CSQ", test_answer="+CSQ: (0-31,99),(0-7,99)")


@csq.exec
def _(ctx):
    m = ctx.modem
    m.sim.require_ready()
    rssi = m.profile["network"]["rssi"] if m.network.registered else 99
    return f"+CSQ: {rssi},99"


cesq = family.command("+CESQ", test_answer="+CESQ: (0-63,99),(0-7,99),(0-96,255),(0-49,255),(0-34,255),(0-97,255)")


@cesq.exec
def _(ctx):
    m = ctx.modem
    m.sim.require_ready()
    cfg = m.profile["network"]
    if m.network.registered:
        return f"+CESQ: 99,99,255,255,{cfg['rsrq']},{cfg['rsrp']}"
    return "+CESQ: 99,99,255,255,255,255"


cops = family.command("+COPS", Int("mode", [(0, 1), (3, 4)], default=0), Int("format", (0, 2), default=0),
                      Str("oper", max_len=24), Int("act", (0, 9)), needs_sim=True)


@cops.set
def _(ctx, mode, fmt, oper, act):
    nvm = ctx.modem.nvm
    if mode == 3:
        nvm.set("cops_format", fmt)
        return
    if mode in (1, 4) and oper is None:
        raise AtError(4)
    if mode == 1 and oper not in _names(ctx.modem):
        raise AtError(32 if ctx.modem.network.registered else 30)
    nvm.update(cops_mode=0 if mode == 4 else mode, cops_format=fmt)


def _names(modem) -> tuple[str, str, str]:
    cfg = modem.profile["network"]
    return cfg["operator"], cfg["operator"][:16].replace(" ", ""), cfg["plmn"]


@cops.read
def _(ctx):
    m = ctx.modem
    mode = m.nvm.get("cops_mode", 0)
    if not m.network.registered:
        return f"+COPS: {mode}"
    fmt = m.nvm.get("cops_format", 0)
    return f'+COPS: {mode},{fmt},"{_names(m)[fmt]}",{m.network.act}'


@cops.test
def _(ctx):
    m = ctx.modem
    long_, short, num = _names(m)
    return f'+COPS: (2,"{long_}","{short}","{num}",{m.network.act}),,(0-4),(0-2)'
