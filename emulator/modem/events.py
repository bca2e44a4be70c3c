"""A small synchronous event bus: the modem's parts announce what happened; the AT families turn that
into URCs, and tests or scenarios may listen too."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger("emulator.events")


class EventBus:
    """Named channels of keyword events, synchronous, in subscription order. ``subscribe(name, fn)``
    returns a function that unsubscribes; ``"*"`` listeners get every event as ``fn(name, **data)``.
    A failing listener is logged and skipped. Channels: "registration" (stat), "pdp" (cid, active),
    "power" (what), "power_on", "power_off", "shutdown", "nvm_problem" (text), and "lwm2m"
    (``event`` = the kind, ``lwm2m`` = the typed event of emulator/lwm2m/events.py, and its fields)."""

    def __init__(self):
        self._subs: dict[str, list[Callable[..., Any]]] = defaultdict(list)

    def subscribe(self, name: str, fn: Callable[..., Any]) -> Callable[[], None]:
        self._subs[name].append(fn)
        return lambda: self._subs[name].remove(fn) if fn in self._subs[name] else None

    def emit(self, name: str, **data: Any) -> None:
        calls = [(fn, ()) for fn in self._subs.get(name, ())]
        calls += [(fn, (name,)) for fn in self._subs.get("*", ())]
        for fn, args in calls:
            try:
                fn(*args, **data)
            except Exception:
                log.exception("listener of %s failed", name)
