"""A small synchronous event bus: the modem's parts announce what happened; the AT families turn that
into URCs, and tests or scenarios may listen too."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import Any, Callable

log = logging.getLogger("emulator.events")


class EventBus:
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
