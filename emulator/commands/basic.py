"""V.25ter basic commands and profile handling: E V Q X I Z &F &W &V &Y &P &K &D &C Sn +CMEE +IPR #REBOOT +CFUN."""
from __future__ import annotations

from ..at.errors import OPERATION_NOT_SUPPORTED, AtError
from ..at.registry import Family, Int
from ..modem.settings import DECLARED

family = Family()


def _flag(name: str, ranges, default: int = 0):
    spec = family.command(name, Int("n", ranges, default=default))

    @spec.set
    def _(ctx, n):
        ctx.modem.settings.set(name, n)
    return spec


for _name, _ranges in (("E", (0, 1)), ("V", (0, 1)), ("Q", (0, 1)), ("X", (0, 4)),
                       ("&C", (0, 2)), ("&D", (0, 3)), ("&K", [(0, 0), (3, 6)])):
    _flag(_name, _ranges)

# S-registers: value ranges
SREGS = {"S0": (0, 255), "S2": (0, 255), "S3": (0, 127), "S4": (0, 127), "S5": (0, 127), "S7": (1, 255),
         "S10": (1, 255), "S12": (0, 255), "S25": (0, 255), "S30": (0, 255), "S38": (0, 255)}


def _sreg(name: str, rng):
    spec = family.command(name, Int("value", rng, default=0))

    @spec.set
    def _(ctx, value):
        ctx.modem.settings.set(name, value)

    @spec.read
    def _(ctx):
        return f"{ctx.modem.settings.get(name):03d}"


for _name, _rng in SREGS.items():
    _sreg(_name, _rng)

# ATI[n]
ati = family.command("I", Int("n", (0, 9), default=0))


@ati.set
def _(ctx, n):
    return ctx.modem.profile.ati(n)


# ATZ[n]: load a user profile
z = family.command("Z", Int("n", (0, 1), default=0))


@z.set
def _(ctx, n):
    ctx.modem.load_profile(n)


amp_f = family.command("&F", Int("n", (0, 1), default=0))


@amp_f.set
def _(ctx, n):
    ctx.modem.factory_settings(full=(n == 1))


amp_w = family.command("&W", Int("n", (0, 1), default=0))


@amp_w.set
def _(ctx, n):
    ctx.modem.save_profile(n)


amp_y = family.command("&Y", Int("n", (0, 1), default=0))


@amp_y.set
def _(ctx, n):
    ctx.modem.set_startup(n, full=False)


amp_p = family.command("&P", Int("n", (0, 1), default=0))


@amp_p.set
def _(ctx, n):
    ctx.modem.set_startup(n, full=True)


_LABELS = [("E", "COMMAND ECHO"), ("Q", "RESULT MESSAGES"), ("V", "VERBOSE MESSAGES"),
           ("X", "EXTENDED MESSAGES"), ("&K", "FLOW CONTROL OPTIONS"), ("&C", "DCD OPTION"),
           ("&D", "DTR OPTION"), ("S0", "AUTOMATIC ANSWER"), ("S3", "CR CHARACTER"),
           ("S4", "LF CHARACTER"), ("S5", "BACKSPACE CHARACTER"), ("S12", "ESCAPE PROMPT DELAY"),
           ("+IPR", "BAUD RATE")]

amp_v = family.command("&V")


@amp_v.exec
def _(ctx):
    s = ctx.modem.settings
    lines = []
    for key, label in _LABELS:
        v = s.get(key)
        shown = f"{key}{v}" if not key.startswith(("S", "+")) else (f"{key}={v:03d}" if key.startswith("S") else f"{v}")
        lines.append(f"{label:<24}: {shown}")
    return lines


cmee = family.command("+CMEE", Int("n", (0, 2), default=0))


@cmee.set
def _(ctx, n):
    ctx.modem.settings.set("+CMEE", n)


@cmee.read
def _(ctx):
    return f"+CMEE: {ctx.modem.settings.get('+CMEE')}"


RATES = (0, 300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600,
         3200000)
ipr = family.command("+IPR", Int("rate", [(r, r) for r in RATES], default=115200),
                     test_answer=lambda ctx: f"+IPR: ({','.join(map(str, RATES))})")


@ipr.set
def _(ctx, rate):
    ctx.modem.settings.set("+IPR", rate)


@ipr.read
def _(ctx):
    return f"+IPR: {ctx.modem.settings.get('+IPR')}"


cfun = family.command("+CFUN", Int("fun", [(0, 1), (4, 5)], default=1), Int("rst", (0, 1), default=0))


@cfun.set
def _(ctx, fun, rst):
    if fun == 5:
        fun = 1
    if rst == 1:
        if fun != 1:
            raise AtError(OPERATION_NOT_SUPPORTED)
        ctx.after_final(ctx.modem.reboot)
        return
    ctx.modem.set_fun(fun)


@cfun.read
def _(ctx):
    return f"+CFUN: {ctx.modem.fun}"


reboot = family.command("#REBOOT")


@reboot.exec
def _(ctx):
    # the OK goes out first, then the module restarts: nothing typed after it sees the old state
    ctx.after_final(ctx.modem.reboot)


assert all(k in DECLARED for k in SREGS)
