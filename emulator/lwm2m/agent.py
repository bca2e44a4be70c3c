"""The Telit LwM2M agent: the DIS / WAIT / ACTIVE / IDLE / DEREG state machine of the guide (3.1.3),
with ACK mode and guard times on the modem clock and the host-side lists. It runs a bootstrap engine
(bootstrap.py) when its server is a bootstrap server, then one registration (registration.py) per DM
server account the store holds. Everything host-visible leaves as a typed event (events.py), which
the AT layer turns into URC text.

Several servers: on enable every account is announced (``REGISTERING``) in account order (Security
instance order) and registers at once; ``REGISTERED`` comes as each server answers. In ACK mode one
``#LWM2MRING`` covers every server of a phase: one "REG" before all Registers, one "UPD" for the
Updates due while the context is released (an Update that comes due while a ring waits for its
``#LWM2MACK`` shares it), one "DRG" before the De-registers. On disable the De-registers go in account
order (``DEREGISTERED`` each), then ``CLIENT_DISABLED``. A server that fails its registration retries
is left out; ``FORCE_EXIT`` comes only when no server is left registered or registering."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import events as ev
from . import formats as fmt
from . import objects
from .bootstrap import Bootstrap, BootstrapRecord
from .errors import AgentError, ValueRefused  # noqa: F401  (re-exported)
from .client import EXCHANGE_TIMEOUT, ClientError, CoapClient, default_port
from .coap import server_uri_problem
from .formats import link
from .models import ModelRegistry
from .registration import REGISTER_ATTEMPTS, RETRY_BACKOFF, Registration, ServerEntry  # noqa: F401
from .host_settings import HostSettings
from .objects.base import NOT_HANDLED
from .objects.server import DEFAULTS as SERVER_DEFAULTS
from .store import Store, StoreError
from ..modem.nvm import section_ok

if TYPE_CHECKING:
    from ..modem.owner import ModemOwner

log = logging.getLogger("emulator.lwm2m.agent")

DIS, WAIT, ACTIVE, IDLE, DEREG = "DIS", "WAIT", "ACTIVE", "IDLE", "DEREG"
LIST_LIMIT = 6


@dataclass(frozen=True)
class EnableParams:
    """The parameters of ``AT#LWM2MENA=1,...`` (guide 3.1.2): ``pdp_id`` the data context (1..6),
    ``mode`` 0 (no ACK) or 1 (ACK mode), ``guard_request_time`` / ``guard_release_time`` in seconds
    (1..100; module clock): how early a periodic Update or notification rings ahead of time, and
    how long the data context stays up after the last traffic. Iterates as the guide's tuple."""

    pdp_id: int = 1
    mode: int = 0
    guard_request_time: int = 5
    guard_release_time: int = 5

    def __iter__(self):
        return iter((self.pdp_id, self.mode, self.guard_request_time, self.guard_release_time))

    @property
    def ack_mode(self) -> bool:
        return self.mode == 1


RESUME = "lwm2m_resume"


@dataclass(frozen=True)
class ResumeRecord:
    """The agent was enabled with ``params`` when the server had the module reboot (/3/0/4, /3/0/5):
    at the next boot it enables itself again with them. NVM section ``lwm2m_resume``:
    ``[pdp_id, mode, guard_request_time, guard_release_time]``; this class is the only code that
    reads or writes it."""

    params: EnableParams

    @classmethod
    def load(cls, nvm: Any) -> "ResumeRecord | None":
        """The record NVM keeps; None when none is kept or it has the wrong shape."""
        stored = nvm.get(RESUME)
        if stored is None:
            return None
        if not section_ok(RESUME, stored):
            log.warning("the agent's resume record in NVM has the wrong shape: ignored")
            return None
        return cls(EnableParams(*stored))

    def save(self, nvm: Any) -> None:
        nvm.set(RESUME, list(self.params))

    @staticmethod
    def clear(nvm: Any) -> None:
        nvm.delete(RESUME)


SHUTDOWN_BUDGET = 2.0                 # real seconds a stopping emulator gives its Deregister


def _code(name: str):
    from aiocoap import numbers
    return getattr(numbers.codes.Code, name)




