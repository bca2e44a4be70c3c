"""The module's supply side: battery, charger and ADC inputs, as state that commands read (#CBC, #ADC,
the Device object's /3/0/7, /3/0/9, /3/0/20) and that scenarios change through the setters.

Values start from the module profile's [battery] and [adc] sections; every change is announced on the
modem's event bus as "power" (what=battery|adc) so that observers of the LwM2M resources notify.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .owner import ModemOwner

# #CBC <ChargerState> (Telit AT reference, HW control): charger not connected / charging / charge done
CHARGER_NONE, CHARGER_CHARGING, CHARGER_DONE = 0, 1, 2


class PowerSupply:
    """Battery voltage (mV), battery level (%), charger state and the ADC inputs' voltages (mV)."""

    def __init__(self, modem: "ModemOwner", battery: dict, adc: dict):
        self.modem = modem
        self.voltage_mv = int(battery["voltage_mv"])
        self.level = int(battery["level"])
        self.charger = int(battery["charger"])
        self.adc: dict[int, int] = {int(k): int(v) for k, v in dict(adc["inputs"]).items()}
        if not self.adc or not (0 <= self.level <= 100) or self.charger not in (0, 1, 2):
            raise ValueError("profile: [battery] level 0-100, charger 0-2, [adc] inputs at least one")

    def set_battery(self, *, voltage_mv: int | None = None, level: int | None = None,
                    charger: int | None = None) -> None:
        """Scenario hook: the battery's voltage (mV), level (0-100 %) and charger state (0, 1, 2)."""
        if level is not None and not 0 <= int(level) <= 100:
            raise ValueError("battery level is 0-100 %")
        if charger is not None and int(charger) not in (0, 1, 2):
            raise ValueError("charger state is 0, 1 or 2")
        if voltage_mv is not None:
            self.voltage_mv = int(voltage_mv)
        if level is not None:
            self.level = int(level)
        if charger is not None:
            self.charger = int(charger)
        self.modem.events.emit("power", what="battery")

    def set_adc(self, index: int, millivolts: int) -> None:
        """Scenario hook: the voltage (mV) on ADC input ``index`` (1-based, as #ADC numbers them)."""
        if index not in self.adc:
            raise ValueError(f"no ADC input {index}")
        self.adc[index] = int(millivolts)
        self.modem.events.emit("power", what="adc")

    @property
    def battery_status(self) -> int:
        """LwM2M /3/0/20 Battery Status: 0 normal, 1 charging, 2 charge complete."""
        return {CHARGER_NONE: 0, CHARGER_CHARGING: 1, CHARGER_DONE: 2}[self.charger]
