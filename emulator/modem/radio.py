"""SIM, network registration and PDP contexts: state that commands read and fault scenarios change."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..at.errors import SIM_NOT_INSERTED, SIM_PIN_REQUIRED, AtError
from .settings import WS46_FACTORY, held

if TYPE_CHECKING:
    from .owner import ModemOwner

# registration status values of +CREG/+CGREG/+CEREG
NOT_REGISTERED, HOME, SEARCHING, DENIED, UNKNOWN, ROAMING = 0, 1, 2, 3, 4, 5


class Sim:
    def __init__(self, modem: "ModemOwner", cfg: dict):
        self.modem = modem
        self.present: bool = bool(cfg["present"])
        self.pin: str = str(cfg.get("pin") or "")
        self.puk: str = str(cfg.get("puk") or "")
        self.imsi: str = str(cfg["imsi"])
        self.iccid: str = str(cfg["iccid"])
        self.attempts = 3
        self.unlocked = not self.pin

    def power_on(self) -> None:
        self.unlocked = not self.pin

    @property
    def ready(self) -> bool:
        return self.present and self.unlocked

    def require_ready(self) -> None:
        if not self.present:
            raise AtError(SIM_NOT_INSERTED)
        if not self.unlocked:
            raise AtError(SIM_PIN_REQUIRED)

    def set_present(self, present: bool) -> None:
        """Scenario hook: insert or pull the SIM."""
        self.present = present
        self.unlocked = present and not self.pin
        self.modem.network.reevaluate()


class Network:
    """Registration follows the SIM and +CFUN: attach after a delay on the modem clock."""

    def __init__(self, modem: "ModemOwner", cfg: dict):
        self.modem = modem
        self.cfg = cfg
        self.available = True          # scenario hook: network coverage
        self.stat = NOT_REGISTERED
        self._timer = None

    @property
    def registered(self) -> bool:
        return self.stat in (HOME, ROAMING)

    def _set_stat(self, stat: int) -> None:
        if stat != self.stat:
            self.stat = stat
            self.modem.events.emit("registration", stat=stat)
            if not self.registered:
                self.modem.pdp.drop_all()

    def reevaluate(self) -> None:
        """Start or stop attaching after any change of radio, SIM or coverage."""
        want = self.modem.fun == 1 and self.modem.sim.ready and self.available and self.modem.powered
        if not want:
            if self._timer:
                self._timer.cancel()
                self._timer = None
            searching = self.modem.fun == 1 and self.modem.sim.ready and self.modem.powered
            self._set_stat(SEARCHING if searching else NOT_REGISTERED)
            return
        if self.registered or self._timer:
            return
        self._set_stat(SEARCHING)
        self._timer = self.modem.clock.call_later(float(self.cfg["attach_delay"]), self._attached)

    def _attached(self) -> None:
        self._timer = None
        self._set_stat(int(self.cfg["registration"]))

    def set_available(self, available: bool) -> None:
        self.available = available
        self.reevaluate()

    @property
    def act(self) -> int:
        mode = held(self.modem.nvm, "#WS46", WS46_FACTORY)[0]
        return 9 if mode == 1 else int(self.cfg["act"])


@dataclass
class PdpContext:
    cid: int
    pdp_type: str = "IPV4V6"
    apn: str = ""
    active: bool = False
    address: str = ""


class Pdp:
    CIDS = range(1, 7)

    def __init__(self, modem: "ModemOwner"):
        self.modem = modem
        self.contexts: dict[int, PdpContext] = {}
        # who uses a context (e.g. the LwM2M agent from #LWM2MENA until it is disabled, active yet
        # or not): fn(cid) -> bool. A context in use cannot be removed or redefined.
        self.users: list = []
        self.load()

    def in_use(self, cid: int) -> bool:
        """The context is active, or a user (the LwM2M agent) holds it."""
        return self.is_active(cid) or any(user(cid) for user in self.users)

    def load(self) -> None:
        stored = self.modem.nvm.get("cgdcont")
        self.contexts = {}
        if stored is None:
            stored = {"1": ["IPV4V6", ""]}          # factory: context 1 defined, empty APN
        for cid, (pdp_type, apn) in stored.items():
            self.contexts[int(cid)] = PdpContext(int(cid), pdp_type, apn)

    def save(self) -> None:
        self.modem.nvm.set("cgdcont", {str(c.cid): [c.pdp_type, c.apn] for c in self.contexts.values()})

    def define(self, cid: int, pdp_type: str, apn: str) -> None:
        old = self.contexts.get(cid)
        ctx = PdpContext(cid, pdp_type, apn, active=bool(old and old.active), address=old.address if old else "")
        self.contexts[cid] = ctx
        self.save()

    def undefine(self, cid: int) -> None:
        if self.contexts.pop(cid, None) is not None:
            self.save()

    def activate(self, cid: int) -> PdpContext:
        """LookupError if the context is not defined."""
        ctx = self.contexts.get(cid)
        if ctx is None:
            raise LookupError(f"PDP context {cid} is not defined")
        if not ctx.active:
            ctx.active = True
            ctx.address = f"{self.modem.profile['network']['ip_base']}{cid + 1}"
            self.modem.events.emit("pdp", cid=cid, active=True)
        return ctx

    def deactivate(self, cid: int) -> None:
        ctx = self.contexts.get(cid)
        if ctx and ctx.active:
            ctx.active = False
            ctx.address = ""
            self.modem.events.emit("pdp", cid=cid, active=False)

    def drop_all(self) -> None:
        for cid in list(self.contexts):
            self.deactivate(cid)

    def is_active(self, cid: int) -> bool:
        ctx = self.contexts.get(cid)
        return bool(ctx and ctx.active)
