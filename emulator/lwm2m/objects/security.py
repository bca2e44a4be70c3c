"""LwM2M Security (/0, LwM2M 1.0.2 E.1): server URIs and keys. Only the bootstrap server touches it;
its instances are made by the agent (server accounts) and by Bootstrap-Write."""
from __future__ import annotations

from .base import LwM2MObject, register


@register
class Security(LwM2MObject):
    oid = 0
    host_access = False
    dm_access = False
    dm_create = False
    dm_delete = False
