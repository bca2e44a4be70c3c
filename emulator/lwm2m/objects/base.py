"""The base class of object behaviour and the registry by object id (see the package docstring)."""
from __future__ import annotations

from typing import Any, ClassVar

#: object id -> behaviour class; filled at import by :func:`register`, read-only afterwards
REGISTRY: dict[int, type["LwM2MObject"]] = {}

#: what :meth:`LwM2MObject.write` / :meth:`~LwM2MObject.execute` return when the generic store
#: handling applies (a plain value set, nothing to do for an Execute)
NOT_HANDLED = object()


def register(cls: type["LwM2MObject"]) -> type["LwM2MObject"]:
    """Class decorator: the behaviour of object ``cls.oid``."""
    if cls.oid in REGISTRY:
        raise ValueError(f"object {cls.oid} registered twice")
    REGISTRY[cls.oid] = cls
    return cls


class LwM2MObject:
    """Behaviour of one LwM2M object (ids and resources from its DDF model, emulator/lwm2m/models.py).

    Rules (class attributes; objects without a class get these defaults):
    ``host_access``: ``#LWM2MR`` / ``#LWM2MW`` / ``#LWM2ME`` may touch it (guide 3.1.5-3.1.7; else
    +CME ERROR 3). ``dm_access``: a DM server may operate on it (else 4.01 Unauthorized, LwM2M 1.0.2
    E.1); the bootstrap server may always. ``dm_create`` / ``dm_delete``: a DM server may Create /
    Delete its instances (else 4.05).

    Hooks (called by the agent with ``path`` = (object, instance, resource)); each returns a CoAP
    code (aiocoap ``Code``) to answer, None for 2.04, or :data:`NOT_HANDLED` for the generic handling:
    :meth:`check_write` (before anything of a request is stored), :meth:`write`, :meth:`execute`.
    :meth:`populate` creates the default instances and live values in a new store at power-on.
    """

    oid: ClassVar[int] = -1
    host_access: ClassVar[bool] = True
    dm_access: ClassVar[bool] = True
    dm_create: ClassVar[bool] = True
    dm_delete: ClassVar[bool] = True

    def __init__(self, agent: Any):
        self.agent = agent

    def populate(self, store: Any) -> None:
        """Create the object's default instances (and live values) in ``store``."""

    def check_write(self, path: tuple, value: Any) -> Any:
        return None

    def write(self, path: tuple, value: Any) -> Any:
        return NOT_HANDLED

    def execute(self, path: tuple, args: str) -> Any:
        return NOT_HANDLED

    def host_write(self, path: tuple, value: Any) -> Any:
        """A host write (#LWM2MW / #LWM2MSET) of ``path`` (4 ids); NOT_HANDLED for a plain store write.
        Raises emulator.lwm2m.agent.ValueRefused for a value the resource cannot take."""
        return NOT_HANDLED


def _rule(oid: int, name: str) -> bool:
    cls = REGISTRY.get(oid)
    return bool(getattr(cls or LwM2MObject, name))


def host_may(oid: int) -> bool:
    """The host (#LWM2MR/W/E) may touch object ``oid``."""
    return _rule(oid, "host_access")


def server_may(oid: int, bootstrapping: bool) -> bool:
    """A server may operate on object ``oid`` (the bootstrap server during bootstrap: always)."""
    return bootstrapping or _rule(oid, "dm_access")


def server_may_create(oid: int, bootstrapping: bool) -> bool:
    return bootstrapping or _rule(oid, "dm_create")


def server_may_delete(oid: int, bootstrapping: bool) -> bool:
    return bootstrapping or _rule(oid, "dm_delete")
