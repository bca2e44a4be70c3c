"""The fault catalogue: what a scenario (a ``fault = "..."`` step, ``telit-emu ctl fault``, the pytest
plugin's ``telit_module.fault(...)``) can do to an emulated module or to its network, and how the
module reacts.

Every fault has a name, parameters (name, type, default) and an action; :data:`CATALOGUE` holds them
with the module's reaction written out (``telit-emu scenario faults`` prints it, the README copies it).
Network faults act on the module's data path (emulator/modem/link.py, through the CoAP seam) on the
module clock; every random choice (loss, jitter, duplication, reordering, CoAP's retransmission
jitter) comes from one ``random.Random(seed)`` of the run, so the same scenario and seed give the same
datagrams at the same module times.

A fault stays in force until ``clear = "<name>"`` (those marked *lasting*); the others act once.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from ..modem.link import DOWN, UP, summarize
from ..modem.nvm import PowerLost

if TYPE_CHECKING:
    from ..modem.core import Modem

log = logging.getLogger("emulator.scenarios.faults")


class FaultError(ValueError):
    """An unknown fault, an unknown parameter or a value out of range (the message says which)."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: type
    default: Any
    doc: str
    choices: tuple = ()
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Fault:
    name: str
    action: str
    reaction: str
    params: tuple[Param, ...] = ()
    lasting: bool = False


_SERVER = Param("server", str, "all", 'the server it applies to: "host:port" or a coap(s):// URI, or "all"')
_DIR = Param("direction", str, "both", "up (module -> server), down (server -> module) or both",
             choices=("up", "down", "both"))

