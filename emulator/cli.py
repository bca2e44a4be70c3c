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

from .clock import RealClock
from .modem.core import Modem
from .modem.profile import Profile, ProfileError
from .modem.nvm import secure_dir
from .port import PtyPort


def default_state_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "telit-emu" / "default"


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
                    "on a virtual serial port. The first line printed is 'port: <path>'.")
    p.add_argument("--link", metavar="PATH",
                   help="also keep a stable symlink to the port at PATH (replaced atomically, removed on exit)")
    p.add_argument("--state-dir", metavar="DIR", type=Path, default=None,
                   help=f"the module's non-volatile memory and file system (default: {default_state_dir()})")
    p.add_argument("--profile", metavar="TOML", help="module profile overriding identity, SIM, network "
                   "and LwM2M defaults (see README)")
    p.add_argument("--log", metavar="FILE", help="write a timestamped trace of every byte in and out to FILE")
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


class Trace:
    """--log: host->module and module->host bytes, one timestamped line per line of traffic.

    The engine hands over host input a whole line at a time (so a line split across writes is
    judged whole) and masks a line that carries a #LWM2MINJKEYS key, in the input and in its echo:
    such a line is written as `<arrow> masked b'AT#LWM2MINJKEYS***\r'`, so a replay can tell it
    apart. The file is created 0600.
    """

    def __init__(self, path: str):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.fh = open(fd, "a", buffering=1, encoding="utf-8")
        self._pending = {"host->module": bytearray(), "module->host": bytearray()}

    def _line(self, arrow: str, data: bytes, masked: bool = False) -> None:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime()) + f".{int(time.time() * 1000) % 1000:03d}"
        self.fh.write(f"{ts} {arrow}{' masked' if masked else ''} {data!r}\n")

    def _feed(self, arrow: str, data: bytes, masked: bool) -> None:
        buf = self._pending[arrow]
        if masked:
            if buf:
                self._line(arrow, bytes(buf))
                buf.clear()
            self._line(arrow, data, masked=True)
            return
        buf += data
        while True:
            cut = max(buf.rfind(b"\r"), buf.rfind(b"\n"))
            if cut < 0:
                break
            chunk = bytes(buf[:cut + 1])
            del buf[:cut + 1]
            self._line(arrow, chunk)
        if len(buf) > 1024 or buf.endswith(b">>>"):
            self._line(arrow, bytes(buf))
            buf.clear()

    def host_to_module(self, data: bytes, masked: bool = False) -> None:
        self._feed("host->module", data, masked)

    def module_to_host(self, data: bytes, masked: bool = False) -> None:
        self._feed("module->host", data, masked)

    def dropped(self, data: bytes) -> None:
        self.note(f"dropped-urc {data!r}")      # the host was not reading: this whole URC line was dropped

    def flush(self) -> None:
        for arrow, buf in self._pending.items():
            if buf:
                self._line(arrow, bytes(buf))
                buf.clear()

    def note(self, text: str) -> None:
        self.fh.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} ## {text}\n")


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
    modem = Modem(port, state_dir, profile=profile, clock=RealClock(args.time_scale),
                  clean_output=args.clean_output, lwm2m_server=server)
    # an NVM problem (corrupt file, sections of the wrong shape) is logged once, on stderr, by the NVM
    trace = None
    if args.log:
        trace = Trace(args.log)
        modem.engine.on_input = trace.host_to_module
        modem.engine.on_output = trace.module_to_host
        port.on_drop = trace.dropped
        trace.note(f"port {port.path} state {state_dir}")
        logging.getLogger("emulator.port").addHandler(_TraceHandler(trace))
    print(f"port: {port.path}", flush=True)
    if args.link:
        print(f"link: {args.link}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    modem.start()
    await stop.wait()
    await modem.aclose()               # a registered agent deregisters (within 2 s) before exit
    if trace:
        trace.flush()
    return 0


def _logging(verbose: int) -> None:
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    logging.basicConfig(level=level, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    if not verbose:    # aiocoap warns once per stray datagram a peer sends: a log flood
        logging.getLogger("coap-server").setLevel(logging.ERROR)


class _TraceHandler(logging.Handler):
    def __init__(self, trace: Trace):
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
