"""One emulated module: it owns its port, clock, NVM, SIM/network, file system, engine and agent.

No module-level state: any number of Modems can live in one process (tests, fleets).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..at.engine import Engine
from ..at.parser import Parser
from ..at.registry import Registry
from ..clock import Clock, RealClock
from ..port import Port
from .events import EventBus
from .fs import FileSystem
from .nvm import NVM
from .profile import Profile
from .radio import Network, Pdp, Sim
from .settings import BASE, EXT, Settings

log = logging.getLogger("emulator.modem")

_SHARED_PARSER: Parser | None = None


def shared_parser() -> Parser:
    """The Lark parser is immutable once built: modems of one process share it (fleets start fast)."""
    global _SHARED_PARSER
    if _SHARED_PARSER is None:
        _SHARED_PARSER = Parser()
    return _SHARED_PARSER


def default_registry() -> Registry:
    from ..commands import all_families
    return Registry(all_families())


class Modem:
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
        self.registry = registry or default_registry()
        self.engine = Engine(self, self.registry, shared_parser(), clean_output=clean_output)
        self.ext: dict[str, Any] = {}          # per-family state (e.g. "lwm2m": the agent)
        if lwm2m_server:
            self.ext["lwm2m_factory_server"] = lwm2m_server
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
        self.events.emit("power_on")
        self.network.reevaluate()

    def power_off(self) -> None:
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

    def close(self) -> None:
        self.events.emit("shutdown")
        self.power_off()
        self.port.close()

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

    # ------------------------------------------------------------------ radio
    def set_fun(self, fun: int) -> None:
        self.fun = fun
        self.network.reevaluate()

    def urc(self, text: str) -> None:
        self.engine.urc(text)


__all__ = ["Modem", "BASE", "EXT"]
