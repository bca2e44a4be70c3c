"""One emulated module: it owns its port, clock, NVM, SIM/network, file system, engine and agent.

No module-level state: any number of Modems can live in one process (tests, fleets).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from ..at.engine import Engine
from ..at.parser import Parser
from ..at.registry import Registry
from ..clock import Clock, RealClock
from ..lwm2m.agent import Agent
from ..port import Port
from .events import EventBus
from .firmware import FirmwareRecord
from .fs import FileSystem
from .gnss import GnssReceiver
from .link import Link
from .nvm import NVM
from .power import PowerSupply
from .profile import Profile
from .radio import Network, Pdp, Sim
from .settings import BASE, EXT, Settings
from .timezone import TimeZone

log = logging.getLogger("emulator.modem")

_SHARED_PARSER: Parser | None = None


def shared_parser() -> Parser:
    """The Lark parser is immutable once built: modems of one process share it (fleets start fast)."""
    global _SHARED_PARSER
    if _SHARED_PARSER is None:
        _SHARED_PARSER = Parser()
    return _SHARED_PARSER


_SHARED_REGISTRY: Registry | None = None


def default_registry() -> Registry:
    """The built-in commands. Read-only once built (specs and their handlers are module-level
    declarations): modems of one process share it."""
    global _SHARED_REGISTRY
    if _SHARED_REGISTRY is None:
        from ..commands import all_families
        _SHARED_REGISTRY = Registry(all_families())
    return _SHARED_REGISTRY


class Modem:
    """One emulated module on ``port``, its NVM and file system under ``state_dir``.

    It owns its parts as typed attributes: ``engine`` (AT), ``sim`` / ``network`` / ``pdp`` (radio),
    ``agent`` (the LwM2M client, guide 3.1; powered on and off with the module) and ``gnss`` (the
    receiver $GPSP powers). ``lwm2m_server`` is the factory server as ``"URI|B"`` (B = 1 for a
    bootstrap server), as ``AT#LWM2MSTS=0,999,URI,B`` would set it at the factory.
    """

    def __init__(self, port: Port, state_dir: str | Path, *, profile: Profile | None = None,
                 clock: Clock | None = None, clean_output: bool = False,
                 registry: Registry | None = None, lwm2m_server: str | None = None,
                 ephemeral: bool = False):
        self.port = port
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.profile = profile or Profile()
        self.clock = clock or RealClock()
        self.events = EventBus()
        self.nvm = NVM(None if ephemeral else self.state_dir / "nvm.json")
        if self.nvm.problem:
            self.events.emit("nvm_problem", text=self.nvm.problem)
        self.fs = FileSystem(self.state_dir / "fs")
        self.settings = Settings()
        self.powered = False
        self.fun = 1
        self.sim = Sim(self, self.profile["sim"])
        self.network = Network(self, self.profile["network"])
        self.pdp = Pdp(self)
        self.power = PowerSupply(self, self.profile["battery"], self.profile["adc"])
        self.link = Link(self)             # the data path to the servers: fault hooks, trace, stepped clock
        self.registry = registry or default_registry()
        self.engine = Engine(self, self.registry, shared_parser(), clean_output=clean_output)
        self.gnss = GnssReceiver(self)
        self.agent = Agent(self, factory_server=lwm2m_server)
        for hook in getattr(self.registry, "attach_hooks", []):
            hook(self)

    # ------------------------------------------------------------------ life cycle
    def start(self) -> None:
        """Power on: must be called from inside the running event loop."""
        self.port.start(self.engine.feed)
        self.power_on()

    def power_on(self) -> None:
        self.load_profile_at_boot()
        self.pdp.load()
        self.fun = 1
        self.powered = True
        self.sim.power_on()
        self._start_service("LwM2M agent", self.agent.power_on, self.agent.fail)
        self.events.emit("power_on")
        self.network.reevaluate()

    def _start_service(self, name: str, start: Callable[[], None], fail: Callable[[str], None]) -> None:
        """Power a service on; if it fails, say why once on stderr (log level ERROR) and leave it in
        its failed state (``fail(cause)``): the module goes on as a module whose service failed."""
        try:
            start()
        except Exception as exc:          # any fault of the service: the module itself keeps running
            cause = f"{type(exc).__name__}: {exc}"
            log.error("%s failed at power-on: %s", name, cause)
            fail(cause)

    def power_off(self) -> None:
        self.agent.power_off()
        self.events.emit("power_off")
        self.powered = False
        self.network.reevaluate()
        self.pdp.drop_all()
        self.engine.cancel()
        self.engine.reset_input()

    def reboot(self) -> None:
        """#REBOOT, +CFUN=1,1, /3/0/4: volatile state is lost, NVM stays."""
        log.info("reboot")
        self.power_off()
        self.power_on()

    def close(self, budget: float = 2.0) -> None:
        """Switch the module off for good and release its port. A registered agent deregisters
        in the background (at most ``budget`` real seconds): await :meth:`aclose` instead to wait
        for it, as the ``telit-emu`` command does on SIGTERM / SIGINT."""
        self.events.emit("shutdown")
        self.agent.shutdown(budget)
        self.power_off()
        self.port.close()

    async def aclose(self, budget: float = 2.0) -> None:
        """:meth:`close`, then wait for the agent's Deregister and CoAP shutdown (bounded)."""
        self.close(budget)
        await self.agent.closed()

    # ------------------------------------------------------------------ profiles (&W &F &Y &P Z)
    def load_profile_at_boot(self) -> None:
        startup = self.nvm.get("startup", {"profile": 0, "full": True})
        self.settings.factory(("base", "ext"))
        stored = (self.nvm.get("profiles") or {}).get(str(startup.get("profile", 0)))
        self.settings.load(stored, ("base", "ext") if startup.get("full", True) else ("base",))

    def save_profile(self, n: int) -> None:
        profiles = dict(self.nvm.get("profiles") or {})
        profiles[str(n)] = self.settings.snapshot()
        self.nvm.set("profiles", profiles)

    def load_profile(self, n: int) -> None:
        stored = (self.nvm.get("profiles") or {}).get(str(n))
        self.settings.load(stored, ("base", "ext"))

    def set_startup(self, n: int, full: bool) -> None:
        self.nvm.set("startup", {"profile": n, "full": full})

    def factory_settings(self, full: bool) -> None:
        self.settings.factory(("base", "ext") if full else ("base",))

    # ------------------------------------------------------------------ clock and firmware (NVM records)
    @property
    def timezone(self) -> TimeZone:
        """The module's time zone (+CCLK ``zz``, /3/0/14), as NVM keeps it (emulator/modem/timezone.py)."""
        return TimeZone.load(self.nvm)

    def set_timezone(self, quarters: int) -> None:
        """Keep the time zone, ``quarters`` of an hour from UTC (-96..96); NvmFull when NVM cannot."""
        TimeZone(int(quarters)).save(self.nvm)

    @property
    def firmware_revision(self) -> str:
        """The revision the module runs (+CGMR, #CGMR, /3/0/3): the last one a firmware update
        installed, else the profile's (emulator/modem/firmware.py)."""
        return FirmwareRecord.load(self.nvm).installed or self.profile["identity"]["revision"]

    def install_firmware(self, revision: str) -> None:
        """A firmware update made ``revision`` the running image (kept in NVM)."""
        FirmwareRecord(revision).save(self.nvm)

    # ------------------------------------------------------------------ radio
    def set_fun(self, fun: int) -> None:
        self.fun = fun
        self.network.reevaluate()

    def urc(self, text: str) -> None:
        self.engine.urc(text)


__all__ = ["Modem", "BASE", "EXT"]
