#!/usr/bin/env python3
"""Fleet start-up benchmark: N modems constructed and powered on in one process (in-process
MemoryPort + ManualClock, nothing on the network), then closed.

Prints the time to construct + power on the fleet, per modem, and how many DDF model files were
parsed (the built-in models are parsed once per process: issue 10, item 7).

    python tools/bench_fleet.py [--modems 1000] [--dir /dev/shm]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.clock import ManualClock  # noqa: E402
from emulator.lwm2m import models  # noqa: E402
from emulator.modem.core import Modem  # noqa: E402
from emulator.port import MemoryPort  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--modems", type=int, default=1000)
    ap.add_argument("--dir", default=None, help="where the modems' state folders go (default: the system's "
                    "temporary folder; e.g. /dev/shm to leave the disk out of the figure)")
    args = ap.parse_args(argv)
    parses = 0
    real_parse = models.parse_models

    def counting(data):
        nonlocal parses
        parses += 1
        return real_parse(data)
    models.parse_models = counting

    async def go(tmp: Path) -> tuple[float, float]:
        clock = ManualClock()
        Modem(MemoryPort(), tmp / "warm", clock=clock).start()     # grammar + models: once per process
        fleet = []
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(args.modems):
            m = Modem(MemoryPort(), tmp / f"m{i}", clock=clock)
            m.start()
            fleet.append(m)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        for m in fleet:
            m.close()
        return elapsed, cpu

    with tempfile.TemporaryDirectory(prefix="telit-fleet-", dir=args.dir) as tmp:
        elapsed, cpu = asyncio.new_event_loop().run_until_complete(go(Path(tmp)))
    print(f"{args.modems} modems constructed and powered on: {elapsed:.2f} s wall, {cpu:.2f} s CPU "
          f"({elapsed / args.modems * 1000:.2f} ms per modem); model files parsed in the process: {parses}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
