"""The one clock of a modem: every timer and delay goes through it.

RealClock runs on the asyncio loop, optionally accelerated (scale 10 = ten virtual seconds per real
second). ManualClock only moves when a test or a scenario calls advance(): timers fire in order,
in zero real time.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Callable


class Clock:
    """Interface. Times are virtual seconds; wall() is virtual Unix time."""

    def now(self) -> float:
        raise NotImplementedError

    def wall(self) -> float:
        raise NotImplementedError

    def call_later(self, delay: float, callback: Callable[[], None]) -> "Timer":
        raise NotImplementedError

    async def sleep(self, delay: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        timer = self.call_later(delay, lambda: fut.done() or fut.set_result(None))
        try:
            await fut
        finally:
            timer.cancel()

    async def wait_for(self, aw, timeout: float):
        """asyncio.wait_for on this clock's time: the result of ``aw``, or asyncio.TimeoutError after
        ``timeout`` module seconds (``aw`` is then cancelled). When the caller is cancelled, a coroutine
        given as ``aw`` is cancelled with it; a future owned by someone else (e.g. an aiocoap response)
        is left to its owner."""
        task = asyncio.ensure_future(aw)
        owned = task is not aw
        fut = asyncio.get_running_loop().create_future()
        timer = self.call_later(timeout, lambda: fut.done() or fut.set_result(None))
        try:
            done, _ = await asyncio.wait({task, fut}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                return task.result()
            task.cancel()
            raise asyncio.TimeoutError()
        finally:
            timer.cancel()
            if owned and not task.done():    # cancelled from outside: our own task ends with us
                task.cancel()

    def set_wall(self, unix_time: float) -> None:
        """+CCLK set: move the wall clock without touching timers."""
        self._wall_offset = unix_time - self.wall() + getattr(self, "_wall_offset", 0.0)


class Timer:
    def __init__(self, cancel: Callable[[], None]):
        self._cancel = cancel
        self.cancelled = False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._cancel()


class RealClock(Clock):
    def __init__(self, scale: float = 1.0):
        if scale <= 0:
            raise ValueError("time scale must be > 0")
        self.scale = scale
        self._t0_real = time.monotonic()
        self._t0_wall = time.time()
        self._wall_offset = 0.0

    def now(self) -> float:
        return (time.monotonic() - self._t0_real) * self.scale

    def wall(self) -> float:
        return self._t0_wall + self.now() + self._wall_offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        handle = asyncio.get_running_loop().call_later(max(0.0, delay) / self.scale, callback)
        return Timer(handle.cancel)


class ManualClock(Clock):
    """Stepped by hand: advance(dt) runs every timer that falls due, in time order."""

    def __init__(self, start_wall: float = 1_764_000_000.0):
        self._now = 0.0
        self._start_wall = start_wall
        self._wall_offset = 0.0
        self._heap: list[tuple[float, int, list]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._start_wall + self._now + self._wall_offset

    def call_later(self, delay: float, callback: Callable[[], None]) -> Timer:
        entry = [callback]
        heapq.heappush(self._heap, (self._now + max(0.0, delay), next(self._seq), entry))
        return Timer(lambda: entry.__setitem__(0, None))

    def next_due(self) -> float | None:
        while self._heap and self._heap[0][2][0] is None:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def advance(self, dt: float) -> None:
        """Move time forward by dt, firing timers in order and letting tasks run between them."""
        end = self._now + dt
        while True:
            await _settle()
            due = self.next_due()
            if due is None or due > end:
                break
            _, _, entry = heapq.heappop(self._heap)
            self._now = max(self._now, due)
            if entry[0] is not None:
                entry[0]()
        self._now = end
        await _settle()


async def _settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)
