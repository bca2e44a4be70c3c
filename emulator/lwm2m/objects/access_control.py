"""LwM2M Access Control (/2, LwM2M 1.0.2 E.3): not for the host nor for a DM server's Create."""
from __future__ import annotations

from .base import LwM2MObject, register


@register
class AccessControl(LwM2MObject):
    oid = 2
    host_access = False
    dm_create = False
