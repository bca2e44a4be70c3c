"""telit-emu: run one emulated Telit ME910C1 on a virtual serial port."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from pathlib import Path

from .clock import ManualClock, RealClock
from .modem.core import Modem
from .modem.profile import Profile, ProfileError
from .modem.nvm import default_state_dir, secure_dir
from .port import PtyPort


def _server_uri(text: str) -> str:
    """argparse type of --lwm2m-server: a usable coap:// or coaps:// server URI."""
    from .lwm2m.coap import server_uri_problem
    problem = server_uri_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable server URI: {problem}")
    return text


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="telit-emu",
        description="Emulate a Telit ME910C1/NE910C1/ML865C1 module (AT commands and LwM2M agent) "
                    "on a virtual serial port. The first line printed is 'port: <path>'.",
        epilog="Other commands (each has --help): 'telit-emu fleet' (many modems against one server), "
               "'telit-emu scenario run|list|faults' (fault scenarios), 'telit-emu replay' (replay a "
               "trace), 'telit-emu ctl' (talk to a running emulator's control socket).")
    p.add_argument("--link", metavar="PATH",
                   help="also keep a stable symlink to the port at PATH (replaced atomically, removed on exit)")
    p.add_argument("--state-dir", metavar="DIR", type=Path, default=None,
                   help=f"the module's non-volatile memory and file system (default: {default_state_dir()})")
    p.add_argument("--profile", metavar="TOML", help="module profile overriding identity, SIM, network "
                   "and LwM2M defaults (see README)")
    p.add_argument("--record", "--log", dest="log", metavar="FILE",
                   help="write the trace (module-time stamps: serial bytes both ways, CoAP in summary, faults, "
                        "events; see README) to FILE; --log is the same option")
    p.add_argument("--control", metavar="PATH", type=Path,
                   help="the control socket (default: <state dir>/control.sock); see telit-emu ctl")
    p.add_argument("--scenario", metavar="FILE",
                   help="run the faults of a scenario file on the module clock while a host drives the port "
                        "(send steps are refused; expect steps are checked and reported on stderr)")
    p.add_argument("--seed", type=int, default=None, help="seed of the faults' random choices (default: the "
                   "scenario's, else 0)")
    p.add_argument("--manual-clock", action="store_true",
                   help="module time moves only with 'telit-emu ctl advance SECONDS'")
    p.add_argument("--clean-output", action="store_true",
                   help="strict <CR><LF> framing instead of the real firmware's bare-<LF> multi-line answers")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="X",
                   help="run the module clock X times faster than real time (guard times, lifetimes, delays)")
    p.add_argument("--lwm2m-server", metavar="URI", type=_server_uri,
                   help="factory LwM2M server (coap://host:port or coaps://...), as if set by "
                        "AT#LWM2MSTS=0,999,URI,0 at the factory")
    p.add_argument("--lwm2m-bootstrap", action="store_true",
                   help="with --lwm2m-server: the server is a bootstrap server")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more diagnostic logging on stderr")
    return p


