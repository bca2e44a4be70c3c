"""One class per LwM2M object that has behaviour, registered by object id (Leshan's instance enablers,
Wakaama's object callbacks): each owns its default instances and live values, its Write / Execute
rules and who may touch it. Objects without a class here are data only: their XML model alone
defines them (and :class:`~.base.LwM2MObject`'s default rules apply).

Adding an object with behaviour: a new module here with a subclass of :class:`LwM2MObject`
decorated ``@register``, imported below.

Access rules, in one place (:func:`host_may`, :func:`server_may`, :func:`server_may_create`,
:func:`server_may_delete`): the class attributes of each object's class.
"""
from __future__ import annotations

from .base import REGISTRY, NOT_HANDLED, LwM2MObject, host_may, register, server_may, server_may_create, \
    server_may_delete  # noqa: F401
from . import access_control, apn, connectivity, device, firmware, location, security, server  # noqa: F401,E402


def for_agent(agent) -> dict[int, LwM2MObject]:
    """A fresh behaviour instance per registered object, for one agent (state is per modem)."""
    return {oid: cls(agent) for oid, cls in sorted(REGISTRY.items())}
