"""``--stepped``: module time jumps to the next due timer whenever the module has nothing pending.

"Pending" is: a task still runnable on the event loop (the driver lets the loop settle first), or a
CoAP exchange in flight with a real peer: a datagram that left the module (a CON request, a request or
a DTLS record) and whose answer (ACK, RST, response with the same token, or any DTLS record back) has
not arrived yet counts as in flight for at most :data:`GRACE` real seconds. So a retransmission timer
fires only when the peer really did not answer within that grace; a datagram a fault dropped is never
in flight. Between jumps the driver also waits :data:`QUIET` real seconds with nothing happening, so
a datagram already on its way from the peer is read first.
"""
from __future__ import annotations

import asyncio
import time

from ..clock import ManualClock
from ..modem.link import DOWN, UP, Datagram

GRACE = 0.5          # real seconds an exchange with a real peer may take before module time moves on
QUIET = 0.002        # real seconds of quiet before each jump


class SteppedClock(ManualClock):
    """A ManualClock driven by :meth:`drive`; :meth:`watch` is the link watcher that sees exchanges."""

    def __init__(self, start_wall: float = 1_764_000_000.0):
        super().__init__(start_wall)
        self._inflight: dict[tuple, float] = {}
        self.activity = 0

    def watch(self, direction: str, data: bytes, peer, d: Datagram) -> None:
        self.activity += 1
        if d.mtype.startswith("lost"):
            return
        now = time.monotonic()
        if d.dtls is not None:
            if direction == UP:
                self._inflight[("dtls", peer)] = now
            else:
                self._inflight.pop(("dtls", peer), None)
            return
        if direction == UP:
            if d.mtype == "CON":
                self._inflight[("mid", peer, d.mid)] = now
            if d.is_request:
                self._inflight[("tok", peer, d.token)] = now
        else:
            if d.mtype in ("ACK", "RST"):
                self._inflight.pop(("mid", peer, d.mid), None)
            if not d.is_request and d.code != "EMPTY":
                self._inflight.pop(("tok", peer, d.token), None)

    def in_flight(self) -> bool:
        now = time.monotonic()
        for key, t in list(self._inflight.items()):
            if now - t > GRACE:
                del self._inflight[key]
        return bool(self._inflight)

    async def drive(self, stop: asyncio.Event) -> None:
        """Advance to each next due timer while nothing is pending, until ``stop`` is set. One jump
        fires only the timers due at that instant; then the loop settles again."""
        loop = asyncio.get_running_loop()
        run_in_executor = loop.run_in_executor
        pending: set = set()

        def counted(executor, fn, *args):      # work on a thread (a resolver, say) counts as pending
            fut = run_in_executor(executor, fn, *args)
            pending.add(fut)
            fut.add_done_callback(pending.discard)
            return fut
        loop.run_in_executor = counted
        try:
            await self._drive(stop, pending)
        finally:
            loop.run_in_executor = run_in_executor

    async def _drive(self, stop: asyncio.Event, pending: set) -> None:
        while not stop.is_set():
            if pending:
                await asyncio.sleep(QUIET)
                continue
            before = self.activity
            await _idle()
            await asyncio.sleep(QUIET)
            await _idle()
            if self.activity != before or self.in_flight() or pending:
                continue
            due = self.next_due()
            if due is None:
                await asyncio.sleep(QUIET)
                continue
            self._fire_due(due)

    def _fire_due(self, due: float) -> None:
        import heapq
        self._now = max(self._now, due)
        while self._heap and self._heap[0][0] <= due:
            _, _, entry = heapq.heappop(self._heap)
            if entry[0] is not None:
                entry[0]()


async def _idle(limit: int = 2000) -> None:
    """Let every runnable task run until the loop has nothing ready but I/O and timers."""
    loop = asyncio.get_running_loop()
    for _ in range(limit):
        await asyncio.sleep(0)
        if not getattr(loop, "_ready", None):
            return