class Agent:
    """The module's LwM2M client (guide 3.1), owned by its :class:`Modem` (``modem.agent``), which
    calls :meth:`power_on` / :meth:`power_off` at power on/off and reboot. ``factory_server`` is the
    server of a factory-fresh module as ``"URI|B"`` (B = 1: a bootstrap server), else the profile's.
    ``failure`` is the cause when the agent could not start at power-on (see :meth:`fail`).

    State: ``status`` one of DIS / WAIT / ACTIVE / IDLE / DEREG (guide 3.1.1, #LWM2MSTAT), ``enabled``,
    ``params`` (:class:`EnableParams` of #LWM2MENA; times in seconds of the modem clock),
    ``registrations`` (one :class:`~.registration.Registration` per DM server account, account
    order), ``bootstrap`` (the :class:`~.bootstrap.Bootstrap` under way), ``store``, ``objects``
    (behaviour by object id), ``monitor`` (#LWM2MMON object ids, at most LIST_LIMIT), ``nfy_uris``
    ((object, instance, resource) of #LWM2MNFYACKURI, at most LIST_LIMIT), ``host_settings`` (what
    the host keeps in NVM). Host calls (:meth:`enable`, :meth:`disable`, :meth:`ack`,
    :meth:`host_set`) raise :class:`AgentError` / :class:`ValueRefused`; everything the host sees
    leaves as typed events (:meth:`emit`, emulator/lwm2m/events.py)."""

    def __init__(self, modem: "ModemOwner", *, factory_server: str | None = None):
        self.modem = modem
        self.factory_server = factory_server
        self.failure: str | None = None
        self.clock = modem.clock
        self.enabled = False
        self.status = DIS
        self.params = EnableParams()
        self.after_disable = False            # #LWM2MGETSTAT: "DIS" (bare) right after a disable
        self.force_exited = False
        self.busy_until = -1.0
        self.monitor: list[int] = []
        self.nfy_uris: list[tuple[int, int, int]] = []
        self.nfy_enabled = False
        self.models: ModelRegistry | None = None
        self.store: Store | None = None
        self.registrations: list[Registration] = []     # one per DM server account, account order
        self.bootstrap: Bootstrap | None = None          # while a bootstrap runs
        self._task: asyncio.Task | None = None
        self._ack: asyncio.Future | None = None
        self._release_timer = None
        self._activated_pdp: int | None = None
        self._ring_task: asyncio.Task | None = None
        self._disable_task: asyncio.Task | None = None
        self._closing: set[asyncio.Task] = set()
        self._pending_notify: list = []
        self._stored_notify: list = []
        self.configured: ServerEntry | None = None
        self.bootstrapped: BootstrapRecord | None = None   # what the last bootstrap provisioned
        self.server: ServerEntry | None = None
        self.endpoint = ""
        self.keys: dict[str, str] = {}       # #LWM2MINJKEYS as read at power-on (ep, identity, key)
        self.host_settings = HostSettings(modem.nvm)
        self.model_errors: list[str] = []
        self.fota = None
        self.objects: dict[int, objects.LwM2MObject] = {}   # behaviour by object id (objects/)
        self.listeners: list = []            # fn(event) for every typed event (emulator/lwm2m/events.py)
        modem.events.subscribe("registration", self._on_network)
        modem.events.subscribe("power", self._on_power)
        modem.pdp.users.append(lambda cid: self.enabled and self.params.pdp_id == cid)   # held while enabled

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
        if self.host_settings.apply_pending_server():      # #LWM2MSTS takes effect at this boot
            BootstrapRecord.clear(nvm)     # a new server: bootstrap again if it is a bootstrap server
        self.configured = self._server_entry()
        self.keys = {k: v for k, v in vars(self.host_settings.keys).items() if v is not None}
        boot = BootstrapRecord.load(nvm)
        if self.configured.bootstrap and boot and boot.bs == self.configured.uri:
            self.bootstrapped = boot
            self.server = self._bootstrapped_servers()[0]
        else:
            self.server = self.configured
            self.bootstrapped = None
        self.endpoint = self.keys.get("ep") or self.cfg.get("endpoint") or self.modem.profile["identity"]["imei"]
        self.models = ModelRegistry.for_modem([self.modem.fs.xml_dir()])
        self.model_errors = list(self.models.errors)
        self.objects = objects.for_agent(self)
        self.store = self._build_store()
        self.fota = self._make_fota()
        self.enabled, self.status, self.after_disable = False, DIS, False
        self.force_exited = False
        self.monitor, self.nfy_uris, self.nfy_enabled = [], [], False
        self.registrations, self.bootstrap = [], None
        self._pending_notify: list = []
        self._stored_notify: list = []
        resume = ResumeRecord.load(nvm)
        ResumeRecord.clear(nvm)
        if resume:                        # a reboot the server asked for: the agent comes back by itself
            self.modem.clock.call_later(0, lambda: self._resume(resume.params))

    def fail(self, cause: str) -> None:
        """The agent could not start at this boot: it stays disabled with nothing half-built (no
        store, client or task); enabling it only reports CLIENT_DISABLED (see commands/lwm2m.py)."""
        self.power_off()
        self.failure = cause
        self.models = self.store = self.fota = None
        self.model_errors = []

    def _bootstrapped_servers(self) -> list[ServerEntry]:
        """The DM server accounts of the last bootstrap (NVM, emulator/lwm2m/bootstrap.py), in
        account order."""
        boot = self.bootstrapped
        return [ServerEntry(rec.uri, False, rec.ssid) for rec in boot.servers] if boot else []

    # ------------------------------------------------------------------ compatibility views
    @property
    def registered(self) -> bool:
        """Registered with at least one server."""
        return any(r.registered for r in self.registrations)

    @property
    def client(self) -> CoapClient | None:
        """The CoAP client of the first registration (or of the bootstrap under way): the one a FOTA
        pull uses."""
        for r in self.registrations:
            if r.client is not None:
                return r.client
        return self.bootstrap.client if self.bootstrap is not None else None

    @property
    def site(self):
        """The site of the first registration (or of the bootstrap under way), None when neither."""
        if self.registrations:
            return self.registrations[0].site
        return self.bootstrap.site if self.bootstrap is not None else None

    def sites(self) -> list:
        """Every server-facing site now: the bootstrap's and each registration's."""
        out = [r.site for r in self.registrations]
        if self.bootstrap is not None:
            out.insert(0, self.bootstrap.site)
        return out

    def live_changed(self, path: tuple) -> None:
        """A live (module-computed) value at ``path`` = (object, instance, resource) changed, e.g. the
        signal strength /4/0/2 after a radio change: its observers at every server notify."""
        for site in self.sites():
            site.changed(tuple(path[:3]))

    def _drop_observations(self) -> None:
        for site in self.sites():
            site.drop_observations()

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
        self._activated_pdp = None              # the modem drops every context itself
        self.after_disable = False
        self._pending_notify, self._stored_notify = [], []
        self._close_all()
        self.enabled, self.status = False, DIS

    def _close_all(self, deregister_within: float | None = None) -> None:
        for reg in self.registrations:
            reg.close(deregister_within)
        self.registrations = []
        if self.bootstrap is not None:
            self.bootstrap.close()
            self.bootstrap = None

    def close_client(self, client: CoapClient, deregister_within: float | None = None) -> None:
        """Close ``client`` in the background (after a De-register bounded by ``deregister_within`` real
        seconds, when given); :meth:`closed` waits for it."""
        self._close_later(client, deregister_within)

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
        self._close_all(deregister_within=budget)
        self.power_off()

    async def closed(self) -> None:
        """Wait until the CoAP clients closed by :meth:`power_off` / :meth:`shutdown` are closed."""
        while self._closing:
            await asyncio.gather(*list(self._closing), return_exceptions=True)

    def _server_entry(self) -> ServerEntry:
        """The configured server: #LWM2MSTS (NVM), else --lwm2m-server, else the profile's default.

        An entry that is not a usable URI (NVM written by an older version, a bad profile) is reported
        on stderr and skipped, as if it had not been configured."""
        ssid = int(self.cfg["default_ssid"])
        candidates = []
        stored = self.host_settings.server
        if stored is not None:
            candidates.append(("the server entry the host set (NVM)", stored.uri, stored.bootstrap))
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
        if self.bootstrapped:                 # the accounts the last bootstrap provisioned
            for n, rec in enumerate(self.bootstrapped.servers):
                uri, ssid = rec.uri, rec.ssid
                store.create_instance(0, n, {0: uri, 1: False, 2: 0 if uri.startswith("coaps://") else 3,
                                             3: bytes.fromhex(rec.identity), 4: b"",
                                             5: bytes.fromhex(rec.key), 10: ssid})
                store.create_instance(1, n, {**SERVER_DEFAULTS, 0: ssid,
                                             1: int(rec.lifetime or self.cfg["lifetime"]),
                                             7: rec.binding or "U"})
        else:
            store.create_instance(0, 0, {0: srv.uri, 1: srv.bootstrap, 2: 0 if srv.secure else 3,
                                         3: self.keys.get("identity", "").encode(), 4: b"", 5: b"",
                                         10: srv.ssid})
            if not srv.bootstrap:
                store.create_instance(1, 0, {**SERVER_DEFAULTS, 0: srv.ssid, 1: int(self.cfg["lifetime"])})
        for obj in self.objects.values():          # each object's default instances and live values
            obj.populate(store)
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

    def _on_store_change(self, path: tuple, source: str) -> None:
        oid = path[0]
        if oid in self.monitor and source in ("host", "server"):
            self.emit(ev.MonitorUpdate(tuple(path[:4])))
        for site in self.sites():
            site.changed(path[:3])

    def _on_power(self, what: str = "") -> None:
        """Battery or charger changed: observers of the resources that still follow it notify."""
        if self.store is None:
            return
        for rid in (7, 9, 20):
            if (3, 0, rid) in self.store.live:
                self.live_changed((3, 0, rid))

    def _on_structure_change(self, path: tuple, event: str) -> None:
        """An instance came or went (host, server or module): the object's observations notify, an
        observation of a deleted instance ends, and the registration's links are updated."""
        for site in self.sites():
            site.structure_changed(path, event)
        self.request_update(links=True)

    # ================================================================== events
    def emit(self, event: ev.Event) -> None:
        """Announce ``event`` (emulator/lwm2m/events.py): to ``listeners``, then on the modem's bus as
        ``"lwm2m"`` (where the AT layer turns it into URC text). Synchronous, in emission order."""
        for fn in list(self.listeners):
            try:
                fn(event)
            except Exception:
                log.exception("listener of %s failed", event.kind)
        self.modem.events.emit("lwm2m", event=event.kind, lwm2m=event, **event.fields())

    def _server_event(self, cls, srv: "ServerEntry | None" = None, **kw) -> None:
        srv = srv or self.server
        self.emit(cls(srv.ssid, srv.uri, **kw))

    # ================================================================== host commands
    @property
    def busy(self) -> bool:
        return self.clock.now() < self.busy_until

    def _start_busy(self) -> None:
        self.busy_until = self.clock.now() + float(self.cfg.get("busy_window", 0.5))

    def enable(self, pdp: int, mode: int, greq: int, grel: int) -> None:
        """#LWM2MENA=1 (guide 3.1.2): start the session in the background (busy window, data context,
        ACK-mode "REG" ring, bootstrap, registrations). Raises AgentError when already enabled, after a
        FORCE_EXIT (until a reboot) or when context ``pdp`` is not defined."""
        if self.enabled or self.force_exited:
            raise AgentError("already enabled")
        if pdp not in self.modem.pdp.contexts:
            raise AgentError("context not defined")
        self.params = EnableParams(pdp, mode, greq, grel)
        self.enabled, self.after_disable = True, False
        self.status = ACTIVE if mode == 0 else WAIT
        self._start_busy()
        self._task = asyncio.ensure_future(self._session())

    def disable(self) -> None:
        """#LWM2MENA=0: ring "DRG" in ACK mode outside the active window, De-register from every server
        in account order, then CLIENT_DISABLED after the busy window. Nothing when not enabled."""
        if not self.enabled or (self._disable_task and not self._disable_task.done()):
            return
        self._start_busy()
        self._disable_task = asyncio.ensure_future(self._disable(self._task))

    def ack(self) -> None:
        """#LWM2MACK (guide 3.1.3): answer the pending ring. Raises AgentError when none waits."""
        if self.status != WAIT or self._ack is None or self._ack.done():
            raise AgentError("nothing to acknowledge")
        self._ack.set_result(None)

    # ================================================================== the session
    async def _wait_ack(self, what: str) -> None:
        """Ring (ACK mode) and wait for #LWM2MACK. A ring already waiting is shared: one ring covers
        every server of a phase."""
        if self._ack is not None and not self._ack.done():
            await asyncio.shield(self._ack)
            return
        self.status = WAIT
        self._ack = asyncio.get_running_loop().create_future()
        self.emit(ev.Ring(what))
        await self._ack
        self._ack = None

    async def await_active(self, what: str) -> None:
        """A registration wants to send (``what``: "UPD" ...): in ACK mode outside the active window,
        ring and wait for the host's ACK first; then the window is (re)opened."""
        if self.params.ack_mode and self.status != ACTIVE:
            await self._wait_ack(what)
            self._set_active()

    def guard_lead(self) -> float:
        """How early (seconds) a periodic Update starts: <guardRequestTime> in ACK mode, else 0."""
        return float(self.params.guard_request_time) if self.params.ack_mode else 0.0

    async def _bring_up_pdp(self) -> None:
        pdp = self.modem.pdp
        cid = self.params.pdp_id
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

    def links(self) -> str:
        """The object links of a Register / Update (every object but /0), with versions other than 1.0."""
        objs = {oid: iids for oid, iids in self.store.links().items() if oid != 0}
        return link.registration_links(objs, lambda oid: self.models.get(oid).version
                                       if self.models.get(oid) and self.models.get(oid).version != "1.0" else None)

    def accounts(self) -> list[ServerEntry]:
        """The DM server accounts in the store, in Security (/0) instance order: a /0 instance that is
        not a bootstrap server, with a usable URI, and the /1 instance with its Short Server ID."""
        store = self.store
        out = []
        for sec in sorted(store.instance_ids(0)):
            try:
                if store.get(0, sec, 1):
                    continue
                uri, ssid = str(store.get(0, sec, 0)), int(store.get(0, sec, 10))
            except (StoreError, TypeError, ValueError):
                continue
            if server_uri_problem(uri) is not None:
                continue
            for srv in sorted(store.instance_ids(1)):
                try:
                    if int(store.get(1, srv, 0)) == ssid:
                        out.append(ServerEntry(default_port(uri), False, ssid, sec, srv))
                        break
                except (StoreError, TypeError, ValueError):
                    continue
        return out

    async def _session(self) -> None:
        try:
            await self.clock.sleep(float(self.cfg.get("busy_window", 0.5)))
            await self._bring_up_pdp()
            if self.params.ack_mode:
                await self._wait_ack("REG")
                self._set_active()
            if self.server.bootstrap:
                self.bootstrap = Bootstrap(self, self.server)
                servers = await self.bootstrap.run()
                self.bootstrap = None
                if not servers:
                    self.emit(ev.ForceExit())
                    self._stop(force_exit=True)
                    return
                record = BootstrapRecord.from_records(servers)
                record.save(self.modem.nvm)          # the next boot registers directly
                self.bootstrapped = record
                if self.params.ack_mode:
                    self.emit(ev.End())
            accounts = self.accounts()
            if not accounts:
                accounts = [self.server] if not self.server.bootstrap else []
            if not accounts:
                self._give_up()
                return
            self.server = accounts[0]
            self.registrations = [Registration(self, srv) for srv in accounts]
            for reg in self.registrations:           # REGISTERING in account order, then all at once
                self.emit(ev.Registering(reg.server.ssid, reg.server.uri))
            for reg in self.registrations:
                reg.task = asyncio.ensure_future(reg.run(announce=False))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("agent session failed")
            self.emit(ev.ClientDisabled())
            self._stop()

    def registration_failed(self, reg: Registration) -> None:
        """``reg`` failed its registration retries: it is left out; with no server left registered or
        registering the agent gives up (FORCE_EXIT)."""
        reg.close()
        others = [r for r in self.registrations if r is not reg and (r.registered or (r.task and not r.task.done()))]
        if not others and self.enabled:
            self._give_up()

    def _give_up(self) -> None:
        """Registration failed after its retries: FORCE_EXIT; only a reboot brings the agent back."""
        self.emit(ev.ForceExit())
        self.emit(ev.ClientDisabled())
        self._stop(force_exit=True)

    def psk_for(self, server: ServerEntry) -> tuple[bytes, bytes] | None:
        """PSK identity and key for a coaps:// server: from its Security instance (bootstrap result),
        else #LWM2MINJKEYS; None for coap://."""
        if not server.secure:
            return None
        for iid in self.store.instance_ids(0):
            try:
                uri = self.store.get(0, iid, 0)
                if uri and server_uri_problem(str(uri)) is None and default_port(uri) == server.uri:
                    ident, key = self.store.get(0, iid, 3), self.store.get(0, iid, 5)
                    if ident and key:
                        return bytes(ident), bytes(key)
            except StoreError:
                continue
        if self.keys.get("identity") and self.keys.get("key"):
            from .client import psk_key_bytes
            return self.keys["identity"].encode(), psk_key_bytes(self.keys["key"])
        return None

    def registration_for(self, server_iid: int) -> Registration | None:
        """The registration whose account uses Server instance /1/``server_iid``."""
        for reg in self.registrations:
            if reg.server_iid == server_iid:
                return reg
        return None

    def request_update(self, links: bool = False) -> None:
        """Every registered server gets an Update soon (with the object links when ``links``)."""
        for reg in self.registrations:
            if reg.registered:
                reg.request_update(links)

    def _set_active(self) -> None:
        self.status = ACTIVE
        pending, self._pending_notify = self._pending_notify, []
        for obs in pending:
            obs.send()

    # ------------------------------------------------------------------ notifications
    def notify_due(self, obs) -> None:
        """An observation has a notification to send: now, after a "NOT" ring, or stored."""
        reg = getattr(obs.site, "registration", None)
        registered = reg.registered if reg is not None else self.registered
        if not registered or not self.modem.network.registered:
            storing = reg.storing() if reg is not None else False
            if storing and obs not in self._stored_notify:
                self._stored_notify.append(obs)
            return
        if self.params.ack_mode and self.status != ACTIVE:
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
        return float(self.params.guard_request_time) if self.enabled and self.params.ack_mode else 0.0

    def wants_con(self, path: tuple) -> bool:
        mode = self.cfg.get("notify_con", "listed")
        if mode == "always":
            return True
        if mode == "never":
            return False
        return len(path) >= 3 and tuple(path[:3]) in self.nfy_uris

    def notify_result(self, ssid: int, path: tuple, result: str) -> None:
        """A confirmable notification to server ``ssid`` ended in ``result`` ("ACK" / "NACK")."""
        try:
            o, i, r = (int(x) for x in path[:3])
        except ValueError:
            return
        if self.nfy_enabled and (o, i, r) in self.nfy_uris:
            self.emit(ev.NotifyAck(ssid, (o, i, r), result))

    # ------------------------------------------------------------------ guard release (ACK mode)
    def release_later(self) -> None:
        """ACK mode: (re)start the <guardReleaseTime> timer after traffic."""
        self._release_later()

    def _release_later(self) -> None:
        if not self.params.ack_mode:
            return
        self._cancel_release()
        self._release_timer = self.clock.call_later(float(self.params.guard_release_time), self._release)

    def _cancel_release(self) -> None:
        if self._release_timer:
            self._release_timer.cancel()
            self._release_timer = None

    def _release(self) -> None:
        self._release_timer = None
        if self.enabled and self.status == ACTIVE:
            self.emit(ev.End())
            self.status = IDLE

    def server_activity(self) -> None:
        """A server request arrived: in ACK mode it keeps the active window open."""
        if self.params.ack_mode and self.status == ACTIVE and self._release_timer:
            self._release_later()

    # ------------------------------------------------------------------ disable / stop
    async def _disable(self, session: asyncio.Task | None) -> None:
        if self.params.ack_mode and self.status in (IDLE, WAIT) and self.registered:
            if session and not session.done():
                session.cancel()
            self._cancel_release()
            for reg in self.registrations:
                if reg.task and not reg.task.done():
                    reg.task.cancel()
            if self._ack is not None and not self._ack.done():
                self._ack.cancel()
            self._ack = None
            await self._wait_ack("DRG")
        elif session and not session.done():
            session.cancel()
        self._cancel_release()
        self.status = DEREG
        if self.bootstrap is not None:
            self.bootstrap.close()
            self.bootstrap = None
        for reg in list(self.registrations):          # account order
            if await reg.deregister(timeout=EXCHANGE_TIMEOUT):
                self.emit(ev.Deregistered(reg.server.ssid, reg.server.uri))
        # the module then releases its data context: a short while still in DEREG
        await self.clock.sleep(float(self.cfg.get("busy_window", 0.5)))
        self.emit(ev.ClientDisabled())
        self._stop()
        self.after_disable = True

    def _stop(self, force_exit: bool = False) -> None:
        if self._ring_task and not self._ring_task.done():
            self._ring_task.cancel()
        self._pending_notify, self._stored_notify = [], []
        self.enabled = False
        self.status = DIS
        self.force_exited = self.force_exited or force_exit
        self._cancel_release()
        if self._activated_pdp is not None:
            self.modem.pdp.deactivate(self._activated_pdp)
            self._activated_pdp = None
        self._close_all()

    # ================================================================== server-side hooks
    # ------------------------------------------------------------------ the module's clock in /3/0
    def check_server_write(self, path: tuple, value: Any):
        """Whether a server Write may be applied, before anything of the request is stored: the object's
        rule (objects/) gives a CoAP code to refuse it with, or None."""
        obj = self.objects.get(path[0])
        return obj.check_write(path, value) if obj is not None else None

    def server_write(self, path: tuple, value: Any):
        """A Write from the server to one resource; returns a CoAP code to answer, or None (2.04)."""
        oid, iid, rid = path
        obj = self.objects.get(oid)
        if obj is not None:
            done = obj.write(path, value)
            if done is not NOT_HANDLED:
                return done
        # values of the host's own instances are "Auto" settings: a server write to them is kept too
        self.store.set(oid, iid, rid, value, source="server", persist=(oid, iid) in self.store.user_instances)
        return None

    def server_execute(self, path: tuple, args: str):
        """An Execute from the server (or #LWM2ME); returns a CoAP code to answer, or None (2.04)."""
        obj = self.objects.get(path[0])
        if obj is not None:
            done = obj.execute(path, args)
            if done is not NOT_HANDLED:
                return done
        self.emit(ev.Execute(tuple(path), args))
        return None

    def binding_supported(self, binding: str) -> bool:
        """A 1.0 binding mode the device supports (/3/0/16); see objects/server.py."""
        return self.objects[1].binding_supported(binding)

    def reboot_and_resume(self, delay: float = 0.2) -> None:
        """Reboot the module (after the CoAP answer has left); the agent re-enables itself at boot."""
        if self.enabled:
            ResumeRecord(self.params).save(self.modem.nvm)
        self.clock.call_later(delay, self.modem.reboot)

    async def suspend(self, reg: Registration) -> None:
        """/1/x/4 Disable: the registration deregisters, stays away /1/x/5 seconds, registers again."""
        try:
            await reg.suspend()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("suspend failed")

    # ------------------------------------------------------------------ bootstrap (bootstrap.py)
    def bootstrap_write(self, path, cf, payload):
        return self.bootstrap.write(path, cf, payload) if self.bootstrap else _code("METHOD_NOT_ALLOWED")

    def bootstrap_delete(self, path):
        return self.bootstrap.delete(path) if self.bootstrap else _code("METHOD_NOT_ALLOWED")

    def bootstrap_finish(self):
        return self.bootstrap.finish() if self.bootstrap else _code("METHOD_NOT_ALLOWED")

    # ================================================================== host access helpers
    def host_set(self, path: tuple, value: Any) -> None:
        """#LWM2MW / #LWM2MSET of ``path`` (object, instance, resource, resource instance or None).
        Raises :class:`ValueRefused` for a value the resource cannot take."""
        oid, iid, rid, riid = path
        obj = self.objects.get(oid)
        if obj is not None and obj.host_write(path, value) is not NOT_HANDLED:
            return
        self.store.host_write(oid, iid, rid, value, riid)
