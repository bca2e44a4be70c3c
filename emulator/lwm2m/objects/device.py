"""LwM2M Device (/3, LwM2M 1.0.2 E.4): the module's identity from its profile; firmware version,
free memory, supply (until the host sets it), current time and UTC offset are live values. A write of
/3/0/13 or /3/0/14 sets the module's clock (+CCLK); Execute /3/0/4 reboots, /3/0/5 factory-resets the
LwM2M store and reboots (``#LWM2MINFO: "GEN","DEVICE REBOOT"``; the agent comes back by itself),
/3/0/12 resets the error codes."""
from __future__ import annotations

import re
from typing import Any

from aiocoap import numbers

from .. import events as ev
from ..errors import ValueRefused
from .base import NOT_HANDLED, LwM2MObject, register

C = numbers.codes.Code


@register
class Device(LwM2MObject):
    oid = 3
    dm_create = False
    dm_delete = False

    def populate(self, store: Any) -> None:
        agent, m = self.agent, self.agent.modem
        ident = m.profile["identity"]
        store.create_instance(3, 0, {
            0: ident["manufacturer"], 1: ident["model"], 2: ident["serial"],
            6: {0: 1}, 7: {0: 3800}, 8: {0: 100}, 9: 100, 10: 0, 11: {0: 0},
            15: "UTC", 16: str(agent.cfg.get("supported_binding", "U")), 17: "Cat-M1 module",
            19: ident.get("software", ""), 20: 0, 21: 4096,
        })
        store.live[(3, 0, 3)] = lambda: m.firmware_revision
        store.live[(3, 0, 13)] = lambda: int(m.clock.wall())
        store.live[(3, 0, 14)] = self.utc_offset
        store.live[(3, 0, 10)] = lambda: max(0, m.fs.free() // 1024)
        # the supply side follows the module's battery until the host sets the value (#LWM2MSET: host
        # control wins, guide 3.1.9; a host-set value is kept across restarts)
        store.live[(3, 0, 7)] = lambda: {0: m.power.voltage_mv}
        store.live[(3, 0, 9)] = lambda: m.power.level
        store.live[(3, 0, 20)] = lambda: m.power.battery_status

    # ------------------------------------------------------------------ the module's clock
    def utc_offset(self) -> str:
        """/3/0/14 as ``+HH:MM`` from the module's time zone (quarter hours, +CCLK)."""
        return self.agent.modem.timezone.utc_offset

    def clock_write(self, rid: int, value: Any) -> bool | None:
        """/3/0/13 (Unix seconds) or /3/0/14 (``+HH[:MM]``, whole quarter hours, at most 14 h) set the
        module's clock. True when set, False for a value that does not fit, None for other resources."""
        m = self.agent.modem
        if rid == 13:
            m.clock.set_wall(float(value))
        elif rid == 14:
            mt = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", str(value).strip())
            if not mt or int(mt.group(2)) > 14 or int(mt.group(3) or 0) % 15:
                return False
            q = (int(mt.group(2)) * 4 + int(mt.group(3) or 0) // 15) * (-1 if mt.group(1) == "-" else 1)
            m.set_timezone(q)
        else:
            return None
        self.agent.store._changed((3, 0, rid, 0), "server")
        return True

    def write(self, path: tuple, value: Any) -> Any:
        if path[1] == 0:
            done = self.clock_write(path[2], value)
            if done is not None:
                return None if done else C.BAD_REQUEST
        return NOT_HANDLED

    def host_write(self, path: tuple, value: Any) -> Any:
        if path[1] == 0 and path[2] in (13, 14):
            if not self.clock_write(path[2], value):
                raise ValueRefused(f"/3/0/{path[2]} cannot take {value!r}")
            return None
        return NOT_HANDLED

    def execute(self, path: tuple, args: str) -> Any:
        agent = self.agent
        rid = path[2]
        if rid == 4:
            agent.emit(ev.Info("GEN", "DEVICE REBOOT"))
            agent.reboot_and_resume()
        elif rid == 5:
            agent.emit(ev.Info("GEN", "DEVICE REBOOT"))
            agent.store.forget_saved()
            agent.reboot_and_resume()
        elif rid == 12:
            agent.store.set(3, 0, 11, {0: 0}, source="module")
        return NOT_HANDLED
