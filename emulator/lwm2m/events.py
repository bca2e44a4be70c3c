"""Typed events of the LwM2M agent (guide 3.1): what the agent, its registration and bootstrap engines
and its objects announce. The AT layer (emulator/commands/lwm2m.py) turns them into the module's URC
text; fleets, scenarios and tests subscribe to the same events.

Delivery: :meth:`emulator.lwm2m.agent.Agent.emit` calls the agent's own listeners
(``agent.listeners``, each ``fn(event)``), then publishes on the modem's event bus as
``modem.events.emit("lwm2m", event=<kind>, lwm2m=<the event>, **<its fields>)``, ``kind`` being the
class's ``kind`` (``"registered"``, ``"updated"`` ...). Delivery is synchronous, in the order the
agent emits, so URCs come out in the order things happened.

``ssid`` is the LwM2M Short Server ID of the server account concerned (/1/x/0; 0 for a bootstrap
server), ``uri`` that server's URI as registered (``coap[s]://host:port``). Paths are tuples of ints.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    """Base of every agent event; ``kind`` names it on the modem's event bus."""

    kind: ClassVar[str] = "event"

    def fields(self) -> dict[str, Any]:
        """The event's fields as a dict (shallow)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ServerEvent(Event):
    """An event about one server account: its SSID and URI."""

    ssid: int
    uri: str


# ---------------------------------------------------------------------- registration life cycle
@dataclass(frozen=True)
class Registering(ServerEvent):
    """A Register to this server is starting (guide 3.1.3: ``REGISTERING``)."""

    kind: ClassVar[str] = "registering"


@dataclass(frozen=True)
class Registered(ServerEvent):
    """The server answered the Register with 2.01 Created (``REGISTERED``)."""

    kind: ClassVar[str] = "registered"


@dataclass(frozen=True)
class RegisterFailed(ServerEvent):
    """One Register attempt failed (timeout, error code); ``attempt`` counts from 1. No URC."""

    attempt: int = 1
    kind: ClassVar[str] = "register_failed"


@dataclass(frozen=True)
class Updated(ServerEvent):
    """A registration Update was answered 2.04 Changed. No URC."""

    kind: ClassVar[str] = "updated"


@dataclass(frozen=True)
class Deregistered(ServerEvent):
    """The agent deregistered from this server (``DEREGISTERED``)."""

    kind: ClassVar[str] = "deregistered"


@dataclass(frozen=True)
class Suspended(ServerEvent):
    """The server executed /1/x/4 (Disable): deregistered for /1/x/5 seconds (``SUSPENDED``)."""

    kind: ClassVar[str] = "suspended"


@dataclass(frozen=True)
class Bootstrapping(ServerEvent):
    """A client-initiated Bootstrap-Request to this bootstrap server is starting (``BOOTSTRAPPING``)."""

    kind: ClassVar[str] = "bootstrapping"


@dataclass(frozen=True)
class BootstrapDone(ServerEvent):
    """The bootstrap server sent Bootstrap-Finish for a usable configuration (``BOOTSTRAPPED``)."""

    kind: ClassVar[str] = "bootstrap_done"


@dataclass(frozen=True)
class ForceExit(Event):
    """Registration or bootstrap failed after all retries: the agent stops until a reboot
    (``FORCE_EXIT``)."""

    kind: ClassVar[str] = "force_exit"


@dataclass(frozen=True)
class ClientDisabled(Event):
    """The agent is disabled (after a disable, a failure, or a failed start) (``CLIENT_DISABLED``)."""

    kind: ClassVar[str] = "client_disabled"


# ---------------------------------------------------------------------- ACK mode (guide 3.1.3)
@dataclass(frozen=True)
class Ring(Event):
    """ACK mode: the agent needs the data context and waits for ``AT#LWM2MACK``. ``what``: ``"REG"``
    (register), ``"UPD"`` (update), ``"DRG"`` (deregister) or ``"NOT"`` (a notification is due).
    One ring covers every server of the phase."""

    what: str
    kind: ClassVar[str] = "ring"


@dataclass(frozen=True)
class End(Event):
    """ACK mode: ``<guardReleaseTime>`` passed without traffic; the context is released (IDLE)."""

    kind: ClassVar[str] = "end"


# ---------------------------------------------------------------------- server traffic
@dataclass(frozen=True)
class Request(Event):
    """A request from a server arrived (any operation). ``ssid``: the server it came from."""

    ssid: int = 0
    kind: ClassVar[str] = "request"


@dataclass(frozen=True)
class Notified(Event):
    """A notification of an observation of ``path`` was sent to server ``ssid``."""

    path: tuple
    ssid: int = 0
    kind: ClassVar[str] = "notified"


@dataclass(frozen=True)
class NotifyAck(Event):
    """A confirmable notification of a URI in the notify-ack list (#LWM2MNFYACKURI) was acknowledged
    by server ``ssid`` (``result`` ``"ACK"``) or not (``"NACK"``); ``path`` is (object, instance,
    resource)."""

    ssid: int
    path: tuple
    result: str
    kind: ClassVar[str] = "notify_ack"


@dataclass(frozen=True)
class Execute(Event):
    """An Execute on ``path`` (object, instance, resource) from a server or ``#LWM2ME``; ``args`` the
    Execute arguments as text. No URC."""

    path: tuple
    args: str = ""
    kind: ClassVar[str] = "execute"


@dataclass(frozen=True)
class MonitorUpdate(Event):
    """A host or server write changed ``path`` (object, instance, resource, resource instance) of an
    object in the monitor list (#LWM2MMON)."""

    path: tuple
    kind: ClassVar[str] = "monitor_update"


@dataclass(frozen=True)
class Info(Event):
    """Information for the host: ``category`` (``"GEN"``) and ``text`` (``"DEVICE REBOOT"``,
    ``"FOTA REBOOT"``)."""

    category: str
    text: str
    kind: ClassVar[str] = "info"


@dataclass(frozen=True)
class FotaRing(Event):
    """Firmware update waits for the host's consent (#LWM2MFOTACFG modes 1-3): ``what`` is
    ``"DOWNLOAD"`` or ``"UPDATE"``; answered by ``AT#LWM2MFOTAACK``."""

    what: str
    kind: ClassVar[str] = "fota_ring"


@dataclass(frozen=True)
class FotaState(Event):
    """The Firmware Update object's State (/5/0/3) or Update Result (/5/0/5) changed."""

    state: int
    result: int
    kind: ClassVar[str] = "fota"