CATALOGUE: dict[str, Fault] = {f.name: f for f in (
    # ------------------------------------------------------------------ SIM
    Fault("sim.remove", "the SIM is pulled out",
          "+CPIN? answers +CME ERROR: 10 (SIM not inserted); the module leaves the network (+CEREG 0, the "
          "PDP contexts drop); a registered LwM2M client can no longer reach its server: its next Update "
          "fails and, after the registration retries, it ends in FORCE_EXIT"),
    Fault("sim.insert", "the SIM is put back",
          "the module attaches again after the profile's attach delay (PIN-locked SIMs wait for +CPIN)"),
    Fault("sim.pin_lock", "the SIM asks for its PIN again (as after a SIM reset)",
          "+CPIN? answers SIM PIN, the module leaves the network until AT+CPIN=<pin>",
          (Param("pin", str, "1234", "the PIN that unlocks it"),)),
    # ------------------------------------------------------------------ network
    Fault("network.detach", "coverage is lost (the network detaches the module)",
          "+CEREG/+CGREG/+CREG go to 2 (searching; URCs when enabled), the PDP contexts drop, no datagram "
          "leaves or arrives; the LwM2M client stays registered as far as it knows: an Update or "
          "notification due then fails, and it registers again (or ends in FORCE_EXIT after the retries)"),
    Fault("network.attach", "coverage is back",
          "the module registers after the attach delay; a registered LwM2M client sends an Update at once "
          "(when that fails it registers again) and the notifications stored meanwhile (/1/x/6)"),
    Fault("network.roam", "the module is (or is no longer) on a visited network",
          "registration status 5 (roaming) or 1 (home) in +CREG/+CGREG/+CEREG (URCs when enabled)",
          (Param("roaming", bool, True, "true: roaming, false: home network"),)),
    Fault("network.signal", "the received signal level changes",
          "+CSQ and +CESQ report it; /4/0/2 (radio signal strength, dBm = -113 + 2*rssi) follows and "
          "its observers are notified",
          (Param("rssi", int, 15, "+CSQ <rssi> 0..31 (99: unknown)", low=0, high=99),)),
    Fault("network.pdp_drop", "the network deactivates the PDP contexts",
          "+CGACT?/#SGACT? show them inactive; the LwM2M client's context is activated again by the module "
          "when it next sends (the client is not told)"),
    Fault("radio.cfun", "the module's functionality level changes (as if +CFUN had been set)",
          "+CFUN? shows it; at 0 or 4 the module leaves the network (see network.detach), back at 1 it "
          "attaches again",
          (Param("fun", int, 4, "0, 1 or 4", choices=(0, 1, 4)),)),
    # ------------------------------------------------------------------ path to a server
    Fault("server.unreachable", "no datagram reaches the server or comes back from it",
          "CoAP retransmits (2-3 s doubling, 4 retransmissions) and the request times out; registration "
          "retries after 30 s and 60 s, then FORCE_EXIT; a failed Update registers again; a CON "
          "notification ends in #LWM2MNFYACK ... \"NACK\"",
          (_SERVER,), lasting=True),
    Fault("server.reachable", "the server can be reached again (the same as clear server.unreachable)",
          "the next retransmission or retry gets through"),
    Fault("link.loss", "datagrams are lost at random",
          "CoAP retransmission recovers what it can (a CON request is tried 5 times); what it cannot is "
          "as for server.unreachable",
          (Param("rate", float, 0.3, "probability a datagram is lost, 0..1", low=0, high=1), _DIR, _SERVER),
          lasting=True),
    Fault("link.latency", "datagrams are delayed",
          "exchanges take longer on the module clock; a delay beyond the CoAP timeout makes the module "
          "retransmit (the server answers the duplicate)",
          (Param("mean", float, 0.3, "mean one-way delay, s", low=0), Param("jitter", float, 0.0,
                 "uniform +- jitter, s", low=0), _DIR, _SERVER), lasting=True),
    Fault("link.duplicate", "datagrams arrive twice",
          "the module answers a duplicated request once more from its duplicate cache (RFC 7252 4.5) "
          "and ignores duplicated answers",
          (Param("rate", float, 0.2, "probability a datagram is duplicated, 0..1", low=0, high=1),
           Param("delay", float, 0.05, "the copy follows after this many s", low=0), _DIR, _SERVER),
          lasting=True),
    Fault("link.reorder", "datagrams overtake each other",
          "a held datagram arrives after the next one (or after `hold` s); CoAP matches by token and "
          "message id, so exchanges complete",
          (Param("rate", float, 0.3, "probability a datagram is held back, 0..1", low=0, high=1),
           Param("hold", float, 0.5, "at most this many s", low=0), _DIR, _SERVER), lasting=True),
    Fault("dtls.handshake_failure", "every DTLS handshake with the server fails (its flights are lost)",
          "each coaps:// exchange times out on the module clock; the registration retries end in "
          "FORCE_EXIT (as with a wrong PSK)",
          (_SERVER,), lasting=True),
    Fault("server.request", "the server sends the module a request (made at the seam, as from the "
          "registered server; the answer is kept at the seam and not sent on)",
          "the module serves it as any server request (Read, Write, Execute, Observe ...); its answer and "
          "any notification can be checked with expect_server (method = the response code, path = the "
          "request's path)",
          (Param("method", str, "GET", "GET, PUT, POST or DELETE", choices=("GET", "PUT", "POST", "DELETE")),
           Param("path", str, "/3/0", "Uri-Path, e.g. /1/0/4"),
           Param("payload", str, "", "payload text"),
           Param("format", int, 0, "content format of the payload (0 text, 11542 TLV ...)", low=0),
           Param("observe", bool, False, "GET with Observe=0"),
           Param("confirmable", bool, True, "CON (true) or NON"))),
    # ------------------------------------------------------------------ power
    Fault("power.reboot", "the module restarts cleanly (as #REBOOT)",
          "volatile state is lost, NVM stays; the LwM2M client is disabled until #LWM2MENA (a "
          "registration is left to expire at the server: no Deregister)"),
    Fault("power.cut", "the supply is cut (no clean shutdown), now or at a named point, and comes back "
          "after `off` s",
          "as power.reboot, but anything being written is lost: at point=fota_download the firmware "
          "object comes back with /5/0/3 = 0 (Idle) and /5/0/5 = 4 (connection lost during download); at "
          "point=nvm_write the write in progress is lost (the NVM keeps its previous content); at "
          "point=m2mwrite (an #M2MWRITE payload under way) the file is not written (a file of that name "
          "keeps its old content) and the payload's remaining bytes reach a module that is off or "
          "rebooting: no answer",
          (Param("point", str, "now", "now, fota_download, nvm_write or m2mwrite",
                 choices=("now", "fota_download", "nvm_write", "m2mwrite")),
           Param("off", float, 1.0, "seconds without power", low=0))),
    Fault("power.battery", "the battery changes",
          "#CBC and /3/0/7 (mV), /3/0/9 (%), /3/0/20 follow; observers are notified",
          (Param("level", int, -1, "0..100 %, -1: unchanged", low=-1, high=100),
           Param("voltage_mv", int, -1, "mV, -1: unchanged", low=-1),
           Param("charger", int, -1, "0 none, 1 charging, 2 done, -1: unchanged", low=-1, high=2))),
    Fault("clock.jump", "the module's wall clock jumps (timers keep their module-time deadlines)",
          "+CCLK? and /3/0/13 show the new time",
          (Param("seconds", float, 3600.0, "how far (negative: back)"),)),
    Fault("nvm.corrupt", "the NVM is corrupted at the next power-up (reboot or power cut)",
          "the module reports the corrupt NVM on stderr and starts from factory defaults: #LWM2MSTS, "
          "#LWM2MINJKEYS, #LWM2MNEWINST instances, stored profiles and the bootstrap result are gone"),
)}


