#!/usr/bin/env python3
"""LwM2M benchmark against a real Leshan server (fetched with mvn), baseline measured in the same run.

1. AT#LWM2MENA=1 -> LWM2M-TLT:"REGISTERED": the time a host waits, over the PTY (includes the
   module's emulated busy window after enabling, 0.5 s of module time; --time-scale shrinks it).
2. A Leshan REST read of /3/0/0 (HTTP -> Leshan -> CoAP -> device -> back): through the emulator,
   and through Leshan's own client (built from Leshan's client libraries) as the baseline.
3. Reads per second sustained: 4 threads reading /3/0/0 through Leshan's REST API for a few seconds.
4. Observe-notify latency: the host's AT#LWM2MSET on an observed resource until Leshan's event stream
   delivers the NOTIFICATION (emulator only: the baseline client has no host port); and, for both
   devices, a Leshan write of the observed /3/0/15 until the NOTIFICATION arrives.

    python tools/bench_lwm2m.py [--reads 300] [--enables 10] [--time-scale 1]
"""
from __future__ import annotations

import argparse
import statistics
import threading
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


def sustained(server: LeshanServer, ep: str, seconds: float, threads: int = 4) -> float:
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def worker(i):
        while time.monotonic() < stop:
            if server.read(ep, "3/0/0").get("success"):
                counts[i] += 1
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def write_notify(server: LeshanServer, ep: str, n: int) -> list[float]:
    """Leshan writes the observed /3/0/15; time until its event stream shows the notification."""
    out = []
    with server.events(ep) as events:
        assert server.observe(ep, "3/0/15", format="TEXT").get("success")
        for i in range(n):
            value = f"Zone/{i}"
            t0 = time.perf_counter()
            assert server.write(ep, "3/0/15", value, "string", format="TEXT").get("success")
            events.wait_event("NOTIFICATION", timeout=30, predicate=lambda e, v=value: v in str(e))
            out.append(time.perf_counter() - t0)
        server.cancel_observe(ep, "3/0/15")
    return out


def host_notify(server: LeshanServer, h, ep: str, n: int) -> list[float]:
    """The host's #LWM2MSET on the observed /3/0/9 until Leshan delivers the notification."""
    out = []
    with server.events(ep) as events:
        assert server.observe(ep, "3/0/9", format="TEXT").get("success")
        for i in range(n):
            value = 10 + i % 80
            t0 = time.perf_counter()
            h.cmd(f"AT#LWM2MSET=0,3,0,9,0,{value}")
            events.wait_event("NOTIFICATION", timeout=30, predicate=lambda e, v=value: f'"value":{v}' in
                              str(e).replace(" ", "").replace("'", '"') or f":{v}}}" in str(e).replace(" ", ""))
            out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reads", type=int, default=300)
    ap.add_argument("--enables", type=int, default=10)
    ap.add_argument("--time-scale", default="1")
    ap.add_argument("--seconds", type=float, default=5.0, help="duration of the sustained-read run")
    ap.add_argument("--notifies", type=int, default=50)
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
            emu_rate = sustained(server, ep, args.seconds)
            emu_host_notify = host_notify(server, h, ep, args.notifies)
            emu_write_notify = write_notify(server, ep, args.notifies)
        finally:
            emu.kill()
        with LeshanDemoClient(f"{ep}-leshan", server) as baseline:
            base_reads = reads(server, f"{ep}-leshan", args.reads)
            base_rate = sustained(server, f"{ep}-leshan", args.seconds)
            base_write_notify = write_notify(server, f"{ep}-leshan", args.notifies)
            del baseline
    print(f"AT#LWM2MENA=1 -> REGISTERED (time scale {args.time_scale}, {args.enables} runs): "
          f"p50 {statistics.median(enable) * 1e3:.1f} ms, max {max(enable) * 1e3:.1f} ms")
    e50, b50 = statistics.median(emu_reads), statistics.median(base_reads)
    print(f"{'REST read /3/0/0':<28}{'p50 ms':>10}{'p99 ms':>10}{'reads/s':>10}")
    for who, s in (("baseline Leshan client", base_reads), ("emulator", emu_reads)):
        print(f"{who:<28}{statistics.median(s) * 1e3:>10.2f}{pct(s, 0.99) * 1e3:>10.2f}{len(s) / sum(s):>10.0f}")
    print(f"{'ratio p50 emulator/baseline':<28}{e50 / b50:>10.2f}")
    print(f"reads/s sustained (4 threads, {args.seconds:.0f} s): baseline {base_rate:.0f}, emulator {emu_rate:.0f}, "
          f"ratio emulator/baseline {emu_rate / base_rate:.2f}")
    print(f"host AT#LWM2MSET -> Leshan NOTIFICATION (emulator): p50 {statistics.median(emu_host_notify) * 1e3:.2f} ms,"
          f" p99 {pct(emu_host_notify, 0.99) * 1e3:.2f} ms")
    bw, ew = statistics.median(base_write_notify), statistics.median(emu_write_notify)
    print(f"Leshan write -> NOTIFICATION p50: baseline {bw * 1e3:.2f} ms, emulator {ew * 1e3:.2f} ms, "
          f"ratio {ew / bw:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
