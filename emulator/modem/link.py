"""The module's data path to its servers, as the fault scenarios see it.

Every CoAP client context the agent opens hands its datagram seam to :meth:`Link.attach`; from then
on each datagram (plain CoAP, or a DTLS record of a coaps:// session) passes :meth:`Link.outgoing` /
:meth:`Link.incoming`:

* while the module has no network (no EPS registration, ``+CFUN`` not 1, powered off) nothing passes
  (when :attr:`Link.gated`, which a fault layer sets);
* then the ``filters`` (the network faults of emulator/scenarios/faults.py) may drop, delay, duplicate
  or reorder it;
* what really leaves or arrives is shown to the ``watchers`` (the trace, the stepped clock's in-flight
  count, ``expect_server``) as a :class:`Datagram` summary.

Filters are ``fn(direction, data, peer) -> list of (delay_s, data)`` (empty list: lost; None: taken by
the filter, e.g. the answer to a request a scenario made up); a delay of 0 passes the datagram on at once. ``direction`` is ``"up"`` (module -> server) or ``"down"``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from .owner import ModemOwner as Modem

log = logging.getLogger("emulator.link")

UP, DOWN = "up", "down"
METHODS = {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE", 5: "FETCH", 6: "PATCH", 7: "iPATCH"}
TYPES = ("CON", "NON", "ACK", "RST")


@dataclass(frozen=True)
class Datagram:
    """A CoAP message in summary (RFC 7252 3): type, code (``POST`` or ``2.05``), Uri-Path + query,
    Location-Path, content format, payload, message id, token, observe. ``dtls`` is the DTLS record's
    content type (20..23) for a coaps:// datagram, which carries no readable CoAP."""
    mtype: str = ""
    code: str = ""
    path: str = ""
    location: str = ""
    cf: int | None = None
    payload: bytes = b""
    mid: int = -1
    token: bytes = b""
    observe: int | None = None
    dtls: int | None = None

    @property
    def is_request(self) -> bool:
        return self.code in METHODS.values()


def summarize(data: bytes) -> Datagram:
    """Parse the parts of a datagram a trace needs; never raises (a malformed one gives what it could)."""
    if data and 20 <= data[0] <= 23:
        return Datagram(dtls=data[0])
    if len(data) < 4 or data[0] >> 6 != 1:
        return Datagram(code="?")
    mtype = TYPES[(data[0] >> 4) & 3]
    tkl = data[0] & 0x0F
    cls, detail = data[1] >> 5, data[1] & 31
    code = METHODS.get(data[1], f"0.{detail:02d}") if cls == 0 else f"{cls}.{detail:02d}"
    if data[1] == 0:
        code = "EMPTY"
    mid = int.from_bytes(data[2:4], "big")
    token = bytes(data[4:4 + tkl])
    pos, number = 4 + tkl, 0
    path, query, location = [], [], []
    cf = observe = None
    payload = b""
    try:
        while pos < len(data):
            b = data[pos]
            pos += 1
            if b == 0xFF:
                payload = bytes(data[pos:])
                break
            delta, length = b >> 4, b & 0x0F
            vals = []
            for n in (delta, length):
                if n == 13:
                    n, pos = data[pos] + 13, pos + 1
                elif n == 14:
                    n, pos = int.from_bytes(data[pos:pos + 2], "big") + 269, pos + 2
                vals.append(n)
            number += vals[0]
            value = bytes(data[pos:pos + vals[1]])
            pos += vals[1]
            if number == 11:
                path.append(value.decode("utf-8", "replace"))
            elif number == 15:
                query.append(value.decode("utf-8", "replace"))
            elif number == 8:
                location.append(value.decode("utf-8", "replace"))
            elif number == 12:
                cf = int.from_bytes(value, "big")
            elif number == 6:
                observe = int.from_bytes(value, "big")
    except IndexError:
        pass
    text = "/" + "/".join(path) if path else ""
    if query:
        text += "?" + "&".join(query)
    return Datagram(mtype, code, text, "/" + "/".join(location) if location else "", cf, payload, mid, token,
                    observe)


