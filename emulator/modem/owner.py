"""What a module's parts (SIM, network, PDP, power supply, GNSS receiver, AT engine, LwM2M agent) see
of the :class:`~emulator.modem.core.Modem` that owns them.

``Modem`` builds its parts, so the parts may not import ``modem.core`` (that would be an import
cycle): they are typed against this protocol, which ``Modem`` satisfies. Attributes whose classes
live in modules that themselves import the owner are typed ``Any`` here.
"""
from __future__ import annotations

from typing import Any, Protocol

from ..clock import Clock
from .events import EventBus
from .fs import FileSystem
from .nvm import NVM
from .profile import Profile
from .settings import Settings


class ModemOwner(Protocol):
    """The owning modem as its parts use it (see :class:`emulator.modem.core.Modem` for each field)."""

    clock: Clock            # the modem's one clock (real, scaled or stepped)
    events: EventBus        # synchronous event bus of the module's parts
    nvm: NVM                # non-volatile memory
    fs: FileSystem          # /XML/ file system
    profile: Profile        # module profile (identity, SIM, network, LwM2M defaults)
    settings: Settings      # current AT profile settings
    powered: bool
    fun: int                # +CFUN level
    port: Any               # emulator.port.Port
    sim: Any                # emulator.modem.radio.Sim
    network: Any            # emulator.modem.radio.Network
    pdp: Any                # emulator.modem.radio.Pdp
    power: Any              # emulator.modem.power.PowerSupply
    gnss: Any               # emulator.modem.gnss.GnssReceiver
    engine: Any             # emulator.at.engine.Engine
    agent: Any              # emulator.lwm2m.agent.Agent
    link: Any               # emulator.modem.link.Link (the module's data path)

    @property
    def timezone(self) -> Any: ...          # emulator.modem.timezone.TimeZone (+CCLK, /3/0/14)

    def set_timezone(self, quarters: int) -> None: ...

    @property
    def firmware_revision(self) -> str: ...     # the running firmware revision (+CGMR, /3/0/3)

    def install_firmware(self, revision: str) -> None: ...

    def urc(self, text: str) -> None: ...

    def reboot(self) -> None: ...
