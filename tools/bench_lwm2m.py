#!/usr/bin/env python3
"""LwM2M benchmark against a real Leshan server (fetched with mvn), baseline measured in the same run.

1. AT#LWM2MENA=1 -> LWM2M-TLT:"REGISTERED": the time a host waits, over the PTY (includes the
   module's emulated busy window after enabling, 0.5 s of module time; --time-scale shrinks it).
2. A Leshan REST read of /3/0/0 (HTTP -> Leshan -> CoAP -> device -> back): through the emulator,
   and through Leshan's own client (built from Leshan's client libraries) as the baseline.

    python tools/bench_lwm2m.py [--reads 300] [--enables 10] [--time-scale 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.testing.host import EmulatorProcess  # noqa: E402
from emulator.testing.leshan import LeshanDemoClient, LeshanServer  # noqa: E402


def pct(samples, q):
    s = sorted(samples)
    return s[min(len(s) - 1, int(len(s) * q))]


def reads(server: LeshanServer, ep: str, n: int) -> list[float]:
    for _ in range(10):
        server.read(ep, "3/0/0")
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = server.read(ep, "3/0/0")
        out.append(time.perf_counter() - t0)
        assert r.get("success"), r
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--enables", type=int, default=10)
    ap.add_argument("--time-scale", default="1")
    args = ap.parse_args()
    ep = f"bench-{uuid.uuid4().hex[:8]}"
    with LeshanServer() as server, tempfile.TemporaryDirectory() as state:
        emu = EmulatorProcess(Path(state), "--lwm2m-server", server.coap_uri, "--time-scale", args.time_scale)
        try:
            h = emu.open()
            h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"')
            h.cmd("AT#REBOOT")
            h.cmd("ATE0")
            h.echo = False
            while b",1" not in h.cmd("AT+CEREG?"):
                time.sleep(0.05)
            enable = []
            for i in range(args.enables):
                t0 = time.perf_counter()
                h.cmd("AT#LWM2MENA=1")
                h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r]*\r\n', timeout=60)
                enable.append(time.perf_counter() - t0)
                if i + 1 < args.enables:
                    h.cmd("AT#LWM2MENA=0")
                    h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n', timeout=60)
            server.wait_client(ep, timeout=30)
            emu_reads = reads(server, ep, args.reads)
        finally:
            emu.kill()
        with LeshanDemoClient(f"{ep}-leshan", server) as baseline:
            base_reads = reads(server, f"{ep}-leshan", args.reads)
            del baseline
    print(f"AT#LWM2MENA=1 -> REGISTERED (time scale {args.time_scale}, {args.enables} runs): "
          f"p50 {statistics.median(enable) * 1e3:.1f} ms, max {max(enable) * 1e3:.1f} ms")
    e50, b50 = statistics.median(emu_reads), statistics.median(base_reads)
    print(f"{'REST read /3/0/0':<28}{'p50 ms':>10}{'p99 ms':>10}{'reads/s':>10}")
    for who, s in (("baseline Leshan client", base_reads), ("emulator", emu_reads)):
        print(f"{who:<28}{statistics.median(s) * 1e3:>10.2f}{pct(s, 0.99) * 1e3:>10.2f}{len(s) / sum(s):>10.0f}")
    print(f"{'ratio p50 emulator/baseline':<28}{e50 / b50:>10.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
