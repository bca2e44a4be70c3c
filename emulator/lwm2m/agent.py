"""The Telit LwM2M agent: the DIS / WAIT / ACTIVE / IDLE / DEREG state machine of the guide, with ACK
mode and guard times on the modem clock, the host-side lists, and the registration life cycle it
drives through the CoAP client. Everything host-visible leaves as a URC through the modem."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import formats as fmt
from .client import EXCHANGE_TIMEOUT, ClientError, CoapClient, default_port
from .coap import server_uri_problem
from .formats import link
from .models import ModelRegistry
from .site import Site
from .store import Store, StoreError

if TYPE_CHECKING:
    from ..modem.core import Modem

log = logging.getLogger("emulator.lwm2m.agent")

DIS, WAIT, ACTIVE, IDLE, DEREG = "DIS", "WAIT", "ACTIVE", "IDLE", "DEREG"
LIST_LIMIT = 6
REGISTER_ATTEMPTS = 3
RETRY_BACKOFF = (30.0, 60.0)          # seconds between registration / bootstrap attempts
SHUTDOWN_BUDGET = 2.0                 # real seconds a stopping emulator gives its Deregister
BOOTSTRAP_FINISH_TIMEOUT = 120.0


@dataclass
class ServerEntry:
    uri: str
    bootstrap: bool
    ssid: int

    @property
    def secure(self) -> bool:
        return self.uri.startswith("coaps://")


class AgentError(Exception):
    pass


class Agent:
    """The module's LwM2M client (guide 3.1), owned by its :class:`Modem` (``modem.agent``), which
    calls :meth:`power_on` / :meth:`power_off` at power on/off and reboot. ``factory_server`` is the
    server of a factory-fresh module as ``"URI|B"`` (B = 1: a bootstrap server), else the profile's.
    ``failure`` is the cause when the agent could not start at power-on (see :meth:`fail`)."""

    def __init__(self, modem: "Modem", *, factory_server: str | None = None):
        self.modem = modem
        self.factory_server = factory_server
        self.failure: str | None = None
        self.clock = modem.clock
        self.enabled = False
        self.status = DIS
        self.params = (1, 0, 5, 5)            # pdpId, mode, guardRequestTime, guardReleaseTime
        self.after_disable = False            # #LWM2MGETSTAT: "DIS" (bare) right after a disable
        self.force_exited = False
        self.busy_until = -1.0
        self.monitor: list[int] = []
        self.nfy_uris: list[tuple[int, int, int]] = []
        self.nfy_enabled = False
        self.registered = False
        self.models: ModelRegistry | None = None
        self.store: Store | None = None
        self.site = Site(self)
        self.client: CoapClient | None = None
        self._task: asyncio.Task | None = None
        self._ack: asyncio.Future | None = None
        self._update_wanted: asyncio.Event | None = None
        self._update_links = False
        self._release_timer = None
        self._activated_pdp: int | None = None
        self._bs_finished: asyncio.Future | None = None
        self._ring_task: asyncio.Task | None = None
        self._disable_task: asyncio.Task | None = None
        # what the server was last told (Register or Update): a change made while a request is in
        # flight is compared against it once the request completes, and sent in an Update then
        self._sent_lifetime: int | None = None
        self._sent_binding: str | None = None
        self._sent_links: str | None = None
        self._closing: set[asyncio.Task] = set()
        self._pending_notify: list = []
        self._stored_notify: list = []
        self.configured: ServerEntry | None = None
        self.bootstrapped: dict | None = None
        self.server: ServerEntry | None = None
        self.endpoint = ""
        self.keys: dict[str, str] = {}
        self.model_errors: list[str] = []
        self.fota = None
        modem.events.subscribe("registration", self._on_network)
        modem.events.subscribe("power", self._on_power)
        modem.pdp.users.append(lambda cid: self.enabled and self.params[0] == cid)   # held while enabled

    # ================================================================== power
    @property
    def cfg(self) -> dict:
        return self.modem.profile["lwm2m"]

    def power_on(self) -> None:
        """Boot: read the server configuration and the models, rebuild the object store. Raises
        whatever keeps the agent from starting (e.g. :class:`ModelError` for broken built-in
        models); the modem then calls :meth:`fail`."""
        self.failure = None
        nvm = self.modem.nvm
        pending = nvm.get("lwm2m_server_pending")
        if pending is not None:             # #LWM2MSTS takes effect at this boot
            nvm.delete("lwm2m_server_pending")
            if pending == "factory":
                nvm.delete("lwm2m_server")
            else:
                nvm.set("lwm2m_server", pending)
            nvm.delete("lwm2m_bootstrapped")    # a new server: bootstrap again if it is a bootstrap server
        self.configured = self._server_entry()
        self.keys = dict(nvm.get("lwm2m_keys") or {})
        boot = nvm.get("lwm2m_bootstrapped")
        if boot and server_uri_problem(str(boot.get("uri"))) is not None:
            log.warning("the bootstrapped server in NVM is not a usable URI (%s): bootstrapping again",
                        server_uri_problem(str(boot.get("uri"))))
            boot = None
        if self.configured.bootstrap and boot and boot.get("bs") == self.configured.uri:
            self.server = ServerEntry(default_port(boot["uri"]), False, int(boot["ssid"]))
            self.bootstrapped = boot
        else:
            self.server = self.configured
            self.bootstrapped = None
        self.endpoint = self.keys.get("ep") or self.cfg.get("endpoint") or self.modem.profile["identity"]["imei"]
        self.models = ModelRegistry.for_modem([self.modem.fs.xml_dir()])
        self.model_errors = list(self.models.errors)
        self.store = self._build_store()
        self.fota = self._make_fota()
        self.enabled, self.status, self.after_disable = False, DIS, False
        self.force_exited = False
        self.monitor, self.nfy_uris, self.nfy_enabled = [], [], False
        self.registered = False
        self._pending_notify: list = []
        self._stored_notify: list = []
        resume = nvm.get("lwm2m_resume")
        if resume:                        # a reboot the server asked for: the agent comes back by itself
            nvm.delete("lwm2m_resume")
            self.modem.clock.call_later(0, lambda: self._resume(resume))

    def fail(self, cause: str) -> None:
        """The agent could not start at this boot: it stays disabled with nothing half-built (no
        store, client or task); enabling it only reports CLIENT_DISABLED (see commands/lwm2m.py)."""
        self.power_off()
        self.failure = cause
        self.models = self.store = self.fota = None
        self.model_errors = []

    def _on_network(self, stat) -> None:
        """Coverage back while registered: refresh the registration, send what was stored."""
        if self.registered and self.modem.network.registered:
            self.request_update()
            self.flush_stored()

    def _resume(self, params) -> None:
        if not self.enabled and self.modem.powered:
            try:
                self.enable(*params)
            except AgentError:
                pass

    def power_off(self) -> None:
        """Power gone: every task, timer, observation and pending ring of this boot ends here."""
        for task in (self._task, self._disable_task, self._ring_task):
            if task and not task.done():
                task.cancel()
        self._task = self._disable_task = self._ring_task = self._ack = None
        self._cancel_release()
        self.site.drop_observations()
        self.site.bootstrapping = False
        self._activated_pdp = None              # the modem drops every context itself
        self.after_disable = False
        self._pending_notify, self._stored_notify = [], []
        if self.client:
            client, self.client = self.client, None
            self._close_later(client)
        self.enabled, self.status, self.registered = False, DIS, False

    def _close_later(self, client: CoapClient, deregister_within: float | None = None) -> None:
        """Close ``client`` in the background (after a Deregister bounded by ``deregister_within``
        real seconds, when given); :meth:`closed` waits for every such close."""
        async def run() -> None:
            if deregister_within is not None:
                try:
                    await asyncio.wait_for(client.deregister(timeout=deregister_within), deregister_within)
                except (ClientError, asyncio.TimeoutError) as exc:
                    log.info("deregister at shutdown failed: %s", exc or "timeout")
            try:
                await asyncio.wait_for(client.close(), 1.0)
            except asyncio.TimeoutError:
                log.info("CoAP client close timed out")
        try:
            task = asyncio.get_running_loop().create_task(run())
        except RuntimeError:                    # no loop any more: nothing left to close cleanly
            return
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def shutdown(self, budget: float = SHUTDOWN_BUDGET) -> None:
        """The module is being switched off for good (the emulator stops): a registered agent sends
        its Deregister (at most ``budget`` real seconds), then everything stops as at power off.
        Await :meth:`closed` for the end of that exchange."""
        if self.registered and self.client is not None:
            client, self.client = self.client, None
            self.power_off()
            self._close_later(client, deregister_within=budget)
        else:
            self.power_off()

    async def closed(self) -> None:
        """Wait until the CoAP clients closed by :meth:`power_off` / :meth:`shutdown` are closed."""
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def _server_entry(self) -> ServerEntry:
        """The configured server: #LWM2MSTS (NVM), else --lwm2m-server, else the profile's default.

        An entry that is not a usable URI (NVM written by an older version, a bad profile) is reported
        on stderr and skipped, as if it had not been configured."""
        nvm = self.modem.nvm
        ssid = int(self.cfg["default_ssid"])
        candidates = []
        stored = nvm.get("lwm2m_server")
        if stored:
            try:
                uri, bs = stored
                candidates.append(("#LWM2MSTS entry in NVM", str(uri), bool(bs)))
            except (TypeError, ValueError):
                log.warning("the #LWM2MSTS entry in NVM has the wrong shape: ignored")
        factory = self.factory_server
        if factory:
            uri, _, bs = factory.partition("|")
            candidates.append(("--lwm2m-server", uri, bs == "1"))
        uri, bs = self.cfg["default_server"]
        candidates.append(("profile default_server", str(uri), bool(bs)))
        candidates.append(("built-in default", "coap://127.0.0.1:5683", False))
        for origin, uri, bs in candidates:
            problem = server_uri_problem(uri)
            if problem is None:
                return ServerEntry(default_port(uri), bs, 0 if bs else ssid)
            log.warning("LwM2M server %r (%s) is not usable: %s; ignored", uri, origin, problem)
        raise AssertionError("unreachable: the built-in default is valid")

    # ================================================================== store
    def _build_store(self) -> Store:
        store = Store(self.models, self.modem.nvm)
        m = self.modem
        ident = m.profile["identity"]
        srv = self.server
        boot = self.bootstrapped or {}
        store.create_instance(0, 0, {0: srv.uri, 1: srv.bootstrap, 2: 0 if srv.secure else 3,
                                     3: bytes.fromhex(boot["identity"]) if boot.get("identity")
                                     else self.keys.get("identity", "").encode(),
                                     4: b"", 5: bytes.fromhex(boot["key"]) if boot.get("key") else b"",
                                     10: srv.ssid})
        if not srv.bootstrap:
            store.create_instance(1, 0, {0: srv.ssid, 1: int(boot.get("lifetime") or self.cfg["lifetime"]),
                                         5: 86400, 6: True, 7: boot.get("binding") or "U"})
        store.create_instance(3, 0, {
            0: ident["manufacturer"], 1: ident["model"], 2: ident["serial"],
            6: {0: 1}, 7: {0: 3800}, 8: {0: 100}, 9: 100, 10: 0, 11: {0: 0},
            15: "UTC", 16: str(self.cfg.get("supported_binding", "U")), 17: "Cat-M1 module", 19: ident.get("software", ""), 20: 0, 21: 4096,
        })
        store.live[(3, 0, 3)] = lambda: m.nvm.get("firmware_revision") or ident["revision"]
        store.live[(3, 0, 13)] = lambda: int(m.clock.wall())
        store.live[(3, 0, 14)] = self._utc_offset
        store.live[(3, 0, 10)] = lambda: max(0, m.fs.free() // 1024)
        # the supply side follows the module's battery until the host sets the value (#LWM2MSET: host
        # control wins, guide 3.1.9; a host-set value is kept across restarts, see below)
        store.live[(3, 0, 7)] = lambda: {0: m.power.voltage_mv}
        store.live[(3, 0, 9)] = lambda: m.power.level
        store.live[(3, 0, 20)] = lambda: m.power.battery_status
        net = m.profile["network"]
        if 4 in self.models:
            store.create_instance(4, 0, {0: 6, 1: {0: 6}, 2: -(113 - 2 * int(net["rssi"])), 3: 0,
                                         4: {0: ""}, 7: {0: ""}, 8: int(net["ci"], 16), 9: int(net["plmn"][3:]),
                                         10: int(net["plmn"][:3])})
            store.live[(4, 0, 4)] = lambda: {0: self._ip()}
            store.live[(4, 0, 2)] = lambda: -(113 - 2 * int(net["rssi"])) if m.network.registered else -140
        if 5 in self.models:
            store.create_instance(5, 0, {1: "", 3: 0, 5: 0, 9: 1})
        if 6 in self.models:                # location: the GNSS fix once the receiver runs
            g = m.profile["gnss"]
            gnss_on = lambda m: m.gnss.running  # noqa: E731
            store.create_instance(6, 0, {0: 0.0, 1: 0.0, 2: 0.0, 3: 0.0, 5: 0})
            for rid, key in ((0, "latitude"), (1, "longitude"), (2, "altitude"), (3, "radius")):
                store.live[(6, 0, rid)] = lambda key=key: float(g[key]) if gnss_on(m) else 0.0
            store.live[(6, 0, 5)] = lambda: int(m.clock.wall()) if gnss_on(m) else 0
        for oid, values in ((11, {0: "default", 1: ""}), (33211, {0: {0: 0, 1: 0}})):
            if oid in self.models:
                store.create_instance(oid, 0, values)
        if 11 in self.models:
            store.create_instance(11, 1, {0: "lwm2m", 1: ""})
        store.load_saved()
        for key in store.host_written():        # what the host set replaces the module's live value
            store.live.pop(key, None)
        store.on_change(self._on_store_change)
        store.on_structure(self._on_structure_change)
        return store

    def _make_fota(self):
        """The firmware-update object's behaviour (emulator/lwm2m/fota.py), when /5 is modelled."""
        if 5 not in self.models:
            return None
        from .fota import FirmwareUpdate
        return FirmwareUpdate(self)

    def _ip(self) -> str:
        ctx = self.modem.pdp.contexts.get(self.params[0])
        return ctx.address if ctx and ctx.active else ""

    def _on_store_change(self, path: tuple, source: str) -> None:
        oid = path[0]
        if oid in self.monitor and source in ("host", "server"):
            self.modem.urc(f'#LWM2MMON: UPD,"/{path[0]}/{path[1]}/{path[2]}/{path[3]}"')
        self.site.changed(path[:3])

    def _on_power(self, what: str = "") -> None:
        """Battery or charger changed: observers of the resources that still follow it notify."""
        if self.store is None:
            return
        for rid in (7, 9, 20):
            if (3, 0, rid) in self.store.live:
                self.site.changed((3, 0, rid))

    def _on_structure_change(self, path: tuple, event: str) -> None:
        """An instance came or went (host, server or module): the object's observations notify, an
        observation of a deleted instance ends, and the registration's links are updated."""
        self.site.structure_changed(path, event)
        if self.registered:
            self.request_update(links=True)

    # ================================================================== URCs
    def urc(self, text: str) -> None:
        self.modem.urc(text)

    def tlt(self, event: str, with_server: bool = True) -> None:
        always = event == "FORCE_EXIT"
        if not (self.cfg.get("tlt_urcs", True) or always):
            return
        guide = self.cfg.get("tlt_guide_format", False)
        srv = self.server
        if guide:
            tail = f",{srv.ssid},\"{srv.uri}\"" if with_server else ""
            self.urc(f'#LWM2M-TLT: "{event}"{tail}')
        else:
            tail = f',SSID={srv.ssid},"{srv.uri}"' if with_server else ""
            self.urc(f'LWM2M-TLT:"{event}"{tail}')

    def ring(self, what: str) -> None:
        self.urc(f'#LWM2MRING: "{what}"')

    # ================================================================== host commands
    @property
    def busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def _start_busy(self) -> None:
        self.busy_until = self.clock.now() + float(self.cfg.get("busy_window", 0.5))

    def enable(self, pdp: int, mode: int, greq: int, grel: int) -> None:
        if self.enabled or self.force_exited:
            raise AgentError("already enabled")
        if pdp not in self.modem.pdp.contexts:
            raise AgentError("context not defined")
        self.params = (pdp, mode, greq, grel)
        self.enabled, self.after_disable = True, False
        self.status = ACTIVE if mode == 0 else WAIT
        self._start_busy()
        self._task = asyncio.ensure_future(self._session())

    def disable(self) -> None:
        if not self.enabled or (self._disable_task and not self._disable_task.done()):
            return
        self._start_busy()
        self._disable_task = asyncio.ensure_future(self._disable(self._task))

    def ack(self) -> None:
        if self.status != WAIT or self._ack is None or self._ack.done():
            raise AgentError("nothing to acknowledge")
        self._ack.set_result(None)

    # ================================================================== the session
    async def _wait_ack(self, what: str) -> None:
        self.status = WAIT
        self._ack = asyncio.get_running_loop().create_future()
        self.ring(what)
        await self._ack
        self._ack = None

    async def _bring_up_pdp(self) -> None:
        pdp = self.modem.pdp
        cid = self.params[0]
        self._activated_pdp = None
        while not self.modem.network.registered:
            fut = asyncio.get_running_loop().create_future()
            undo = self.modem.events.subscribe("registration", lambda stat: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                undo()
        if not pdp.is_active(cid):
            pdp.activate(cid)
            self._activated_pdp = cid

    def _links(self) -> str:
        objs = {oid: iids for oid, iids in self.store.links().items() if oid != 0}
        return link.registration_links(objs, lambda oid: self.models.get(oid).version
                                       if self.models.get(oid) and self.models.get(oid).version != "1.0" else None)

    def _lifetime(self) -> int:
        try:
            return int(self.store.get(1, 0, 1))
        except (StoreError, TypeError, ValueError):
            return int(self.cfg["lifetime"])

    async def _session(self) -> None:
        try:
            await self.clock.sleep(float(self.cfg.get("busy_window", 0.5)))
            await self._bring_up_pdp()
            if self.params[1] == 1:
                await self._wait_ack("REG")
                self._set_active()
            self.client = CoapClient(self.clock, self.site, tracker=self.tracker, psk=self._psk(), link=self.modem.link)
            if self.server.bootstrap:
                if not await self._bootstrap():
                    self.tlt("FORCE_EXIT", with_server=False)
                    self._stop(force_exit=True)
                    return
                if self.params[1] == 1:
                    self.urc("#LWM2MEND: 0")
                await self.client.close()
                self.client = CoapClient(self.clock, self.site, tracker=self.tracker, psk=self._psk(), link=self.modem.link)
            await self._register_and_serve()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agent session failed")
            self.tlt("CLIENT_DISABLED", with_server=False)
            self._stop()

    async def _register(self) -> bool:
        self.tlt("REGISTERING")
        for attempt in range(REGISTER_ATTEMPTS):
            lifetime, links, binding = self._lifetime(), self._links(), self._binding()
            try:
                await self.client.register(self.server.uri, self.endpoint, lifetime, links, binding=binding)
            except ClientError as exc:
                log.info("registration attempt %d failed: %s", attempt + 1, exc)
                self.modem.events.emit("lwm2m", event="register_failed", attempt=attempt + 1)
                if attempt + 1 < REGISTER_ATTEMPTS:
                    await self.clock.sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
                continue
            self.registered = True
            self._sent_lifetime, self._sent_links, self._sent_binding = lifetime, links, binding
            self.site.drop_observations()
            self.tlt("REGISTERED")
            self.modem.events.emit("lwm2m", event="registered")
            return True
        return False

    async def _register_and_serve(self) -> None:
        """Register (with retries), then keep the registration alive until the session ends."""
        if not await self._register():
            self._give_up()
            return
        self._release_later()
        await self._update_loop()

    def _give_up(self) -> None:
        """Registration failed after its retries: FORCE_EXIT; only a reboot brings the agent back."""
        self.tlt("FORCE_EXIT", with_server=False)
        self.tlt("CLIENT_DISABLED", with_server=False)
        self._stop(force_exit=True)

    def _binding(self) -> str:
        try:
            return str(self.store.get(1, 0, 7) or "U")
        except StoreError:
            return "U"

    def _psk(self) -> tuple[bytes, bytes] | None:
        """PSK identity and key for a coaps:// server: from the bootstrap result or #LWM2MINJKEYS."""
        if not self.server.secure:
            return None
        for iid in self.store.instance_ids(0):
            try:
                uri = self.store.get(0, iid, 0)
                if uri and server_uri_problem(str(uri)) is None and default_port(uri) == self.server.uri:
                    ident, key = self.store.get(0, iid, 3), self.store.get(0, iid, 5)
                    if ident and key:
                        return bytes(ident), bytes(key)
            except StoreError:
                continue
        if self.keys.get("identity") and self.keys.get("key"):
            from .client import psk_key_bytes
            return self.keys["identity"].encode(), psk_key_bytes(self.keys["key"])
        return None

    def request_update(self, links: bool = False) -> None:
        self._update_links = self._update_links or links
        if self._update_wanted is not None:
            self._update_wanted.set()

    def _registration_outdated(self) -> bool:
        """Object links, lifetime or binding differ from what the server was last told."""
        return (self._links(), self._lifetime(), self._binding()) != \
            (self._sent_links, self._sent_lifetime, self._sent_binding)

    async def _update_loop(self) -> None:
        self._update_wanted = asyncio.Event()
        while True:
            if self._registration_outdated():       # changed while the last request was in flight
                self._update_wanted.set()
            lifetime = self._lifetime()
            due = max(1.0, lifetime * 0.9)
            lead = float(self.params[2]) if self.params[1] == 1 else 0.0
            try:
                await self.clock.wait_for(self._update_wanted.wait(), max(0.5, due - lead))
            except asyncio.TimeoutError:
                pass
            self._update_wanted.clear()
            if self.params[1] == 1 and self.status != ACTIVE:
                await self._wait_ack("UPD")
                self._set_active()
            forced, self._update_links = self._update_links, False
            lifetime, binding, links = self._lifetime(), self._binding(), self._links()
            changed_lt = lifetime if lifetime != self._sent_lifetime else None
            changed_b = binding if binding != self._sent_binding else None
            try:
                await self.client.update(lifetime=changed_lt, binding=changed_b,
                                         links=links if forced or links != self._sent_links else None)
                self._sent_lifetime, self._sent_binding, self._sent_links = lifetime, binding, links
                self.modem.events.emit("lwm2m", event="updated")
            except ClientError as exc:
                log.info("update failed (%s): registering again", exc)
                self.registered = False
                if not await self._register():
                    self._give_up()
                    return
            self._release_later()

    def _set_active(self) -> None:
        self.status = ACTIVE
        pending, self._pending_notify = self._pending_notify, []
        for obs in pending:
            obs.send()

    # ------------------------------------------------------------------ notifications
    @property
    def tracker(self):
        from .coap import NotifyTracker
        if getattr(self, "_tracker", None) is None:
            self._tracker = NotifyTracker(self._notify_result)
        return self._tracker

    def notify_due(self, obs) -> None:
        """An observation has a notification to send: now, after a "NOT" ring, or stored."""
        if not self.registered or not self.modem.network.registered:
            try:
                storing = bool(self.store.get(1, 0, 6))
            except StoreError:
                storing = False
            if storing and obs not in self._stored_notify:
                self._stored_notify.append(obs)
            return
        if self.params[1] == 1 and self.status != ACTIVE:
            if obs not in self._pending_notify:
                self._pending_notify.append(obs)
            if self.status == IDLE and (self._ring_task is None or self._ring_task.done()):
                self._ring_task = asyncio.ensure_future(self._ring_notify())
            return
        obs.send()
        self._release_later()

    async def _ring_notify(self) -> None:
        try:
            await self._wait_ack("NOT")
        except asyncio.CancelledError:
            return
        self._set_active()
        self._release_later()

    def flush_stored(self) -> None:
        stored, self._stored_notify = self._stored_notify, []
        for obs in stored:
            self.notify_due(obs)

    def notify_lead(self) -> float:
        """How early a periodic (pmax) notification starts: <guardRequestTime> in ACK mode."""
        return float(self.params[2]) if self.enabled and self.params[1] == 1 else 0.0

    def wants_con(self, path: tuple) -> bool:
        mode = self.cfg.get("notify_con", "listed")
        if mode == "always":
            return True
        if mode == "never":
            return False
        return len(path) >= 3 and tuple(path[:3]) in self.nfy_uris

    def _notify_result(self, path: tuple, result: str) -> None:
        try:
            o, i, r = (int(x) for x in path[:3])
        except ValueError:
            return
        if self.nfy_enabled and (o, i, r) in self.nfy_uris:
            self.urc(f'#LWM2MNFYACK: 0,{self.server.ssid},"/{o}/{i}/{r}","{result}"')

    # ------------------------------------------------------------------ guard release (ACK mode)
    def _release_later(self) -> None:
        if self.params[1] != 1:
            return
        self._cancel_release()
        self._release_timer = self.clock.call_later(float(self.params[3]), self._release)

    def _cancel_release(self) -> None:
        if self._release_timer:
            self._release_timer.cancel()
            self._release_timer = None

    def _release(self) -> None:
        self._release_timer = None
        if self.enabled and self.status == ACTIVE:
            self.urc("#LWM2MEND: 0")
            self.status = IDLE

    def server_activity(self) -> None:
        """A server request arrived: in ACK mode it keeps the active window open."""
        if self.params[1] == 1 and self.status == ACTIVE and self._release_timer:
            self._release_later()

    # ------------------------------------------------------------------ disable / stop
    async def _disable(self, session: asyncio.Task | None) -> None:
        if self.params[1] == 1 and self.status in (IDLE, WAIT) and self.registered:
            if session and not session.done():
                session.cancel()
            self._cancel_release()
            await self._wait_ack("DRG")
        elif session and not session.done():
            session.cancel()
        self._cancel_release()
        self.status = DEREG
        if self.registered and self.client:
            try:
                await self.client.deregister(timeout=EXCHANGE_TIMEOUT)
            except ClientError as exc:
                log.info("deregister failed: %s", exc)
            self.tlt("DEREGISTERED")
        # the module then releases its data context: a short while still in DEREG
        await self.clock.sleep(float(self.cfg.get("busy_window", 0.5)))
        self.tlt("CLIENT_DISABLED", with_server=False)
        self._stop()
        self.after_disable = True

    def _stop(self, force_exit: bool = False) -> None:
        if self._ring_task and not self._ring_task.done():
            self._ring_task.cancel()
        self._pending_notify, self._stored_notify = [], []
        self.registered = False
        self.enabled = False
        self.status = DIS
        self.force_exited = self.force_exited or force_exit
        self._cancel_release()
        self.site.drop_observations()
        self.site.bootstrapping = False
        if self._activated_pdp is not None:
            self.modem.pdp.deactivate(self._activated_pdp)
            self._activated_pdp = None
        if self.client:
            client, self.client = self.client, None
            self._close_later(client)

    # ================================================================== server-side hooks
    # ------------------------------------------------------------------ the module's clock in /3/0
    def _utc_offset(self) -> str:
        minutes = int(self.modem.nvm.get("tz_quarters", 0)) * 15
        sign = "+" if minutes >= 0 else "-"
        return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"

    def _clock_write(self, rid: int, value: Any) -> bool | None:
        """/3/0/13 (current time) and /3/0/14 (UTC offset) are the module's clock (+CCLK): a write sets
        it. Returns True when handled, False for a value that does not fit, None for other resources."""
        if rid == 13:
            self.clock.set_wall(float(value))
        elif rid == 14:
            import re
            mt = re.fullmatch(r"([+-])(\d{2}):?(\d{2})?", str(value).strip())
            if not mt or int(mt.group(2)) > 14 or int(mt.group(3) or 0) % 15:
                return False
            q = (int(mt.group(2)) * 4 + int(mt.group(3) or 0) // 15) * (-1 if mt.group(1) == "-" else 1)
            self.modem.nvm.set("tz_quarters", q)
        else:
            return None
        self.store._changed((3, 0, rid, 0), "server")
        return True

    BINDINGS = ("U", "UQ", "S", "SQ", "US", "UQS")      # the binding modes of LwM2M 1.0 (5.3.1.1)

    def binding_supported(self, binding: str) -> bool:
        """A 1.0 binding mode whose transports (and queue mode) /3/0/16 says the device supports."""
        try:
            supported = str(self.store.get(3, 0, 16))
        except StoreError:
            supported = "U"
        if binding not in self.BINDINGS:
            return False
        return set(binding) - {"Q"} <= set(supported) - {"Q"} and ("Q" not in binding or "Q" in supported)

    def check_server_write(self, path: tuple, value: Any):
        """Whether a server Write may be applied, before anything of the request is stored: a CoAP code
        to refuse it with (4.00 for a binding /3/0/16 does not list, a lifetime below 1 s), or None."""
        from .site import C
        oid, iid, rid = path
        if (oid, rid) == (1, 7) and not self.binding_supported(str(value)):
            return C.BAD_REQUEST
        if (oid, rid) == (1, 1) and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            return C.BAD_REQUEST
        return None

    def server_write(self, path: tuple, value: Any):
        """A Write from the server to one resource; returns a CoAP code to answer, or None (2.04)."""
        oid, iid, rid = path
        if oid == 5 and self.fota is not None:
            return self.fota.on_write(path, value)
        if (oid, iid) == (3, 0):
            done = self._clock_write(rid, value)
            if done is not None:
                from .site import C
                return None if done else C.BAD_REQUEST
        # values of the host's own instances are "Auto" settings: a server write to them is kept too
        self.store.set(oid, iid, rid, value, source="server", persist=(oid, iid) in self.store.user_instances)
        if (oid, rid) in ((1, 1), (1, 7)):          # what the registration says changed: Update now
            self.request_update()
        return None

    def server_execute(self, path: tuple, args: str):
        """An Execute from the server (or #LWM2ME); returns a CoAP code to answer, or None (2.04)."""
        oid, iid, rid = path
        m = self.modem
        if oid == 5 and self.fota is not None:
            return self.fota.on_execute(path, args)
        if (oid, rid) == (1, 8):
            self.request_update(links=True)
        elif (oid, rid) == (1, 4):
            if self._task and not self._task.done():
                self._task.cancel()
            self._task = asyncio.ensure_future(self._suspend())
        elif (oid, rid) == (3, 4):
            self.urc('#LWM2MINFO: "GEN","DEVICE REBOOT"')
            self.reboot_and_resume()
        elif (oid, rid) == (3, 5):
            self.urc('#LWM2MINFO: "GEN","DEVICE REBOOT"')
            m.nvm.delete("lwm2m_store")
            self.reboot_and_resume()
        elif (oid, rid) == (3, 12):
            self.store.set(3, 0, 11, {0: 0}, source="module")
        self.modem.events.emit("lwm2m", event="execute", path=path, args=args)

    def reboot_and_resume(self, delay: float = 0.2) -> None:
        """Reboot the module (after the CoAP answer has left); the agent re-enables itself at boot."""
        if self.enabled:
            self.modem.nvm.set("lwm2m_resume", list(self.params))
        self.clock.call_later(delay, self.modem.reboot)

    async def _suspend(self) -> None:
        """/1/x/4 Disable: deregister, stay away /1/x/5 seconds, then register again."""
        try:
            try:
                timeout = float(self.store.get(1, 0, 5) or 86400)
            except StoreError:
                timeout = 86400.0
            if self.registered and self.client:
                try:
                    await self.client.deregister()
                except ClientError:
                    pass
            self.registered = False
            self.site.drop_observations()
            self.tlt("SUSPENDED")
            await self.clock.sleep(timeout)
            await self._register_and_serve()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("suspend failed")

    # ------------------------------------------------------------------ bootstrap
    def bootstrap_write(self, path, cf, payload):
        """Bootstrap-Write to /0 or /1 (instance or resource): creates what is missing."""
        from .site import C, _resp
        oid = path[0]
        types = self.store.types(oid)
        if len(path) == 1:
            data = fmt.decode(cf, path, payload, types)
            items = list(data.items())
        elif len(path) == 2:
            items = [(path[1], fmt.decode(cf, path, payload, types))]
        else:
            items = [(path[1], {path[2]: fmt.decode(cf, path[:3], payload, types)})]
        for iid, values in items:
            if iid not in self.store.objects.get(oid, {}):
                self.store.create_instance(oid, iid, values, source="server")
            else:
                for rid, v in values.items():
                    self.store.set(oid, iid, rid, v, source="server")
        return _resp(C.CHANGED)

    def bootstrap_delete(self, path):
        from .site import C, _resp
        targets = [(oid, iid) for oid in self.store.objects for iid in self.store.instance_ids(oid)
                   if oid in (0, 1) and (not path or (path[0] == oid and (len(path) == 1 or path[1] == iid)))]
        for oid, iid in targets:
            try:
                if oid == 0 and self.store.get(0, iid, 1):
                    continue                        # the bootstrap server's own account stays
            except StoreError:
                pass
            self.store.delete_instance(oid, iid)
        return _resp(C.DELETED)

    def bootstrap_finish(self):
        """Bootstrap-Finish: accept only a usable configuration (a DM server with its server object)."""
        from .site import C, _resp
        dm = self._provisioned_server()
        if dm is None:
            return _resp(C.NOT_ACCEPTABLE)
        if self._bs_finished is not None and not self._bs_finished.done():
            self._bs_finished.set_result(dm)
        return _resp(C.CHANGED)

    def _provisioned_server(self) -> dict | None:
        store = self.store
        for iid in store.instance_ids(0):
            try:
                if store.get(0, iid, 1):
                    continue
                uri, ssid = store.get(0, iid, 0), int(store.get(0, iid, 10))
            except (StoreError, TypeError, ValueError):
                continue
            if server_uri_problem(str(uri)) is not None:
                continue
            for sid in store.instance_ids(1):
                try:
                    if int(store.get(1, sid, 0)) == ssid:
                        def opt(o, i, r, default=None):
                            try:
                                return store.get(o, i, r)
                            except StoreError:
                                return default
                        return {"bs": self.configured.uri, "uri": uri, "ssid": ssid,
                                "lifetime": int(opt(1, sid, 1, self.cfg["lifetime"])),
                                "binding": str(opt(1, sid, 7, "U")),
                                "identity": bytes(opt(0, iid, 3, b"") or b"").hex(),
                                "key": bytes(opt(0, iid, 5, b"") or b"").hex()}
                except (StoreError, TypeError, ValueError):
                    continue
        return None

    async def _bootstrap(self) -> bool:
        """Client-initiated bootstrap: Request, then the server's writes/deletes, then its Finish."""
        for attempt in range(REGISTER_ATTEMPTS):
            self.tlt("BOOTSTRAPPING")
            self._bs_finished = asyncio.get_running_loop().create_future()
            self.site.bootstrapping = True
            try:
                await self.client.bootstrap_request(self.server.uri, self.endpoint)
                dm = await self.clock.wait_for(asyncio.shield(self._bs_finished), BOOTSTRAP_FINISH_TIMEOUT)
            except (ClientError, asyncio.TimeoutError) as exc:
                log.info("bootstrap attempt %d failed: %s", attempt + 1, exc)
                self.site.bootstrapping = False
                if attempt + 1 < REGISTER_ATTEMPTS:
                    await self.clock.sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
                continue
            finally:
                self._bs_finished = None
                self.site.bootstrapping = False
            self.tlt("BOOTSTRAPPED")
            self.modem.nvm.set("lwm2m_bootstrapped", dm)     # the next boot registers directly
            self.bootstrapped = dm
            self.server = ServerEntry(default_port(dm["uri"]), False, int(dm["ssid"]))
            return True
        return False

    # ================================================================== host access helpers
    def host_set(self, path: tuple, value: Any) -> None:
        oid, iid, rid, riid = path
        if (oid, iid) == (3, 0) and rid in (13, 14):
            if not self._clock_write(rid, value):
                from ..at.errors import OPERATION_NOT_SUPPORTED, AtError
                raise AtError(OPERATION_NOT_SUPPORTED)
            return
        self.store.host_write(oid, iid, rid, value, riid)
