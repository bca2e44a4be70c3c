"""``telit-emu scenario run FILE``: one modem in this process, the scenario as its host, faults on its
clock; ``telit-emu scenario list`` lists the shipped library; ``telit-emu scenario faults`` prints the
fault catalogue.

The run prints one line per step, ``[<module seconds>] line <n>: <what> -> ok | FAILED: <why>``, and
exits 0 only if every expectation held (1 when one failed, 2 when the scenario cannot run: a bad file,
a server it ``needs`` that was not given).
"""
from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import Callable

from ..clock import RealClock
from ..modem.link import UP, Datagram
from .format import Scenario, ScenarioError, load, parse
from .host import HostRunner


class ServerLog:
    """What left the module for the server (requests, and answers to a ``server.request``), as seen at
    the seam; ``wait(method, path, payload)`` consumes entries up to the first match."""

    def __init__(self, faults=None):
        self.entries: list[tuple[str, str, str]] = []
        self.faults = faults
        self._waiters: list = []
        self._next = 0

    def watch(self, direction: str, data: bytes, peer, d: Datagram) -> None:
        if direction != UP or d.mtype.startswith("lost") or d.dtls is not None:
            return
        if d.is_request:
            entry = (d.code, d.path, d.payload.decode("utf-8", "replace"))
        else:
            path = self.faults.answer_path(d.token) if self.faults is not None else None
            if path is None:
                return
            entry = (d.code, path, d.payload.decode("utf-8", "replace"))
        self.entries.append(entry)
        for ev in self._waiters:
            ev.set()

    async def wait(self, method: re.Pattern, path: re.Pattern, payload: re.Pattern | None) -> tuple:
        ev = asyncio.Event()
        self._waiters.append(ev)
        try:
            while True:
                while self._next < len(self.entries):
                    m, p, body = self.entries[self._next]
                    self._next += 1
                    if method.search(m) and path.search(p) and (payload is None or payload.search(body)):
                        return (m, p, body)
                ev.clear()
                await ev.wait()
        finally:
            self._waiters.remove(ev)


def library() -> dict[str, Path]:
    """The shipped scenarios: name (file stem) -> path."""
    folder = resources.files("emulator.scenarios") / "library"
    return {Path(str(p)).stem: Path(str(p)) for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".toml")}


def resolve_file(name: str) -> Path:
    """A scenario file path, or the name of a library scenario."""
    p = Path(name)
    if p.exists() or name.endswith(".toml"):
        return p
    lib = library()
    if name in lib:
        return lib[name]
    return p


def missing_needs(scenario: Scenario, server: str | None, bootstrap: str | None) -> list[str]:
    out = []
    if "bootstrap" in scenario.needs and not bootstrap:
        out.append("bootstrap (give --bootstrap-server URI)")
    if "lwm2m" in scenario.needs and not server:
        out.append("lwm2m (give --lwm2m-server URI)")
    if "coaps" in scenario.needs and not (server or "").startswith("coaps://"):
        out.append("coaps (give --lwm2m-server coaps://...)")
    return out


