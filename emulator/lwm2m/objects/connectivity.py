"""Connectivity Monitoring (/4, LwM2M 1.0.2 E.5): bearer, signal strength (live: -140 dBm without
network), the data context's IP address (live), cell id and PLMN from the module profile."""
from __future__ import annotations

from typing import Any

from .base import LwM2MObject, register


@register
class ConnectivityMonitoring(LwM2MObject):
    oid = 4

    def populate(self, store: Any) -> None:
        if 4 not in store.models:
            return
        m = self.agent.modem
        net = m.profile["network"]
        rssi_dbm = -(113 - 2 * int(net["rssi"]))
        store.create_instance(4, 0, {0: 6, 1: {0: 6}, 2: rssi_dbm, 3: 0, 4: {0: ""}, 7: {0: ""},
                                     8: int(net["ci"], 16), 9: int(net["plmn"][3:]), 10: int(net["plmn"][:3])})
        store.live[(4, 0, 4)] = lambda: {0: self.ip_address()}
        # the signal is read live: a scenario's network.signal changes it while registered
        store.live[(4, 0, 2)] = lambda: -(113 - 2 * int(m.profile["network"]["rssi"])) \
            if m.network.registered else -140

    def ip_address(self) -> str:
        """The address of the agent's data context (#LWM2MENA <pdpId>), "" when it is not active."""
        ctx = self.agent.modem.pdp.contexts.get(self.agent.params.pdp_id)
        return ctx.address if ctx and ctx.active else ""
