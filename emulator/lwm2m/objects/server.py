"""LwM2M Server (/1, LwM2M 1.0.2 E.2): one instance per server account (made by the agent or by
Bootstrap-Write). Lifetime (/1/x/1) and binding (/1/x/7) writes are checked, then sent in an Update
of that server's registration; Execute /1/x/8 sends an Update, /1/x/4 suspends the registration for
/1/x/5 seconds."""
from __future__ import annotations

import asyncio
from typing import Any

from aiocoap import numbers

from ..store import StoreError
from .base import NOT_HANDLED, LwM2MObject, register

C = numbers.codes.Code
#: the binding modes of LwM2M 1.0 (5.3.1.1)
BINDINGS = ("U", "UQ", "S", "SQ", "US", "UQS")
#: values of a new account's /1 instance besides SSID and lifetime: disable timeout 86400 s, store
#: notifications while offline, binding U
DEFAULTS = {5: 86400, 6: True, 7: "U"}


@register
class Server(LwM2MObject):
    oid = 1
    host_access = False
    dm_create = False
    dm_delete = False

    def binding_supported(self, binding: str) -> bool:
        """A 1.0 binding mode whose transports (and queue mode) /3/0/16 says the device supports."""
        try:
            supported = str(self.agent.store.get(3, 0, 16))
        except StoreError:
            supported = "U"
        if binding not in BINDINGS:
            return False
        return set(binding) - {"Q"} <= set(supported) - {"Q"} and ("Q" not in binding or "Q" in supported)

    def check_write(self, path: tuple, value: Any) -> Any:
        """4.00 for a binding /3/0/16 does not list, or a lifetime that is not an integer >= 1 s."""
        rid = path[2]
        if rid == 7 and not self.binding_supported(str(value)):
            return C.BAD_REQUEST
        if rid == 1 and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return C.BAD_REQUEST
        return None

    def write(self, path: tuple, value: Any) -> Any:
        _, iid, rid = path
        self.agent.store.set(1, iid, rid, value, source="server")
        if rid in (1, 7):                       # what the registration says changed: Update now
            reg = self.agent.registration_for(iid)
            if reg is not None and reg.registered:
                reg.request_update()
        return None

    def execute(self, path: tuple, args: str) -> Any:
        _, iid, rid = path
        reg = self.agent.registration_for(iid)
        if rid == 8:
            if reg is not None and reg.registered:
                reg.request_update(links=True)
        elif rid == 4 and reg is not None:
            if reg.task and not reg.task.done():
                reg.task.cancel()
            reg.task = asyncio.ensure_future(self.agent.suspend(reg))
        return NOT_HANDLED
