"""What the host configures for the LwM2M agent with AT commands and the module keeps in NVM (the
guide's "Auto" settings, 3.1): the server entry for the next boot (#LWM2MSTS) and the one in effect,
the endpoint name and PSK credentials (#LWM2MINJKEYS) and the FOTA consent mode (#LWM2MFOTACFG).

This record is the only code that reads or writes these NVM keys; the AT layer changes them through
it and the agent / FOTA read them through it. Keys (shape-checked by emulator/modem/nvm.py):
``lwm2m_server_pending`` (``"factory"`` or ``[uri, is_bootstrap]``), ``lwm2m_server`` (``[uri,
is_bootstrap]``, is_bootstrap 0 or 1; absent: the factory server), ``lwm2m_keys`` (``{"ep",
"identity", "key"}``, strings of at most 64 characters), ``lwm2m_fota_mode`` (0..3).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from ..modem.nvm import section_ok

log = logging.getLogger("emulator.lwm2m.host_settings")

PENDING_SERVER = "lwm2m_server_pending"
SERVER = "lwm2m_server"
KEYS = "lwm2m_keys"
FOTA_MODE = "lwm2m_fota_mode"


@dataclass(frozen=True)
class EndpointKeys:
    """#LWM2MINJKEYS: ``ep`` the endpoint name (None: the IMEI), ``identity`` / ``key`` the PSK identity
    and secret key as the host gave them (None when not set; the key maps to bytes by
    emulator/lwm2m/dtls.psk_bytes)."""

    ep: str | None = None
    identity: str | None = None
    key: str | None = None


@dataclass(frozen=True)
class ServerSetting:
    """The server #LWM2MSTS set, in effect since the boot after it was given: ``uri`` (coap/coaps)
    and whether it is a bootstrap server. None in its place means the factory server."""

    uri: str
    bootstrap: bool = False

    @classmethod
    def load(cls, nvm: Any) -> "ServerSetting | None":
        """The entry NVM keeps; None when none is kept or it has the wrong shape (then reported)."""
        stored = nvm.get(SERVER)
        if stored is None:
            return None
        if not section_ok(SERVER, stored):
            log.warning("the server entry the host set (NVM) has the wrong shape: ignored")
            return None
        return cls(str(stored[0]), bool(stored[1]))

    def save(self, nvm: Any) -> None:
        nvm.set(SERVER, [self.uri, int(self.bootstrap)])

    @staticmethod
    def clear(nvm: Any) -> None:
        """Back to the factory server."""
        nvm.delete(SERVER)


class HostSettings:
    """The agent's host-set NVM record (see the module docstring); ``nvm`` is the modem's NVM."""

    def __init__(self, nvm: Any):
        self.nvm = nvm

    # ------------------------------------------------------------------ #LWM2MSTS
    def set_pending_server(self, entry: list | str) -> None:
        """The server for the next boot: ``[uri, is_bootstrap]`` or ``"factory"`` (the factory server)."""
        self.nvm.set(PENDING_SERVER, entry)

    def take_pending_server(self) -> list | str | None:
        """The server entry set for this boot (then forgotten), or None."""
        pending = self.nvm.get(PENDING_SERVER)
        if pending is not None:
            self.nvm.delete(PENDING_SERVER)
        return pending

    def apply_pending_server(self) -> bool:
        """At boot: the entry #LWM2MSTS set for this boot takes effect (``"factory"``: the factory
        server again). True when one did (the caller then forgets what a bootstrap provisioned)."""
        pending = self.take_pending_server()
        if pending is None:
            return False
        if pending == "factory":
            ServerSetting.clear(self.nvm)
        elif section_ok(SERVER, pending):
            ServerSetting(str(pending[0]), bool(pending[1])).save(self.nvm)
        else:
            log.warning("the server entry set for this boot (NVM) has the wrong shape: ignored")
            return False
        return True

    @property
    def server(self) -> ServerSetting | None:
        """The server entry in effect, None for the factory server."""
        return ServerSetting.load(self.nvm)

    # ------------------------------------------------------------------ #LWM2MINJKEYS
    @property
    def keys(self) -> EndpointKeys:
        stored = self.nvm.get(KEYS) or {}
        return EndpointKeys(stored.get("ep"), stored.get("identity"), stored.get("key"))

    def save_keys(self, keys: EndpointKeys) -> None:
        """Keep ``keys`` (fields left None are not stored); effective at the next boot."""
        self.nvm.set(KEYS, {k: v for k, v in (("ep", keys.ep), ("identity", keys.identity), ("key", keys.key))
                            if v is not None})

    # ------------------------------------------------------------------ #LWM2MFOTACFG
    @property
    def fota_mode(self) -> int:
        """0 no consent asked, 1 before download, 2 before update, 3 both (guide 3.1.13)."""
        try:
            return int(self.nvm.get(FOTA_MODE, 0) or 0)
        except (TypeError, ValueError):
            return 0

    @property
    def fota_mode_set(self) -> int | None:
        """The mode the host set, None when never set (an omitted <mode> keeps it)."""
        return self.nvm.get(FOTA_MODE)

    def set_fota_mode(self, mode: int) -> None:
        self.nvm.set(FOTA_MODE, int(mode))
