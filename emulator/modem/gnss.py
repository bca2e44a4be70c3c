"""The module's GNSS receiver: on when the host powered it ($GPSP=1) or when the LwM2M server enabled
it through /33211/0/0/0; its fix comes from the module profile ([gnss])."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .owner import ModemOwner


class GnssReceiver:
    """``host_power``: what $GPSP last set (kept across reboots, as before). ``running``: the receiver
    delivers fixes now (host power, or /33211/0/0/0 = 1 in the agent's store)."""

    def __init__(self, modem: "ModemOwner"):
        self.modem = modem
        self.host_power = False

    @property
    def running(self) -> bool:
        if self.host_power:
            return True
        store = self.modem.agent.store
        try:
            return bool(store is not None and store.get(33211, 0, 0, 0) == 1)
        except Exception:         # no /33211 model or instance: the server cannot have enabled it
            return False
