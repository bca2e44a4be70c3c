"""The registration engine: one registration per LwM2M server account (a Security /0 instance and the
Server /1 instance with the same Short Server ID), each with its own CoAP client (own UDP socket), its
own site (observations and attributes of that server), lifetime, Updates and retries.

LwM2M 1.0.2 5.3 (Register, Update, De-register); guide 3.1.3 (the ``LWM2M-TLT`` events, which the
engine announces as typed events carrying its server's SSID and URI). The agent (agent.py) owns the
registrations, runs the DIS / WAIT / ACTIVE / IDLE / DEREG state machine and the ACK-mode rings around
them; a registration asks the agent for the data context (:meth:`Agent.await_active`) before it sends.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Protocol

from . import events as ev
from .client import EXCHANGE_TIMEOUT, ClientError, CoapClient
from .coap import NotifyTracker
from .site import Site
from .store import StoreError

log = logging.getLogger("emulator.lwm2m.registration")

REGISTER_ATTEMPTS = 3
RETRY_BACKOFF = (30.0, 60.0)          # seconds (module clock) between registration attempts


@dataclass(frozen=True)
class ServerEntry:
    """One server as the agent uses it: ``uri`` ``coap[s]://host:port`` (default port filled in),
    ``bootstrap`` True for a bootstrap server, ``ssid`` its Short Server ID (0 for a bootstrap server),
    ``security_iid`` / ``server_iid`` the /0 and /1 instances of its account in the store (None when
    not known yet)."""

    uri: str
    bootstrap: bool
    ssid: int
    security_iid: int | None = None
    server_iid: int | None = None

    @property
    def secure(self) -> bool:
        return self.uri.startswith("coaps://")


class RegistrationOwner(Protocol):
    """What a registration uses of the agent that owns it (emulator/lwm2m/agent.py ``Agent``)."""

    clock: Any
    store: Any
    cfg: dict
    endpoint: str

    def emit(self, event: Any) -> None: ...
    def links(self) -> str: ...
    def psk_for(self, server: "ServerEntry") -> tuple[bytes, bytes] | None: ...
    def close_client(self, client: CoapClient, deregister_within: float | None = None) -> None: ...
    def notify_result(self, ssid: int, path: tuple, result: str) -> None: ...
    def registration_failed(self, reg: "Registration") -> None: ...
    def release_later(self) -> None: ...
    def guard_lead(self) -> float: ...
    async def await_active(self, what: str) -> None: ...


class Registration:
    """The registration with one DM server (LwM2M 1.0.2 5.3). ``registered`` is True between a 2.01
    Register answer and a De-register / failed Update; ``task`` runs :meth:`run` (register, then the
    Update loop). Errors never leave :meth:`run`: a Register that fails its retries ends it with
    False and the agent decides (:meth:`Agent.registration_failed`)."""

    def __init__(self, agent: RegistrationOwner, server: ServerEntry):
        self.agent = agent
        self.server = server
        self.site = Site(agent, self)
        self.tracker = NotifyTracker(lambda path, result: agent.notify_result(self.server.ssid, path, result))
        self.client: CoapClient | None = None
        self.registered = False
        self.registering = False          # a Register is in flight (the server may already know us)
        self.task: asyncio.Task | None = None
        self._update_wanted: asyncio.Event | None = None
        self._update_links = False
        # what the server was last told (Register or Update): a change made while a request is in
        # flight is compared against it once the request completes, and sent in an Update then
        self._sent: tuple[str, int, str] | None = None

    def __repr__(self) -> str:
        return f"<Registration ssid={self.server.ssid} {self.server.uri} registered={self.registered}>"

    # ------------------------------------------------------------------ what the server is told
    @property
    def server_iid(self) -> int:
        """The /1 instance of this account (0 when the store has none with this SSID)."""
        store = self.agent.store
        if self.server.server_iid is not None and self.server.server_iid in store.instance_ids(1):
            return self.server.server_iid
        for iid in store.instance_ids(1):
            try:
                if int(store.get(1, iid, 0)) == self.server.ssid:
                    return iid
            except (StoreError, TypeError, ValueError):
                continue
        return 0

    def _server_value(self, rid: int, default: Any) -> Any:
        try:
            value = self.agent.store.get(1, self.server_iid, rid)
        except StoreError:
            return default
        return default if value is None else value

    def lifetime(self) -> int:
        """/1/x/1 in seconds (the profile's lifetime when unset or unusable)."""
        try:
            return int(self._server_value(1, self.agent.cfg["lifetime"]))
        except (TypeError, ValueError):
            return int(self.agent.cfg["lifetime"])

    def binding(self) -> str:
        """/1/x/7 ("U" when unset)."""
        return str(self._server_value(7, "U") or "U")

    def storing(self) -> bool:
        """/1/x/6: notifications are stored while the server cannot be reached."""
        return bool(self._server_value(6, False))

    def disable_timeout(self) -> float:
        """/1/x/5 in seconds: how long a /1/x/4 Disable keeps the client away (86400 when unset)."""
        try:
            return float(self._server_value(5, 86400) or 86400)
        except (TypeError, ValueError):
            return 86400.0

    def outdated(self) -> bool:
        """Object links, lifetime or binding differ from what the server was last told."""
        return (self.agent.links(), self.lifetime(), self.binding()) != self._sent

    # ------------------------------------------------------------------ client
    def _new_client(self) -> CoapClient:
        return CoapClient(self.agent.clock, self.site, tracker=self.tracker, psk=self.agent.psk_for(self.server),
                          link=self.agent.modem.link)

    def close(self, deregister_within: float | None = None) -> None:
        """Stop: cancel the task, forget observations and close the client in the background (after a
        De-register bounded by ``deregister_within`` real seconds, when given and registered)."""
        if self.task and not self.task.done() and self.task is not asyncio.current_task():
            self.task.cancel()
        self.task = None
        self.site.drop_observations()
        client, self.client = self.client, None
        was = self.registered
        self.registered = self.registering = False
        if client is not None:
            self.agent.close_client(client, deregister_within if was else None)

    # ------------------------------------------------------------------ life cycle
    async def register(self, announce: bool = True) -> bool:
        """Register, with up to REGISTER_ATTEMPTS attempts spaced by RETRY_BACKOFF (module clock).
        Emits Registering (when ``announce``), RegisterFailed per failed attempt, Registered."""
        if announce:
            self.agent.emit(ev.Registering(self.server.ssid, self.server.uri))
        for attempt in range(REGISTER_ATTEMPTS):
            if self.client is None:
                self.client = self._new_client()
            lifetime, links, binding = self.lifetime(), self.agent.links(), self.binding()
            # a new registration: the server forgot every observation, so do we; it may observe again
            # as soon as it has answered, even before its 2.01 is processed here
            self.site.drop_observations()
            self.registering = True
            try:
                await self.client.register(self.server.uri, self.agent.endpoint, lifetime, links, binding=binding)
            except ClientError as exc:
                self.registering = False
                log.info("registration attempt %d with %s failed: %s", attempt + 1, self.server.uri, exc)
                self.agent.emit(ev.RegisterFailed(self.server.ssid, self.server.uri, attempt + 1))
                if attempt + 1 < REGISTER_ATTEMPTS:
                    await self.agent.clock.sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
                continue
            self.registered, self.registering = True, False
            self._sent = (links, lifetime, binding)
            self.agent.emit(ev.Registered(self.server.ssid, self.server.uri))
            return True
        return False

    async def run(self, announce: bool = True) -> bool:
        """Register (with retries), then keep the registration alive until cancelled. False when the
        Register failed its retries (the agent was told through :meth:`Agent.registration_failed`)."""
        try:
            if not await self.register(announce):
                self.agent.registration_failed(self)
                return False
            self.agent.release_later()
            await self._update_loop()
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("registration with %s failed", self.server.uri)
            self.agent.registration_failed(self)
            return False

    def request_update(self, links: bool = False) -> None:
        """Send an Update soon (with the object links when ``links``)."""
        self._update_links = self._update_links or links
        if self._update_wanted is not None:
            self._update_wanted.set()

    async def _update_loop(self) -> None:
        agent = self.agent
        self._update_wanted = asyncio.Event()
        while True:
            if self.outdated():                     # changed while the last request was in flight
                self._update_wanted.set()
            due = max(1.0, self.lifetime() * 0.9)
            try:
                await agent.clock.wait_for(self._update_wanted.wait(), max(0.5, due - agent.guard_lead()))
            except asyncio.TimeoutError:
                pass
            self._update_wanted.clear()
            await agent.await_active("UPD")
            forced, self._update_links = self._update_links, False
            lifetime, binding, links = self.lifetime(), self.binding(), agent.links()
            sent_links, sent_lifetime, sent_binding = self._sent or (None, None, None)
            try:
                await self.client.update(lifetime=lifetime if lifetime != sent_lifetime else None,
                                         binding=binding if binding != sent_binding else None,
                                         links=links if forced or links != sent_links else None)
                self._sent = (links, lifetime, binding)
                agent.emit(ev.Updated(self.server.ssid, self.server.uri))
            except ClientError as exc:
                log.info("update with %s failed (%s): registering again", self.server.uri, exc)
                self.registered = False
                if not await self.register():
                    agent.registration_failed(self)
                    return
            agent.release_later()

    async def deregister(self, timeout: float = EXCHANGE_TIMEOUT) -> bool:
        """De-register (when registered); True when a De-register was sent and answered 2.02."""
        if self.task and not self.task.done() and self.task is not asyncio.current_task():
            self.task.cancel()
        was, self.registered = self.registered, False
        self.site.drop_observations()
        if not was or self.client is None:
            return False
        try:
            await self.client.deregister(timeout=timeout)
        except ClientError as exc:
            log.info("deregister from %s failed: %s", self.server.uri, exc)
        return True

    async def suspend(self) -> None:
        """/1/x/4 Disable (LwM2M 1.0.2 E.2): De-register, stay away /1/x/5 seconds, register again."""
        timeout = self.disable_timeout()
        if self.registered and self.client is not None:
            try:
                await self.client.deregister()
            except ClientError:
                pass
        self.registered = False
        self.site.drop_observations()
        self.agent.emit(ev.Suspended(self.server.ssid, self.server.uri))
        await self.agent.clock.sleep(timeout)
        await self.run()
