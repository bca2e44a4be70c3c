"""Location (/6, LwM2M 1.0.2 E.7) and the GNSS control object (/33211, Telit): the location follows
the module's GNSS fix (profile ``[gnss]``) while the receiver runs ($GPSP=1, or /33211/0/0/0 = 1 from
the server), zeros otherwise."""
from __future__ import annotations

from typing import Any

from .base import LwM2MObject, register


@register
class Location(LwM2MObject):
    oid = 6

    def populate(self, store: Any) -> None:
        if 6 not in store.models:
            return
        m = self.agent.modem
        g = m.profile["gnss"]
        store.create_instance(6, 0, {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 5: 0})
        for rid, key in ((0, "latitude"), (1, "longitude"), (2, "altitude"), (3, "radius")):
            store.live[(6, 0, rid)] = lambda key=key: float(g[key]) if m.gnss.running else 0.0
        store.live[(6, 0, 5)] = lambda: int(m.clock.wall()) if m.gnss.running else 0


@register
class GnssControl(LwM2MObject):
    """/33211/0/0/{0,1}: the server switches the GNSS receiver on with /33211/0/0/0 = 1."""

    oid = 33211

    def populate(self, store: Any) -> None:
        if 33211 in store.models:
            store.create_instance(33211, 0, {0: {0: 0, 1: 0}})
