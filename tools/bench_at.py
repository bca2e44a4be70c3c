#!/usr/bin/env python3
"""AT round-trip benchmark over the PTY: the emulator against a bare PTY echo baseline, same run.

The baseline is the least a PTY-based module could do: a process that echoes every byte and answers
each line with OK. Both are driven by the same host loop (write a line, read until the final code).
Prints p50/p99 latency and commands/s for "AT" and for a long chained line, and the ratios.

    python tools/bench_at.py [-n 2000]
"""
from __future__ import annotations

import argparse
import os
import select
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import tty

ECHO_SERVER = textwrap.dedent(r'''
    import asyncio, os, pty, tty, sys
    async def main():
        master, slave = pty.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        print("port: " + os.ttyname(slave), flush=True)
        loop = asyncio.get_running_loop()
        def readable():
            data = os.read(master, 4096)
            out = data
            if b"\r" in data:
                out += b"\r\nOK\r\n" * data.count(b"\r")
            os.write(master, out)
        loop.add_reader(master, readable)
        await asyncio.Event().wait()
    asyncio.run(main())
''')

LONG = "AT" + ";".join(["+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CPIN?", "+CMEE?", "+CEREG?", "#CGMR"] * 6)[:395]
LONG = LONG[:LONG.rfind(";")]
# A 400-character line (the module's limit) with quoted strings, numbers, S-registers and basic commands.
LINE400 = "AT" + ";".join(['+CGDCONT=1,"IP","internet.example"', "#LWM2MSET=1,3303,0,5700,0,23.4", "+CEREG?",
                           "E0", "S7=60", "+CMEE=?"] * 12)
LINE400 = LINE400[:400]


def parse_figures(n: int = 2000) -> list[tuple[str, float]]:
    """Microseconds to parse LINE400's body in this process: the scanner with nothing remembered (a new
    Parser each time), the same with its per-line memo (what a modem pays for a line seen before),
    and the reference Lark LALR parser of grammar/at.lark."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from emulator.at.parser import LarkParser, Parser, strip_spaces
    body = LINE400[2:]
    out = []

    def timed(fn, k):
        fn()
        t0 = time.perf_counter()
        for _ in range(k):
            fn()
        return (time.perf_counter() - t0) / k * 1e6
    warm = Parser()
    lark = LarkParser()
    out.append(("scanner, cold", timed(lambda: Parser().parse(strip_spaces(body)), n)))
    out.append(("scanner, line seen before", timed(lambda: warm.parse_line(body), n)))
    out.append(("Lark LALR (reference)", timed(lambda: lark.parse(strip_spaces(body)), max(20, n // 20))))
    return out


def start(cmd):
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = proc.stdout.readline().decode()
    assert line.startswith("port: "), line
    return proc, line.split(": ", 1)[1].strip()


def roundtrips(path: str, line: bytes, n: int) -> list[float]:
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(fd)
    try:
        def one() -> float:
            t0 = time.perf_counter()
            os.write(fd, line + b"\r")
            buf = b""
            while not buf.endswith(b"OK\r\n"):
                select.select([fd], [], [], 5)
                buf += os.read(fd, 65536)
            return time.perf_counter() - t0
        for _ in range(50):                       # warm-up
            one()
        return [one() for _ in range(n)]
    finally:
        os.close(fd)


def summary(samples: list[float]) -> tuple[float, float, float]:
    s = sorted(samples)
    p50 = statistics.median(s)
    p99 = s[min(len(s) - 1, int(len(s) * 0.99))]
    rate = len(s) / sum(s)
    return p50, p99, rate


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-n", type=int, default=2000, help="round trips per case (default 2000)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as state:
        emu, emu_port = start([sys.executable, "-m", "emulator", "--state-dir", state])
        base, base_port = start([sys.executable, "-c", ECHO_SERVER])
        try:
            print(f"{'case':<22}{'p50 us':>10}{'p99 us':>10}{'cmd/s':>10}")
            results = {}
            for label, line in (("AT", b"AT"), (f"chain ({len(LONG)} chars)", LONG.encode())):
                for who, path in (("baseline", base_port), ("emulator", emu_port)):
                    p50, p99, rate = summary(roundtrips(path, line, args.n))
                    results[(label, who)] = p50
                    print(f"{who + ' ' + label:<22}{p50 * 1e6:>10.0f}{p99 * 1e6:>10.0f}{rate:>10.0f}")
                ratio = results[(label, "emulator")] / results[(label, "baseline")]
                target = "  (target <= 1.5)" if label == "AT" else "  (target <= 2)"
                print(f"{'ratio p50 ' + label:<22}{ratio:>10.2f}{target}")
        finally:
            for p in (emu, base):
                p.terminate()
                p.wait()
    print(f"parsing a {len(LINE400)}-character line (target < 100 us):")
    for label, us in parse_figures():
        print(f"  {label:<30}{us:>10.1f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())
