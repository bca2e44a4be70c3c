"""Supply-side commands host programs use to fill the Device object (/3/0/7 voltage, /3/0/9 level):
#CBC (battery and charger state) and #ADC (analog inputs). Not in the LwM2M guide: syntax and answers
follow Telit's public AT command reference for the xE910 / ME910C1 family (hardware control section);
the values are the modem's PowerSupply state (emulator/modem/power.py, from the profile's [battery]
and [adc])."""
from __future__ import annotations

from ..at.registry import Family, Int

family = Family()


# ---------------------------------------------------------------------------- #CBC
# AT#CBC -> #CBC: <ChargerState>,<BatteryVoltage>; ChargerState 0 no charger, 1 charging, 2 charge
# completed; BatteryVoltage in units of 10 mV. AT#CBC=? -> OK. The read form runs the command (guide
# 2.2: the Read command of an action command causes it to be executed): an emulator choice.
cbc = family.command("#CBC")
cbc.test(lambda ctx: None)


def _cbc(ctx):
    p = ctx.modem.power
    return f"#CBC: {p.charger},{max(0, p.voltage_mv) // 10}"


cbc.exec(_cbc)
cbc.read(_cbc)


# ---------------------------------------------------------------------------- #ADC
# AT#ADC=<adc>,<mode>[,<dir>] -> #ADC: <value> (mV on input <adc>; <mode> 2 = read; <dir> 0, no effect);
# AT#ADC? lists every input, one "#ADC: <value>" line each; AT#ADC (no parameters) answers the same
# (Telit's own Python samples send it); AT#ADC=? gives the ranges.
def _inputs(ctx) -> list[int]:
    return sorted(ctx.modem.power.adc)


adc = family.command("#ADC", Int("adc", (1, 65535), optional=False), Int("mode", (2, 2), optional=False),
                     Int("dir", (0, 0), default=0),
                     test_answer=lambda ctx: f"#ADC: ({','.join(str(i) for i in _inputs(ctx))}),(2),(0)")


@adc.set
def _(ctx, index, mode, direction):
    power = ctx.modem.power
    if index not in power.adc:
        from ..at.errors import OPERATION_NOT_SUPPORTED, AtError
        raise AtError(OPERATION_NOT_SUPPORTED)
    return f"#ADC: {power.adc[index]}"


def _all(ctx):
    power = ctx.modem.power
    return [f"#ADC: {power.adc[i]}" for i in _inputs(ctx)]


adc.read(_all)
adc.exec(_all)
