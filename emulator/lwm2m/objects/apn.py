"""APN Connection Profile (/11, OMA object 11): the module's two profiles, "default" and "lwm2m"."""
from __future__ import annotations

from typing import Any

from .base import LwM2MObject, register


@register
class ApnConnectionProfile(LwM2MObject):
    """APN Connection Profile (/11): the module's two profiles, "default" and "lwm2m"."""

    oid = 11

    def populate(self, store: Any) -> None:
        if 11 in store.models:
            store.create_instance(11, 0, {0: "default", 1: ""})
            store.create_instance(11, 1, {0: "lwm2m", 1: ""})
