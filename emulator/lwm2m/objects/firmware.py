"""Firmware Update (/5, LwM2M 1.0.2 E.6): the state machine lives in emulator/lwm2m/fota.py
(:class:`~emulator.lwm2m.fota.FirmwareUpdate`, one per power-on, ``agent.fota``); this class owns the
object's default instance, its access rules (not for the host's #LWM2MR/W/E; no Create or Delete
from a server) and hands the server's Write / Execute to it."""
from __future__ import annotations

from typing import Any

from .base import NOT_HANDLED, LwM2MObject, register


@register
class FirmwareUpdateObject(LwM2MObject):
    oid = 5
    host_access = False
    dm_create = False

    def populate(self, store: Any) -> None:
        if 5 in store.models:
            store.create_instance(5, 0, {1: "", 3: 0, 5: 0, 9: 1})

    def write(self, path: tuple, value: Any) -> Any:
        fota = self.agent.fota
        return fota.on_write(path, value) if fota is not None else NOT_HANDLED

    def execute(self, path: tuple, args: str) -> Any:
        fota = self.agent.fota
        return fota.on_execute(path, args) if fota is not None else NOT_HANDLED