async def run(args) -> int:
    try:
        profile = Profile.load(args.profile)
    except ProfileError as exc:
        print(f"telit-emu: {exc}", file=sys.stderr)
        return 2
    state_dir = args.state_dir
    if state_dir is None:
        state_dir = default_state_dir()
        secure_dir(state_dir.parent)        # .../telit-emu: only this user's modems live there
    port = PtyPort(link=args.link)
    server = None
    if args.lwm2m_server:
        server = f"{args.lwm2m_server}|{1 if args.lwm2m_bootstrap else 0}"
    scenario = None
    if args.scenario:
        from .scenarios.format import ScenarioError, load
        try:
            scenario = load(args.scenario)
        except ScenarioError as exc:
            print(f"telit-emu: {exc}", file=sys.stderr)
            return 2
        refused = [s.line for s in scenario.steps if s.send is not None]
        if refused:
            print(f"telit-emu: --scenario {args.scenario}: steps with 'send' are refused while a host drives "
                  f"the port (lines {', '.join(map(str, refused))})", file=sys.stderr)
            return 2
    clock = ManualClock() if args.manual_clock else RealClock(args.time_scale)
    modem = Modem(port, state_dir, profile=profile, clock=clock,
                  clean_output=args.clean_output, lwm2m_server=server)
    # an NVM problem (corrupt file, sections of the wrong shape) is logged once, on stderr, by the NVM
    from .fleet.port import LineTap
    from .scenarios.faults import FaultLayer
    from .scenarios.trace import Trace
    tap = LineTap()
    trace = None
    if args.log:
        trace = Trace(args.log, clock.now, seed=args.seed if args.seed is not None else
                      (scenario.seed if scenario else 0))
        port.on_drop = trace.dropped
        modem.link.watchers.append(trace.coap)
        modem.events.subscribe("*", trace.event)
        logging.getLogger("emulator.port").addHandler(_TraceHandler(trace))
    seed = args.seed if args.seed is not None else (scenario.seed if scenario else 0)
    faults = FaultLayer(modem, seed, note=trace.fault if trace else None)

    def on_output(data: bytes, masked: bool = False) -> None:
        if trace:
            trace.module_to_host(data, masked)
        tap.write(data)
    modem.engine.on_output = on_output
    if trace:
        modem.engine.on_input = trace.host_to_module
    control = await _control_socket(args, state_dir, modem, tap, faults, clock)
    if control is False:
        return 2
    print(f"port: {port.path}", flush=True)
    if args.link:
        print(f"link: {args.link}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    modem.start()
    live = None
    if scenario is not None:
        live = asyncio.ensure_future(_live_scenario(scenario, modem, tap, faults, clock))
    await stop.wait()
    if live is not None:
        live.cancel()
    modem.link.gated = False           # the Deregister at exit is not a fault's to drop
    await modem.aclose()               # a registered agent deregisters (within 2 s) before exit
    if control:
        await control.close()
    if trace:
        trace.close()
    return 0


async def _control_socket(args, state_dir, modem, tap, faults, clock):
    """The control socket: at --control PATH (failing loudly), else <state dir>/control.sock (a
    warning when that cannot be used). Returns the server, None, or False (an explicit path failed)."""
    from .control import ControlError, ControlServer, at_exchange, default_path, fault_handlers

    async def at(req: dict) -> dict:
        if req.get("modem", 0) != 0:
            raise ControlError("a single emulator has only modem 0")
        timeout = req.get("timeout", 10)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
            raise ControlError("timeout must be 0 < t <= 300 seconds")
        return await at_exchange(modem.engine.feed, tap.listen, req.get("line"), float(timeout))

    async def time_(req: dict) -> dict:
        return {"ok": True, "time": clock.now(), "wall": clock.wall()}

    async def status(req: dict) -> dict:
        agent = modem.agent
        return {"ok": True, "status": agent.status, "registered": agent.registered,
                "faults": sorted(faults.active)}

    server = ControlServer(args.control or default_path(state_dir),
                           {"at": at, "time": time_, "status": status, **fault_handlers(faults, clock)})
    try:
        await server.start()
    except ControlError as exc:
        if args.control is not None:
            print(f"telit-emu: {exc}", file=sys.stderr)
            return False
        logging.getLogger("emulator").warning("no control socket: %s", exc)
        return None
    return server


async def _live_scenario(scenario, modem, tap, faults, clock) -> None:
    """--scenario: the file's faults on the module clock; expect steps watch the port; results on stderr."""
    from .scenarios.host import HostRunner

    def report(text: str) -> None:
        print(f"scenario: {text}", file=sys.stderr, flush=True)

    def refuse(line: str) -> None:           # never called: send steps were refused at start
        raise RuntimeError("send refused")
    from .scenarios.runner import ServerLog
    server_log = ServerLog(faults)              # what leaves for the server, seen at the seam
    modem.link.watchers.append(server_log.watch)
    runner = HostRunner(scenario, clock, refuse, tap.listen, faults=faults, server_log=server_log,
                        report=report)
    failure = await runner.run()
    report(f"FAILED at line {failure.step.line}: {failure.reason}" if failure else "done: every expectation held")


def _logging(verbose: int) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    if not verbose:    # aiocoap warns once per stray datagram a peer sends: a log flood
        logging.getLogger("coap-server").setLevel(logging.ERROR)


class _TraceHandler(logging.Handler):
    def __init__(self, trace):
        super().__init__(logging.WARNING)
        self.trace = trace

    def emit(self, record):
        self.trace.note(record.getMessage())


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "fleet":
        from .fleet.cli import main as fleet_main
        _logging(0)
        return fleet_main(argv[1:])
    if argv and argv[0] == "scenario":
        from .scenarios.runner import main as scenario_main
        _logging(0)
        return scenario_main(argv[1:])
    if argv and argv[0] == "replay":
        from .scenarios.replay import main as replay_main
        _logging(0)
        return replay_main(argv[1:])
    if argv and argv[0] == "ctl":
        from .control import main as ctl_main
        return ctl_main(argv[1:])
    args = build_parser().parse_args(argv)
    _logging(args.verbose)
    if args.time_scale <= 0:
        print("telit-emu: --time-scale must be > 0", file=sys.stderr)
        return 2
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