def check(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """The fault's full parameter set (defaults filled in); FaultError for an unknown fault, an unknown
    parameter or a bad value."""
    fault = CATALOGUE.get(name)
    if fault is None:
        raise FaultError(f"unknown fault {name!r}")
    out = {}
    known = {p.name: p for p in fault.params}
    for key in params:
        if key not in known:
            raise FaultError(f"fault {name!r} has no parameter {key!r} (it has: "
                             f"{', '.join(known) or 'none'})")
    for p in fault.params:
        v = params.get(p.name, p.default)
        if p.kind is bool:
            if isinstance(v, str) and v.lower() in ("true", "false", "1", "0"):
                v = v.lower() in ("true", "1")
            if not isinstance(v, bool):
                raise FaultError(f"{name}: {p.name} must be true or false")
        elif p.kind in (int, float):
            if isinstance(v, str):
                try:
                    v = p.kind(v)
                except ValueError:
                    raise FaultError(f"{name}: {p.name} must be a number") from None
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                    or (p.kind is int and v != int(v)):
                raise FaultError(f"{name}: {p.name} must be {'an integer' if p.kind is int else 'a number'}")
            v = p.kind(v)
            if (p.low is not None and v < p.low) or (p.high is not None and v > p.high):
                raise FaultError(f"{name}: {p.name} must be within {p.low:g}..{p.high if p.high is not None else 'inf'}")
        else:
            v = str(v)
        if p.choices and v not in p.choices:
            raise FaultError(f"{name}: {p.name} must be one of {', '.join(map(str, p.choices))}")
        out[p.name] = v
    return out


def _server_peer(spec: str) -> tuple | None:
    """'all' -> None; 'host:port' or a URI -> (host, port)."""
    if spec == "all":
        return None
    if "://" in spec:
        from ..lwm2m.coap import parse_server_uri
        u = parse_server_uri(spec)
        return (u.host, u.port)
    host, _, port = spec.rpartition(":")
    try:
        return (host.strip("[]"), int(port))
    except ValueError:
        raise FaultError(f"server {spec!r} is not host:port, a URI or 'all'") from None


@dataclass
class _Active:
    name: str
    params: dict
    peer: tuple | None = None
    held: list = field(default_factory=list)


class FaultLayer:
    """Applies catalogue faults to one modem. ``seed`` seeds every random choice; ``on_applied(name,
    params)`` / ``on_cleared(name)`` tell the trace. Install once per modem (it adds a filter to
    ``modem.link`` and gates the link on the module's network state)."""

    def __init__(self, modem: "Modem", seed: int = 0,
                 note: Callable[[str], None] | None = None):
        self.modem = modem
        self.rng = random.Random(seed)
        self.active: dict[str, _Active] = {}
        self.note = note or (lambda text: None)
        self.pending_boot_corrupt = False
        self._armed_cut: dict | None = None
        self._tokens: dict[bytes, str] = {}         # token of a server.request -> its path
        self._mid = self.rng.randrange(0x4000, 0x8000)
        self._token = 0
        modem.link.rng = random.Random(self.rng.getrandbits(32))
        modem.link.filters.append(self._filter)
        modem.events.subscribe("*", self._on_event)

    # ------------------------------------------------------------------ API
    def apply(self, name: str, **params: Any) -> dict:
        """Apply fault ``name``; returns the parameters used. FaultError when it cannot be applied."""
        params = check(name, params)
        fault = CATALOGUE[name]
        self.modem.link.gated = True          # from the first fault on, no network means no datagrams
        handler = getattr(self, "_do_" + name.replace(".", "_"), None)
        if fault.lasting:
            peer = _server_peer(params["server"]) if "server" in params else None
            self.active[name] = _Active(name, params, peer)
        try:
            if handler is not None:
                handler(**params)
        except FaultError:
            self.active.pop(name, None)
            raise
        # traced once in force; each value as JSON (a payload with spaces or newlines stays one token)
        self.note(f"fault {name}" + "".join(f" {k}={json.dumps(v)}" for k, v in params.items()))
        self.modem.events.emit("fault", fault=name, params=params)
        return params

    def clear(self, name: str) -> None:
        """End a lasting fault (FaultError when ``name`` is not a fault). Clearing one not in force is
        harmless. network.detach clears as network.attach, sim.remove as sim.insert."""
        if name not in CATALOGUE:
            raise FaultError(f"unknown fault {name!r}")
        self.note(f"clear {name}")
        undo = {"network.detach": "network.attach", "sim.remove": "sim.insert", "radio.cfun": None}
        entry = self.active.pop(name, None)
        if entry is not None:
            held, entry.held = list(entry.held), []     # a reordered datagram still goes, once
            for delay, data, peer, direction, seam in held:
                self._release(direction, data, peer)
        if name == "power.cut":                 # an armed cut that has not struck yet is disarmed
            self._disarm_cut()
        if name == "nvm.corrupt":
            self._cancel_boot_corrupt()
        if name in undo and undo[name]:
            getattr(self, "_do_" + undo[name].replace(".", "_"))()
        elif name == "radio.cfun":
            self.modem.set_fun(1)
        self.modem.events.emit("fault_cleared", fault=name)

    # ------------------------------------------------------------------ SIM / network / radio
    def _do_sim_remove(self) -> None:
        self.modem.sim.set_present(False)

    def _do_sim_insert(self) -> None:
        self.modem.sim.set_present(True)

    def _do_sim_pin_lock(self, pin: str) -> None:
        sim = self.modem.sim
        sim.pin, sim.unlocked = pin, False
        self.modem.network.reevaluate()

    def _do_network_detach(self) -> None:
        self.modem.network.set_available(False)

    def _do_server_reachable(self) -> None:
        self.active.pop("server.unreachable", None)

    def _do_network_attach(self) -> None:
        self.modem.network.set_available(True)

    def _do_network_roam(self, roaming: bool) -> None:
        net = self.modem.network
        net.cfg = dict(net.cfg, registration=5 if roaming else 1)
        if net.registered:
            net._set_stat(5 if roaming else 1)

    def _do_network_signal(self, rssi: int) -> None:
        # a section of its own: fleet modems may share the profile's read-only sections
        self.modem.profile.data["network"] = dict(self.modem.profile["network"], rssi=rssi)
        agent = self.modem.agent
        if getattr(agent, "store", None) is not None:
            agent.live_changed((4, 0, 2))

    def _do_network_pdp_drop(self) -> None:
        self.modem.pdp.drop_all()

    def _do_radio_cfun(self, fun: int) -> None:
        self.modem.set_fun(fun)

    # ------------------------------------------------------------------ power
    def _do_power_reboot(self) -> None:
        self.modem.reboot()

    def _do_power_cut(self, point: str, off: float) -> None:
        if point == "now":
            self._cut(off)
        else:
            self._armed_cut = {"point": point, "off": off}
            if point == "nvm_write":
                self._arm_nvm()

    def _cut(self, off: float) -> None:
        self._armed_cut = None
        m = self.modem
        self.note(f"power off ({off:g} s)")
        m.power_off()
        m.clock.call_later(off, self._power_back)

    def _power_back(self) -> None:
        self.note("power on")
        self.modem.power_on()

    def _on_event(self, name: str, **data) -> None:
        """Firmware object state changes: the modem's "fota" event, or the agent's typed FotaState event
        (published as "lwm2m" with the event object in ``lwm2m``); an #M2MWRITE data phase starting."""
        armed = self._armed_cut
        if name == "m2mwrite" and armed and armed["point"] == "m2mwrite":
            # the prompt is out, the payload under way: the supply goes before the last byte arrives
            asyncio.get_running_loop().call_soon(self._cut, armed["off"])
            return
        typed = data.get("lwm2m")
        if name == "fota" or type(typed).__name__ == "FotaState":
            self._on_fota(state=data.get("state", getattr(typed, "state", None)))

    def _on_fota(self, state=None, **_kw) -> None:
        armed = self._armed_cut
        if armed and armed["point"] == "fota_download" and state == 1:
            asyncio.get_running_loop().call_soon(self._cut, armed["off"])

    def _arm_nvm(self) -> None:
        nvm = self.modem.nvm
        write = nvm._write

        def _write(sections):
            armed = self._armed_cut
            self._disarm_nvm()
            if armed and armed["point"] == "nvm_write":
                self._cut(armed["off"])            # the supply goes now: the write never completes
                raise PowerLost("power cut during the NVM write")
            return write(sections)
        nvm._write = _write
        self._nvm_armed = nvm

    def _disarm_nvm(self) -> None:
        nvm, self._nvm_armed = getattr(self, "_nvm_armed", None), None
        if nvm is not None and "_write" in vars(nvm):
            del nvm._write                     # the NVM's own write again

    def _disarm_cut(self) -> None:
        self._armed_cut = None
        self._disarm_nvm()

    def _cancel_boot_corrupt(self) -> None:
        m = self.modem
        if self.pending_boot_corrupt and "power_on" in vars(m):
            del m.power_on                     # the next power-up is a normal one again
        self.pending_boot_corrupt = False

    def _do_power_battery(self, level: int, voltage_mv: int, charger: int) -> None:
        self.modem.power.set_battery(level=None if level < 0 else level,
                                     voltage_mv=None if voltage_mv < 0 else voltage_mv,
                                     charger=None if charger < 0 else charger)

    def _do_clock_jump(self, seconds: float) -> None:
        clock = self.modem.clock
        clock.set_wall(clock.wall() + seconds)

    def _do_nvm_corrupt(self) -> None:
        m = self.modem
        if self.pending_boot_corrupt:
            return
        self.pending_boot_corrupt = True
        power_on = m.power_on

        def corrupt_then_power_on() -> None:       # the next power-up, whatever causes it
            from ..modem.nvm import NVM
            del m.power_on
            self.pending_boot_corrupt = False
            path = m.nvm.path
            if path is not None:
                with open(path, "wb") as fh:
                    fh.write(b"\x00\xffcorrupt telit-emu nvm\n")
            m.nvm = NVM(path)
            self.note(f"nvm corrupt: {m.nvm.problem or 'factory defaults'}")
            m.events.emit("nvm_problem", text=m.nvm.problem or "corrupt")
            power_on()
        m.power_on = corrupt_then_power_on

    # ------------------------------------------------------------------ server requests
    def _do_server_request(self, method: str, path: str, payload: str, format: int, observe: bool,
                           confirmable: bool) -> None:
        link = self.modem.link
        peer = None
        for seam in reversed(link.seams):
            if seam.servers:
                peer = next(iter(seam.servers))
                break
        if peer is None:
            raise FaultError("server.request: the module has no server session")
        self._mid = (self._mid + 1) & 0xFFFF
        self._token += 1
        token = b"\xfa" + self._token.to_bytes(3, "big")
        self._tokens[token] = path.split("?")[0]
        codes = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4}
        data = bytearray([0x40 | (0 if confirmable else 0x10) | len(token), codes[method]])
        data += self._mid.to_bytes(2, "big") + token
        opts = []
        if observe:
            opts.append((6, b""))
        for seg in [s for s in path.split("?")[0].split("/") if s]:
            opts.append((11, seg.encode()))
        if payload:
            opts.append((12, format.to_bytes(2, "big").lstrip(b"\0")))
        last = 0
        for number, value in opts:
            data += _option(number - last, value)
            last = number
        if payload:
            data += b"\xff" + payload.encode()
        link.inject(bytes(data), peer)

    # ------------------------------------------------------------------ the data path filter
    def _filter(self, direction: str, data: bytes, peer) -> list:
        out = self._faults(direction, data, peer)
        if direction == UP and len(data) >= 4 and data[0] >> 6 == 1:
            token = bytes(data[4:4 + (data[0] & 0x0F)])
            if token in self._tokens:              # the answer to a server.request: kept at the seam
                if out and (data[0] >> 4) & 3 == 0:   # a CON notification that got through: ACKed
                    ack = bytes([0x60, 0]) + data[2:4]
                    self.modem.clock.call_later(out[0][0] + 0.01, lambda: self._ack_in(ack, peer))
                for delay, d in out:              # seen by the watchers (expect_server), never sent
                    self.modem.clock.call_later(delay, lambda d=d: self.modem.link._watch(UP, d, peer))
                return None if out else []
        return out

    def _faults(self, direction: str, data: bytes, peer) -> list:
        out = [(0.0, data)]
        for name in ("server.unreachable", "dtls.handshake_failure", "link.loss", "link.latency",
                     "link.duplicate", "link.reorder"):
            act = self.active.get(name)
            if act is None or (act.peer is not None and act.peer != peer):
                continue
            p = act.params
            nxt = []
            for delay, d in out:
                if name == "server.unreachable":
                    continue
                if name == "dtls.handshake_failure":
                    if d[:1] == b"\x16":           # DTLS handshake records are lost: the handshake never ends
                        continue
                    nxt.append((delay, d))
                    continue
                if p.get("direction", "both") not in ("both", direction):
                    nxt.append((delay, d))
                    continue
                if name == "link.loss":
                    if self.rng.random() >= p["rate"]:
                        nxt.append((delay, d))
                elif name == "link.latency":
                    j = self.rng.uniform(-p["jitter"], p["jitter"]) if p["jitter"] else 0.0
                    nxt.append((delay + max(0.0, p["mean"] + j), d))
                elif name == "link.duplicate":
                    nxt.append((delay, d))
                    if self.rng.random() < p["rate"]:
                        nxt.append((delay + p["delay"], d))
                elif name == "link.reorder":
                    flow = next((h for h in act.held if h[3] == direction and h[2] == peer), None)
                    if flow is not None:           # this one overtakes the oldest held one of its flow
                        act.held.remove(flow)      # (same direction, same peer), which then follows it
                        nxt.append((delay, d))
                        self._release(flow[3], flow[1], flow[2])
                    elif self.rng.random() < p["rate"]:
                        hold = self.rng.uniform(0, p["hold"])
                        entry = (hold, d, peer, direction, None)
                        act.held.append(entry)
                        self.modem.clock.call_later(hold, lambda e=entry, a=act: self._flush_held(a, e))
                    else:
                        nxt.append((delay, d))
            out = nxt
        return out

    def _ack_in(self, ack: bytes, peer) -> None:
        out = [(0.0, ack)]
        out = [x for _, dd in out for x in self._faults(DOWN, dd, peer)]
        for delay, d in out:
            self.modem.clock.call_later(delay, lambda d=d: self.modem.link.inject(d, peer))

    def _flush_held(self, act: _Active, entry) -> None:
        if entry in act.held:
            act.held.remove(entry)
            self._release(entry[3], entry[1], entry[2])

    def _release(self, direction: str, data: bytes, peer) -> None:
        link = self.modem.link
        if link.gated and not link.up:
            return
        for seam in reversed(link.seams):
            if peer in seam.contacted or peer in seam.servers:
                link._watch(direction, data, peer)
                (seam.transmit if direction == UP else seam.inject)(data, peer)
                return

    def answer_path(self, token: bytes) -> str | None:
        """The path of the server.request a datagram with ``token`` answers, else None."""
        return self._tokens.get(token)


def _option(delta: int, value: bytes) -> bytes:
    def nib(n):
        if n < 13:
            return n, b""
        if n < 269:
            return 13, bytes([n - 13])
        return 14, (n - 269).to_bytes(2, "big")
    d, dx = nib(delta)
    ln, lx = nib(len(value))
    return bytes([(d << 4) | ln]) + dx + lx + value


def catalogue_text() -> str:
    """The catalogue as text (``telit-emu scenario faults``)."""
    lines = []
    for f in CATALOGUE.values():
        lines.append(f"{f.name}{'  (lasting: until clear)' if f.lasting else ''}")
        lines.append(f"    action:   {f.action}")
        for p in f.params:
            lines.append(f"    {p.name} = {p.default!r}: {p.doc}")
        lines.append(f"    reaction: {f.reaction}")
    return "\n".join(lines)