async def run_scenario(scenario: Scenario, *, server: str | None = None, bootstrap: str | None = None,
                       stepped: bool = True, time_scale: float = 1.0, record: str | None = None,
                       state_dir: str | None = None, out: Callable[[str], None] = print) -> bool:
    """Run ``scenario`` as the host of one fresh modem; True when every expectation held."""
    from ..fleet.port import LinePort
    from ..modem.core import Modem
    from .faults import FaultLayer
    from .stepped import SteppedClock
    from .trace import Trace

    clock = SteppedClock() if stepped else RealClock(time_scale)
    tmp = None
    if state_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="telit-emu-scenario-")
        state_dir = tmp.name
    factory = f"{bootstrap}|1" if "bootstrap" in scenario.needs and bootstrap else \
        (f"{server}|0" if server else None)
    port = LinePort()
    modem = Modem(port, state_dir, clock=clock, lwm2m_server=factory)
    trace = Trace(record, clock.now, seed=scenario.seed) if record else None
    faults = FaultLayer(modem, scenario.seed, note=trace.fault if trace else None)
    modem.link.gated = True
    log = ServerLog(faults)
    modem.link.watchers.append(log.watch)
    if stepped:
        modem.link.watchers.append(clock.watch)
    if trace:
        modem.engine.on_input = trace.host_to_module
        modem.engine.on_output = trace.module_to_host
        modem.link.watchers.append(trace.coap)
        modem.events.subscribe("*", trace.event)

    def send(line: str) -> None:
        port.feed(line.encode("latin-1", "replace") + b"\r")

    stop = asyncio.Event()
    driver = asyncio.ensure_future(clock.drive(stop)) if stepped else None
    runner = HostRunner(scenario, clock, send, port.tap.listen, faults=faults, server_log=log, report=out)
    out(f"scenario {scenario.name!r} (seed {scenario.seed}): {len(scenario.steps)} steps")
    try:
        modem.start()
        failure = await runner.run()
    finally:
        modem.link.gated = False
        try:                                # switch off as telit-emu does, bounded
            await asyncio.wait_for(modem.aclose(budget=0.5), 3.0)
        except asyncio.TimeoutError:
            pass
        stop.set()
        if driver:
            await driver
        if trace:
            trace.close()
        if tmp:
            tmp.cleanup()
    if failure:
        out(f"FAILED at line {failure.step.line} ({failure.step.describe()}): {failure.reason}")
        return False
    out(f"passed: every expectation held (module time {clock.now():.3f} s)")
    return True


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="telit-emu scenario", description="Fault scenarios (see README).")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="run a scenario file (or a library scenario by name) as the host")
    r.add_argument("file")
    r.add_argument("--lwm2m-server", metavar="URI", help="the LwM2M server (needs 'lwm2m' / 'coaps')")
    r.add_argument("--bootstrap-server", metavar="URI", help="the bootstrap server (needs 'bootstrap')")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--time-scale", type=float, default=None, metavar="X", help="module clock X times real time")
    mode.add_argument("--stepped", action="store_true", help="jump module time when nothing is pending")
    r.add_argument("--record", metavar="FILE", help="write the trace of the run to FILE")
    sub.add_parser("list", help="the shipped library")
    sub.add_parser("faults", help="the fault catalogue")
    args = p.parse_args(argv)
    if args.cmd == "list":
        for name, path in library().items():
            try:
                sc = load(path)
                print(f"{name}: {sc.description}" + (f" [needs {', '.join(sc.needs)}]" if sc.needs else ""))
            except ScenarioError as exc:
                print(f"{name}: cannot be read: {exc}")
        return 0
    if args.cmd == "faults":
        from .faults import catalogue_text
        print(catalogue_text())
        return 0
    try:
        scenario = load(resolve_file(args.file))
    except ScenarioError as exc:
        print(f"telit-emu scenario: {exc}", file=sys.stderr)
        return 2
    if args.time_scale is not None and args.time_scale <= 0:
        print("telit-emu scenario: --time-scale must be > 0", file=sys.stderr)
        return 2
    missing = missing_needs(scenario, args.lwm2m_server, args.bootstrap_server)
    if missing:
        print(f"telit-emu scenario: {scenario.name!r} needs a server that was not given: "
              f"{'; '.join(missing)}", file=sys.stderr)
        return 2
    ok = asyncio.run(run_scenario(scenario, server=args.lwm2m_server, bootstrap=args.bootstrap_server,
                                  stepped=args.time_scale is None, time_scale=args.time_scale or 1.0,
                                  record=args.record, out=lambda s: print(s, flush=True)))
    return 0 if ok else 1


__all__ = ["run_scenario", "ServerLog", "library", "main", "parse"]
