"""The bootstrap engine: client-initiated bootstrap (LwM2M 1.0.2 5.2.7) with one bootstrap server.

Bootstrap-Request (``POST /bs?ep=``), then the server's Bootstrap-Write / Bootstrap-Delete on /0 and /1
(applied to the store as they come), then its Bootstrap-Finish, which is accepted only when the store
then holds at least one usable DM server account (a /0 instance that is not a bootstrap server, with a
usable URI, and a /1 instance with its Short Server ID). Attempts are retried as registrations are;
``BOOTSTRAPPING`` / ``BOOTSTRAPPED`` (guide 3.1.3) leave as typed events.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiocoap import numbers

from . import events as ev
from . import formats as fmt
from .client import ClientError, CoapClient, default_port
from .coap import server_uri_problem
from .registration import REGISTER_ATTEMPTS, RETRY_BACKOFF, ServerEntry
from .site import Site
from .store import StoreError
from ..modem.nvm import section_ok

log = logging.getLogger("emulator.lwm2m.bootstrap")
C = numbers.codes.Code

BOOTSTRAP_FINISH_TIMEOUT = 120.0      # seconds (module clock) from the Request to the server's Finish


class BootstrapOwner(Protocol):
    """What the engine uses of the agent (emulator/lwm2m/agent.py)."""

    clock: Any
    store: Any
    cfg: dict
    endpoint: str

    def emit(self, event: Any) -> None: ...
    def psk_for(self, server: ServerEntry) -> tuple[bytes, bytes] | None: ...
    def close_client(self, client: CoapClient, deregister_within: float | None = None) -> None: ...


BOOTSTRAPPED = "lwm2m_bootstrapped"


@dataclass(frozen=True)
class ProvisionedServer:
    """One DM server account a bootstrap provisioned: ``uri`` (coap/coaps), ``ssid`` (1..65534),
    ``lifetime`` in seconds (None: the profile's), ``binding`` (None: ``"U"``), ``identity`` / ``key``
    the PSK identity and secret as hex (``""``: none)."""

    uri: str
    ssid: int
    lifetime: int | None = None
    binding: str | None = None
    identity: str = ""
    key: str = ""

    @classmethod
    def from_json(cls, rec: dict) -> "ProvisionedServer":
        """Raises KeyError / TypeError / ValueError for a record that is not usable."""
        lifetime = rec.get("lifetime")
        return cls(default_port(str(rec["uri"])), int(rec["ssid"]),
                   None if lifetime is None else int(lifetime),
                   None if rec.get("binding") is None else str(rec["binding"]),
                   str(rec.get("identity") or ""), str(rec.get("key") or ""))

    def to_json(self, bs: str) -> dict:
        out: dict[str, Any] = {"bs": bs, "uri": self.uri, "ssid": self.ssid}
        if self.lifetime is not None:
            out["lifetime"] = self.lifetime
        if self.binding is not None:
            out["binding"] = self.binding
        out["identity"], out["key"] = self.identity, self.key
        return out


@dataclass(frozen=True)
class BootstrapRecord:
    """What the last bootstrap provisioned, so that the next boot registers directly: ``bs`` the
    bootstrap server's URI, ``servers`` the DM server accounts in account order (at least one).

    NVM section ``lwm2m_bootstrapped`` (this module is the only code that reads or writes it): the
    first account's ``{"bs", "uri", "ssid", "lifetime", "binding", "identity", "key"}`` at the top
    level, further accounts under ``"more"`` (a list of such records)."""

    bs: str
    servers: tuple[ProvisionedServer, ...] = field(default_factory=tuple)

    @classmethod
    def from_records(cls, records: list[dict]) -> "BootstrapRecord":
        """From :func:`provisioned_servers`' records (at least one)."""
        return cls(str(records[0].get("bs", "")), tuple(ProvisionedServer.from_json(r) for r in records))

    @classmethod
    def load(cls, nvm: Any) -> "BootstrapRecord | None":
        """The record NVM keeps, None when none is kept or it is not usable (wrong shape, or its first
        server's URI is not usable: the module then bootstraps again). Unusable further accounts are
        left out."""
        stored = nvm.get(BOOTSTRAPPED)
        if stored is None:
            return None
        if not section_ok(BOOTSTRAPPED, stored):
            log.warning("the bootstrapped servers in NVM have the wrong shape: bootstrapping again")
            return None
        problem = server_uri_problem(str(stored["uri"]))
        if problem is not None:
            log.warning("the bootstrapped server in NVM is not a usable URI (%s): bootstrapping again", problem)
            return None
        try:
            first = ProvisionedServer.from_json(stored)
        except (KeyError, TypeError, ValueError):
            log.warning("the bootstrapped servers in NVM have the wrong shape: bootstrapping again")
            return None
        servers = [first]
        more = stored.get("more")
        for rec in more if isinstance(more, list) else []:
            try:
                servers.append(ProvisionedServer.from_json(rec))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        return cls(str(stored.get("bs", "")), tuple(servers))

    def to_json(self) -> dict:
        record = self.servers[0].to_json(self.bs)
        if len(self.servers) > 1:
            record["more"] = [s.to_json(self.bs) for s in self.servers[1:]]
        return record

    def save(self, nvm: Any) -> None:
        nvm.set(BOOTSTRAPPED, self.to_json())

    @staticmethod
    def clear(nvm: Any) -> None:
        """Forget it (a new server was configured: a bootstrap server is asked again)."""
        nvm.delete(BOOTSTRAPPED)


def provisioned_servers(store, cfg: dict, bs_uri: str) -> list[dict]:
    """The DM server accounts the store holds, in Security (/0) instance order, as the records the
    agent keeps in NVM: ``{"bs", "uri", "ssid", "lifetime", "binding", "identity", "key"}`` (identity and
    key as hex, lifetime in seconds). Accounts that are incomplete or unusable are left out."""
    out: list[dict] = []

    def opt(o, i, r, default=None):
        try:
            value = store.get(o, i, r)
        except StoreError:
            return default
        return default if value is None else value

    for iid in sorted(store.instance_ids(0)):
        try:
            if store.get(0, iid, 1):
                continue
            uri, ssid = store.get(0, iid, 0), int(store.get(0, iid, 10))
        except (StoreError, TypeError, ValueError):
            continue
        if server_uri_problem(str(uri)) is not None:
            continue
        for sid in sorted(store.instance_ids(1)):
            try:
                if int(store.get(1, sid, 0)) != ssid:
                    continue
                out.append({"bs": bs_uri, "uri": default_port(str(uri)), "ssid": ssid,
                            "lifetime": int(opt(1, sid, 1, cfg["lifetime"])),
                            "binding": str(opt(1, sid, 7, "U")),
                            "identity": bytes(opt(0, iid, 3, b"") or b"").hex(),
                            "key": bytes(opt(0, iid, 5, b"") or b"").hex()})
                break
            except (StoreError, TypeError, ValueError):
                continue
    return out


class Bootstrap:
    """One client-initiated bootstrap with ``server`` (a bootstrap server entry). :meth:`run` returns
    the provisioned DM server records (see :func:`provisioned_servers`), or None after the retries."""

    def __init__(self, agent: BootstrapOwner, server: ServerEntry):
        self.agent = agent
        self.server = server
        self.site = Site(agent)
        self.client: CoapClient | None = None
        self._finished: asyncio.Future | None = None

    async def run(self) -> list[dict] | None:
        agent = self.agent
        try:
            for attempt in range(REGISTER_ATTEMPTS):
                agent.emit(ev.Bootstrapping(self.server.ssid, self.server.uri))
                self._finished = asyncio.get_running_loop().create_future()
                self.site.bootstrapping = True
                if self.client is None:
                    self.client = CoapClient(agent.clock, self.site, psk=agent.psk_for(self.server),
                                             link=agent.modem.link)
                try:
                    await self.client.bootstrap_request(self.server.uri, agent.endpoint)
                    servers = await agent.clock.wait_for(asyncio.shield(self._finished), BOOTSTRAP_FINISH_TIMEOUT)
                except (ClientError, asyncio.TimeoutError) as exc:
                    log.info("bootstrap attempt %d failed: %s", attempt + 1, exc)
                    self.site.bootstrapping = False
                    if attempt + 1 < REGISTER_ATTEMPTS:
                        await agent.clock.sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
                    continue
                finally:
                    self._finished = None
                    self.site.bootstrapping = False
                agent.emit(ev.BootstrapDone(self.server.ssid, self.server.uri))
                return servers
            return None
        finally:
            self.close()

    def close(self) -> None:
        """Forget the session and close the bootstrap client (in the background)."""
        self.site.bootstrapping = False
        client, self.client = self.client, None
        if client is not None:
            self.agent.close_client(client)

    # ------------------------------------------------------------------ the server's operations
    def write(self, path: tuple, cf: int, payload: bytes):
        """Bootstrap-Write to /0 or /1 (object, instance or resource): creates what is missing.
        Returns the CoAP code to answer (2.04); FormatError / StoreError propagate (4.00 / 4.04)."""
        store = self.agent.store
        oid = path[0]
        types = store.types(oid)
        if len(path) == 1:
            items = list(fmt.decode(cf, path, payload, types).items())
        elif len(path) == 2:
            items = [(path[1], fmt.decode(cf, path, payload, types))]
        else:
            items = [(path[1], {path[2]: fmt.decode(cf, path[:3], payload, types)})]
        for iid, values in items:
            if iid not in store.objects.get(oid, {}):
                store.create_instance(oid, iid, values, source="server")
            else:
                for rid, v in values.items():
                    store.set(oid, iid, rid, v, source="server")
        return C.CHANGED

    def delete(self, path: tuple):
        """Bootstrap-Delete of /, /0, /1 or one of their instances; the bootstrap server's own
        account stays. Returns 2.02."""
        store = self.agent.store
        targets = [(oid, iid) for oid in store.objects for iid in store.instance_ids(oid)
                   if oid in (0, 1) and (not path or (path[0] == oid and (len(path) == 1 or path[1] == iid)))]
        for oid, iid in targets:
            try:
                if oid == 0 and store.get(0, iid, 1):
                    continue
            except StoreError:
                pass
            store.delete_instance(oid, iid)
        return C.DELETED

    def finish(self):
        """Bootstrap-Finish: 2.04 for a usable configuration (at least one DM account), else 4.06."""
        servers = provisioned_servers(self.agent.store, self.agent.cfg, self.server.uri)
        if not servers:
            return C.NOT_ACCEPTABLE
        if self._finished is not None and not self._finished.done():
            self._finished.set_result(servers)
        return C.CHANGED
