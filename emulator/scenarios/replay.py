"""``telit-emu replay FILE [--secret V] [--lwm2m-server URI]``: re-send the host side of a trace at its
times to a fresh emulated module (stepped clock) and report the first byte where the module's answer
differs from the recorded one.

The ``host->module`` and ``module->host`` lines of the trace are replayed and compared, and its
``fault`` / ``clear`` lines are applied again at their module times (seeded from the trace's
``# seed`` line or ``--seed``, so random faults choose the same); a capture holding only host and module lines (e.g. from a
real module, stamped in seconds or with wall-clock times) replays too. A
``masked`` host line (a secret the trace did not keep) is sent with ``***`` replaced by the value of
``--secret``; without it the replay stops there and says so. Masked module lines (the echo of a secret)
are compared in their masked form.

Exit status: 0 no divergence, 1 a divergence (printed: trace line, byte offset, expected and got),
2 the trace cannot be replayed.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile

from .trace import read_fault_lines, read_port_lines, read_seed

SETTLE = 5.0          # module seconds given to the module after the last host line (URCs still due)


async def replay(path: str, *, secret: str | None = None, server: str | None = None,
                 seed: int | None = None, out=print) -> int:
    from ..fleet.port import LinePort
    from ..modem.core import Modem
    from .faults import FaultError, FaultLayer
    from .stepped import SteppedClock

    entries = read_port_lines(path)
    if seed is None:
        seed = read_seed(path) or 0
    if not entries:
        out(f"{path}: no host->module / module->host lines")
        return 2
    clock = SteppedClock()
    expected = bytearray()
    marks: list[tuple[int, int]] = []         # (offset in expected, trace line)
    got = bytearray()
    with tempfile.TemporaryDirectory(prefix="telit-emu-replay-") as state:
        port = LinePort()
        modem = Modem(port, state, clock=clock, lwm2m_server=f"{server}|0" if server else None)
        modem.link.watchers.append(clock.watch)
        masked_echo: list[bool] = []
        faults = FaultLayer(modem, seed)
        for t, verb, name, params, line in read_fault_lines(path):
            def act(verb=verb, name=name, params=params, line=line):
                try:
                    faults.apply(name, **params) if verb == "fault" else faults.clear(name)
                except FaultError as exc:
                    out(f"{path}:{line}: {exc}")
            clock.call_later(t, act)

        def on_output(data: bytes, masked: bool = False) -> None:
            got.extend(data)
        modem.engine.on_output = on_output
        stop = asyncio.Event()
        driver = asyncio.ensure_future(clock.drive(stop))
        status = 0
        try:
            modem.start()
            for t, arrow, masked, data, line in entries:
                if arrow == "module->host":
                    marks.append((len(expected), line))
                    expected.extend(data)
                    continue
                if t > clock.now():
                    await clock.sleep(t - clock.now())
                if masked:
                    if secret is None:
                        out(f"{path}:{line}: the host line is masked ({data!r}); give --secret to replay it")
                        status = 2
                        break
                    data = data.replace(b"***", secret.encode("latin-1"), 1)
                    masked_echo.append(True)
                port.feed(data)
            if status == 0:
                await clock.sleep(SETTLE)
        finally:
            try:                                # switch off as telit-emu does, bounded
                await asyncio.wait_for(modem.aclose(budget=0.2), 2.0)
            except asyncio.TimeoutError:
                pass
            stop.set()
            await driver
    if status:
        return status
    if secret is not None:
        got = bytearray(bytes(got).replace(secret.encode("latin-1"), b"***"))
    n = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), None)
    if n is None and len(expected) != len(got):
        n = min(len(expected), len(got))
    if n is None:
        out(f"no divergence: {len(expected)} bytes from the module as recorded")
        return 0
    line = max((ln for off, ln in marks if off <= n), default=marks[0][1] if marks else 0)
    start = max((off for off, ln in marks if off <= n), default=0)
    out(f"{path}:{line}: the module's answer differs at byte {n - start} of that line (byte {n} of the "
        f"module's output): expected {bytes(expected[n:n + 24])!r}, got {bytes(got[n:n + 24])!r}")
    return 1


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="telit-emu replay", description=__doc__.split("\n\n")[0])
    p.add_argument("file")
    p.add_argument("--secret", help="the value of the masked secret (sent where the trace shows ***)")
    p.add_argument("--lwm2m-server", metavar="URI", help="the factory LwM2M server of the replaying module")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the replayed faults' random choices (default: the trace's '# seed' line, else 0)")
    args = p.parse_args(argv)
    try:
        return asyncio.run(replay(args.file, secret=args.secret, server=args.lwm2m_server, seed=args.seed,
                                  out=lambda s: print(s, flush=True)))
    except (OSError, ValueError) as exc:       # unreadable, not UTF-8, or not a trace: cannot replay
        print(f"telit-emu replay: {exc}", file=sys.stderr)
        return 2
