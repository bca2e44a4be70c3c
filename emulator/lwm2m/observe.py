"""Observations and their notifications, on the modem clock.

Each server observation of a path applies the LwM2M 1.0 attributes in force for it (pmin, pmax, gt,
lt, st: resource over instance over object, the server object's default periods otherwise):
notifications are spaced by pmin, sent at least every pmax, and on numeric resources filtered by the
gt/lt crossings and the st step. Resources the module computes (time, signal, free memory) are polled
at the pmin period. In the agent's ACK mode a notification due while the data context is released
first rings #LWM2MRING: "NOT". Confirmable notifications of URIs in the notify-ack list end in
#LWM2MNFYACK "ACK" or "NACK" (seen in aiocoap's message layer by coap.NotifyTracker).
"""
from __future__ import annotations

import logging
from typing import Any, Protocol

from .events import Notified


class ObservedSite(Protocol):
    """What an observation needs of the site that accepted it (emulator/lwm2m/site.py ``Site``)."""

    agent: Any                      # the site's owner: clock, notify_due(), emit()
    ssid: int                       # the server the site serves
    store: Any
    attributes: dict

    def _read_node(self, path: tuple) -> Any: ...
    def notification(self, obs: "Observation") -> Any: ...

log = logging.getLogger("emulator.lwm2m.observe")

ATTRS = ("pmin", "pmax", "gt", "lt", "st")


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return None


def consistent(a: dict[str, float]) -> bool:
    """gt/lt/st that contradict each other (lt not below gt, or lt + 2*st not below gt) are ignored
    as a set: each change then notifies, as without change conditions. (pmax below pmin is ignored
    in _arm: no periodic notification.)"""
    if "lt" in a and "gt" in a:
        if a["lt"] >= a["gt"]:
            return False
        if "st" in a and a["lt"] + 2 * a["st"] >= a["gt"]:
            return False
    return True


class Observation:
    def __init__(self, site: ObservedSite, path: tuple, servobs, request):
        self.site = site
        self.path = path
        self.servobs = servobs
        self.request = request
        self.last_time = site.agent.clock.now()
        self.last_value = self._value()
        self._due_timer = None
        self._pmax_timer = None
        self._poll_timer = None
        self.active = True
        self._arm()

    # ------------------------------------------------------------------ attributes
    @property
    def clock(self):
        return self.site.agent.clock

    def attrs(self) -> dict[str, float]:
        out: dict[str, float] = {}
        store = self.site.store
        for key in ("pmin", "pmax"):     # defaults from the server object (/1/x/2 and /1/x/3)
            rid = 2 if key == "pmin" else 3
            try:
                v = store.get(1, getattr(self.site, "server_iid", 0), rid)
                if v is not None and v != 0:
                    out[key] = float(v)
            except Exception:
                pass
        for n in range(1, len(self.path) + 1):
            for k, v in self.site.attributes.get(self.path[:n], {}).items():
                out[k] = float(v)
        return out

    def _value(self) -> Any:
        try:
            return self.site._read_node(self.path)
        except Exception:
            return None

    def _live(self) -> bool:
        live = self.site.store.live
        p = self.path
        return any(k[:len(p)] == p[:3] or (len(p) < 3 and k[:len(p)] == p) for k in live)

    # ------------------------------------------------------------------ timers
    def _arm(self) -> None:
        a = self.attrs()
        if self._pmax_timer:
            self._pmax_timer.cancel()
            self._pmax_timer = None
        pmax = a.get("pmax")
        if pmax and pmax >= a.get("pmin", 0):
            # in ACK mode the ring comes <guardRequestTime> ahead, so the ACK can arrive in time
            lead = getattr(self.site.agent, "notify_lead", lambda: 0.0)()
            self._pmax_timer = self.clock.call_later(max(0.0, self.last_time + pmax - lead - self.clock.now()),
                                                     lambda: self.fire(force=True))
        if self._poll_timer is None and self._live():
            self._poll_timer = self.clock.call_later(max(1.0, a.get("pmin", 1.0)), self._poll)

    def _poll(self) -> None:
        self._poll_timer = None
        if not self.active:
            return
        self.changed()
        self._arm()

    def cancel(self) -> None:
        self.active = False
        for t in (self._due_timer, self._pmax_timer, self._poll_timer):
            if t:
                t.cancel()
        self._due_timer = self._pmax_timer = self._poll_timer = None

    # ------------------------------------------------------------------ change handling
    def _passes(self, new: Any) -> bool:
        if new == self.last_value:
            return False
        a = self.attrs()
        if not any(k in a for k in ("gt", "lt", "st")) or not consistent(a):
            return True
        n, old = _number(new), _number(self.last_value)
        if n is None or old is None:
            return True
        if "st" in a and abs(n - old) >= a["st"]:
            return True
        for k in ("gt", "lt"):
            if k in a and (old <= a[k] < n or n <= a[k] < old):
                return True
        return False

    def changed(self) -> None:
        if not self.active:
            return
        new = self._value()
        if not self._passes(new):
            return
        wait = self.last_time + self.attrs().get("pmin", 0.0) - self.clock.now()
        if wait <= 0:
            self.fire()
        elif self._due_timer is None:
            self._due_timer = self.clock.call_later(wait, self.fire)

    def fire(self, force: bool = False) -> None:
        self._due_timer = None
        if not self.active:
            return
        self.site.agent.notify_due(self)

    def send(self) -> None:
        """Send the notification now (the agent decided the data context allows it)."""
        if not self.active:
            return
        self.last_time = self.clock.now()
        self.last_value = self._value()
        try:
            self.servobs.trigger(self.site.notification(self))
            self.site.agent.emit(Notified(tuple(self.path), self.site.ssid))
        except Exception:
            log.exception("notification of %s failed", self.path)
        self._arm()


    def gone(self, message) -> None:
        """What it observes no longer exists: send the final (error) notification and stop."""
        if not self.active:
            return
        self.cancel()
        try:
            self.servobs.trigger(message, is_last=True)
        except Exception:
            log.exception("final notification of %s failed", self.path)
