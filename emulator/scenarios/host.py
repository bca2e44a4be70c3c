"""Runs a scenario's host steps against one modem: sends AT lines, waits for expected lines, on the
modem's clock. Used by fleet behaviours (every modem of a share runs the same file)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Callable

from ..clock import Clock
from .format import Scenario, Step


@dataclass
class StepFailure:
    """An expectation that did not hold: the step (its file line) and what was expected."""
    step: Step
    reason: str

    def __str__(self) -> str:
        return f"line {self.step.line}: {self.reason}"


class HostRunner:
    """Plays the host of one modem for ``scenario``.

    ``send(line)`` writes an AT line (without <CR>) to the modem; ``listen(fn)`` adds a listener of the
    modem's output lines and returns its remover. Step times are module seconds on ``clock``, counted
    from ``run()``'s start. ``run()`` returns None when every expectation held, else the first
    StepFailure (the remaining steps are not run).
    """

    def __init__(self, scenario: Scenario, clock: Clock, send: Callable[[str], None],
                 listen: Callable[[Callable[[str], None]], Callable[[], None]], *, faults=None,
                 server_log=None, report: Callable[[str], None] | None = None):
        self.scenario = scenario
        self.clock = clock
        self.send = send
        self.listen = listen
        self.faults = faults              # a FaultLayer (emulator/scenarios/faults.py), or None
        self.server_log = server_log      # a ServerLog of what left through the seam, or None
        self.report = report              # fn(text): one line per step and result
        self._t0 = 0.0

    async def run(self) -> StepFailure | None:
        start = self.clock.now()
        self._t0 = start
        last_end = start
        for step in self.scenario.steps:
            due = start + step.at if step.at is not None else last_end + (step.after or 0.0)
            for n in range(step.times):
                when = due + n * step.every
                if when > self.clock.now():
                    await self.clock.sleep(when - self.clock.now())
                failure = await self._act(step)
                if self.report:
                    self.report(f"[{self.clock.now() - self._t0:10.3f}] line {step.line}: {step.describe()}"
                                f" -> {'FAILED: ' + failure.reason if failure else 'ok'}")
                if failure:
                    return failure
            if step.wait:
                await self.clock.sleep(step.wait)
            last_end = self.clock.now()
        return None

    def _fault(self, step: Step) -> StepFailure | None:
        if not (step.fault or step.clear):
            return None
        if self.faults is None:
            return StepFailure(step, "fault steps are not run here")
        from .faults import FaultError
        try:
            if step.clear:
                self.faults.clear(step.clear)
            if step.fault:
                self.faults.apply(step.fault, **dict(step.params))
        except FaultError as exc:
            return StepFailure(step, str(exc))
        return None

    async def _act(self, step: Step) -> StepFailure | None:
        """The step's action: its fault / clear, then its send; its expect window opens first, so a
        line the fault itself causes is seen."""
        if step.expect is None:
            failure = self._fault(step)
            if failure:
                return failure
            if step.send is not None:
                self.send(step.send)
            return await self._expect_server(step)
        loop = asyncio.get_running_loop()
        seen = loop.create_future()

        def on_line(line: str) -> None:
            if not seen.done() and step.expect.search(line):
                seen.set_result(line)
        remove = self.listen(on_line)
        try:
            failure = self._fault(step)
            if failure:
                return failure
            if step.send is not None:
                self.send(step.send)
            await self.clock.wait_for(seen, step.within)
        except asyncio.TimeoutError:
            return StepFailure(step, f"no line matched {step.expect.pattern!r} within {step.within:g} s")
        finally:
            remove()
        return await self._expect_server(step)

    async def _expect_server(self, step: Step) -> StepFailure | None:
        if step.expect_server is None:
            return None
        if self.server_log is None:
            return StepFailure(step, "expect_server is not checked here")
        method, path, payload = step.expect_server
        try:
            await self.clock.wait_for(self.server_log.wait(method, path, payload), step.within)
        except asyncio.TimeoutError:
            return StepFailure(step, f"the server received no {method.pattern} {path.pattern}"
                                     f"{' with payload ' + payload.pattern if payload else ''} within "
                                     f"{step.within:g} s")
        return None