Filter = Callable[[str, bytes, tuple], list]
Watcher = Callable[[str, bytes, tuple, Datagram], None]


MAX_SESSIONS = 64          # client sessions a link routes at once (servers, bootstrap, downloads)


class Link:
    """The module's data path (one per Modem). See the module docstring."""

    def __init__(self, modem: "Modem"):
        self.modem = modem
        self.filters: list[Filter] = []
        self.watchers: list[Watcher] = []
        self.seams: list = []
        #: drop everything while the module has no network (set by a fault layer; off by default, so a
        #: module switched off for good still sends its Deregister)
        self.gated = False
        #: random.Random for CoAP's first retransmission timeout (see coap.follow_clock), or None
        self.rng = None

    # ------------------------------------------------------------------ wiring
    def attach(self, seam) -> None:
        """Route the datagrams of ``seam`` (emulator/lwm2m/coap.py Seam) through this link."""
        seam.rng = self.rng
        seam.incoming = lambda data, peer, seam=seam: self._pass(DOWN, data, peer, seam)
        seam.outgoing = lambda data, peer, seam=seam: self._pass(UP, data, peer, seam)
        # every open client's session (one per server account, the bootstrap's, a FOTA download ...);
        # a closed client detaches. The bound only guards against a client that never closes.
        self.seams = [s for s in self.seams if s is not seam][-(MAX_SESSIONS - 1):] + [seam]

    def detach(self, seam) -> None:
        """``seam``'s client closed: its datagrams no longer pass here."""
        self.seams = [s for s in self.seams if s is not seam]

    @property
    def up(self) -> bool:
        """The module has a data path: powered, +CFUN=1, registered to the network."""
        m = self.modem
        return m.powered and m.fun == 1 and m.network.registered

    def _pass(self, direction: str, data: bytes, peer, seam) -> bytes | None:
        if self.gated and not self.up:
            self._watch(direction, data, peer, lost=True)
            return None
        if direction == UP:
            self._reopen_context()
        out = [(0.0, data)]
        consumed = False
        for f in self.filters:
            nxt = []
            for delay, d in out:
                passed = f(direction, d, peer)
                if passed is None:            # taken by the filter itself (not lost)
                    consumed = True
                    continue
                nxt += [(delay + dl, dd) for dl, dd in passed]
            out = nxt
        now = None
        if not out and not consumed:
            self._watch(direction, data, peer, lost=True)
        for delay, d in out:
            if delay <= 0 and now is None:
                now = d
                continue
            self.modem.clock.call_later(delay, lambda d=d: self._late(direction, d, peer, seam))
        if now is not None:
            self._watch(direction, now, peer)
        return now

    def _late(self, direction: str, data: bytes, peer, seam) -> None:
        if self.gated and not self.up:
            self._watch(direction, data, peer, lost=True)
            return
        self._watch(direction, data, peer)
        if direction == UP:
            seam.transmit(data, peer)
        else:
            seam.inject(data, peer)

    def _reopen_context(self) -> None:
        """The network dropped the agent's PDP context: the module activates it again to send."""
        agent = getattr(self.modem, "agent", None)
        params = getattr(agent, "params", None)
        cid = getattr(params, "pdp_id", None)
        pdp = self.modem.pdp
        if agent is not None and getattr(agent, "enabled", False) and cid in pdp.contexts \
                and not pdp.is_active(cid):
            pdp.activate(cid)

    def _watch(self, direction: str, data: bytes, peer, lost: bool = False) -> None:
        if not self.watchers:
            return
        summary = summarize(data)
        if lost:
            summary = Datagram(**{**summary.__dict__, "mtype": "lost " + (summary.mtype or "DTLS")})
        for w in tuple(self.watchers):
            try:
                w(direction, data, peer, summary)
            except Exception:
                log.exception("link watcher failed")

    def inject(self, data: bytes, peer) -> None:
        """A datagram from ``peer`` arrives now (past the filters; a scenario's own server request)."""
        for seam in reversed(self.seams):
            if peer in seam.servers or peer in seam.contacted:
                self._watch(DOWN, data, peer)
                seam.inject(data, peer)
                return
