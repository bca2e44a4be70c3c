#!/usr/bin/env python3
"""Fleet benchmark: the emulator's fleet against a fleet of Leshan-library Java clients, same run.

1. Build: N modems constructed and powered on in one process (MemoryPort + ManualClock, nothing on
   the network), then closed; how many DDF model files were parsed (once per process: issue 10).
2. Registration, against one Leshan demo server on loopback: the emulator fleet (``Fleet``, one
   process, ephemeral NVM) and a fleet of Leshan client-library clients in ONE JVM
   (emulator/testing/java/TelitEmuLeshanFleet.java), same N and the same arrival: a burst, then a
   ramp of R per second. Each side runs in its own process, one after the other.
   For each: registered count and the time until the last registration, registrations per second,
   p50/p99 registration ms (from the modem's AT#LWM2MENA=1 / the client's start to its REGISTERED),
   RSS KB per registered idle modem (process RSS delta / registered), idle CPU % of one core over
   ``--idle`` seconds once registered. Where the Java fleet cannot reach N it says how far it got.

In a burst the emulator fleet builds every modem first and then enables them all at once, so its
p50/p99 include the queue of N registrations in flight; the Java fleet builds its clients one after
another in one thread (a few ms each) and each registers as soon as it is built, so its burst is paced
by construction and its p50 is that of a lone client. Compare registrations per second there.

The emulator's modems run with a benchmark profile: no attach delay and no busy window after
#LWM2MENA (the module's emulated waits; the Java client has none), so both sides measure machinery.

    python tools/bench_fleet.py [--count 1000] [--ramp 200] [--idle 10] [--timeout 120]
                                [--skip-java] [--skip-build] [--modems 1000]
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.clock import ManualClock  # noqa: E402
from emulator.lwm2m import models  # noqa: E402
from emulator.modem.core import Modem  # noqa: E402
from emulator.port import MemoryPort  # noqa: E402

BENCH_PROFILE = {"network": {"attach_delay": 0.0}, "lwm2m": {"busy_window": 0.0}}


# ---------------------------------------------------------------------------------------------- build
def build_figure(modems: int, where: str | None) -> str:
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
        for i in range(modems):
            m = Modem(MemoryPort(), tmp / f"m{i}", clock=clock)
            m.start()
            fleet.append(m)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
        for m in fleet:
            m.close()
        return elapsed, cpu

    try:
        with tempfile.TemporaryDirectory(prefix="telit-fleet-", dir=where) as tmp:
            elapsed, cpu = asyncio.new_event_loop().run_until_complete(go(Path(tmp)))
    finally:
        models.parse_models = real_parse
    return (f"{modems} modems constructed and powered on: {elapsed:.2f} s wall, {cpu:.2f} s CPU "
            f"({elapsed / modems * 1000:.2f} ms per modem); model files parsed in the process: {parses}")


# ---------------------------------------------------------------------------------- process figures
def rss_kb(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid: int | str = "self") -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def threads(pid: int | str = "self") -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q / 100.0 * (len(s) - 1)))))]


# ------------------------------------------------------------------------------------ emulator trial
def emulator_trial(args) -> dict:
    """One emulator fleet in this process (run as a child of the benchmark): JSON on stdout."""
    from emulator.fleet.identity import IdentityPlan
    from emulator.fleet.runner import REGISTERED, Fleet, FleetOptions
    from emulator.modem.profile import Profile

    async def go() -> dict:
        opts = FleetOptions(count=args.count, server=args.server, ramp=args.ramp or None, progress=0,
                            plan=IdentityPlan(endpoint_prefix=args.prefix), profile=Profile(BENCH_PROFILE))
        fleet = Fleet(opts)
        with tempfile.TemporaryDirectory(prefix="telit-warm-") as tmp:   # what a process loads once (models,
            warm = Modem(MemoryPort(), Path(tmp), clock=ManualClock(), ephemeral=True)   # grammar, commands):
            warm.start()                                                  # the JVM's side loads its model
            warm.close()                                                  # before READY too
        await asyncio.sleep(0.1)
        rss0 = rss_kb()
        t0 = time.monotonic()
        fleet.build()
        built = time.monotonic() - t0
        rss_built = rss_kb()
        t_start = time.monotonic()
        arrivals = asyncio.ensure_future(fleet._arrivals_loop())
        deadline = t_start + args.timeout
        while time.monotonic() < deadline:
            if sum(m.state == REGISTERED for m in fleet.members) >= args.count:
                break
            await asyncio.sleep(0.02)
        times = [m.registered_ms for m in fleet.members if m.registered_ms is not None]
        registered = sum(m.state == REGISTERED for m in fleet.members)
        last = max((m.enabled_at + m.registered_ms / 1000.0 for m in fleet.members if m.registered_ms is not None),
                   default=t_start)
        span = max(1e-6, last - t_start)
        await asyncio.sleep(1.0)                 # let the last exchanges settle before the idle window
        rss1 = rss_kb()
        c0, w0 = cpu_s(), time.monotonic()
        await asyncio.sleep(args.idle)
        idle_cpu = (cpu_s() - c0) / (time.monotonic() - w0) * 100.0
        summary = fleet.summary()
        out = {
            "who": "emulator", "count": args.count, "registered": registered, "started": len(fleet.members),
            "time_to_last_s": round(span, 3), "reg_per_s": round(len(times) / span, 1),
            "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
            "rss_kb_per_modem": round((rss1 - rss0) / max(1, registered), 1),
            "rss_kb_per_modem_built": round((rss_built - rss0) / max(1, args.count), 1),
            "idle_cpu_pct": round(idle_cpu, 2), "build_s": round(built, 2),
            "failed_attempts": summary["failures"].get("register_attempt", 0), "threads": threads(),
        }
        arrivals.cancel()
        await fleet.shutdown(budget=10.0)
        return out

    return asyncio.run(go())


def run_emulator(server_uri: str, count: int, ramp: float | None, prefix: str, timeout: float, idle: float) -> dict:
    cmd = [sys.executable, __file__, "--emu-trial", "--server", server_uri, "--count", str(count),
           "--prefix", prefix, "--timeout", str(timeout), "--idle", str(idle)]
    cmd += ["--ramp", str(ramp or 0)]              # 0: a burst
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + idle + 120)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"emulator trial failed (exit {proc.returncode}): {proc.stderr[-2000:]}")


# ---------------------------------------------------------------------------------------- Java trial
def run_java(server_uri: str, count: int, ramp: float | None, prefix: str, timeout: float, idle: float) -> dict:
    from emulator.testing.leshan import JAVA_OPTS, fetch_jar, require_tool
    jar = fetch_jar("fleet")
    cmd = [require_tool("java"), *JAVA_OPTS, "-jar", str(jar), "-n", str(count), "-u", server_uri, "-e", prefix,
           "-t", str(timeout)]
    if ramp:
        cmd += ["-r", str(ramp)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, bufsize=1)
    times: list[float] = []
    final: dict = {}
    try:
        line = proc.stdout.readline()
        if not line.startswith("READY"):
            raise RuntimeError(f"Java fleet did not start: {line!r}")
        time.sleep(1.0)
        rss0 = rss_kb(proc.pid)
        proc.stdin.write("GO\n")
        proc.stdin.flush()
        t_start = time.monotonic()
        last = t_start
        for line in proc.stdout:
            if line.startswith("REGISTERED "):
                times.append(float(line.split()[2]))
                last = time.monotonic()
            elif line.startswith("{"):
                final = json.loads(line)
                break
        span = max(1e-6, last - t_start)
        time.sleep(1.0)
        rss1 = rss_kb(proc.pid)
        c0, w0 = cpu_s(proc.pid), time.monotonic()
        time.sleep(idle)
        idle_cpu = (cpu_s(proc.pid) - c0) / (time.monotonic() - w0) * 100.0
        registered = final.get("registered", len(times))
        out = {
            "who": "java", "count": count, "registered": registered, "started": final.get("started"),
            "time_to_last_s": round(span, 3), "reg_per_s": round(len(times) / span, 1),
            "p50_ms": pct(times, 50), "p99_ms": pct(times, 99),
            "rss_kb_per_modem": round((rss1 - rss0) / max(1, registered), 1),
            "idle_cpu_pct": round(idle_cpu, 2), "failed_attempts": final.get("failed_attempts"),
            "threads": threads(proc.pid), "error": final.get("error"),
        }
        return out
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------- report
def fmt(v, spec=".1f"):
    return "-" if v is None else format(v, spec)


def table(rows: list[dict]) -> str:
    head = (f"{'':<22}{'registered':>14}{'t last s':>10}{'reg/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
            f"{'KB/modem':>10}{'idle CPU%':>10}{'threads':>9}")
    out = [head]
    for r in rows:
        out.append(f"{r['label']:<22}{str(r['registered']) + '/' + str(r['count']):>14}{fmt(r['time_to_last_s'], '.2f'):>10}"
                   f"{fmt(r['reg_per_s'], '.0f'):>9}{fmt(r['p50_ms']):>9}{fmt(r['p99_ms']):>9}"
                   f"{fmt(r['rss_kb_per_modem']):>10}{fmt(r['idle_cpu_pct'], '.2f'):>10}{r.get('threads', '-'):>9}")
        if r.get("error"):
            out.append(f"{'':<22}stopped: {r['error']}")
        if r["who"] == "java" and r["registered"] < r["count"]:
            out.append(f"{'':<22}the Java fleet got to {r['registered']} of {r['count']} "
                       f"(started {r.get('started')})")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--count", type=int, default=1000, help="modems / clients per trial (default 1000)")
    ap.add_argument("--ramp", type=float, default=200.0, help="arrivals per second of the ramp trial (default 200)")
    ap.add_argument("--idle", type=float, default=10.0, help="seconds of the idle-CPU window (default 10)")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds a trial waits for all registrations")
    ap.add_argument("--skip-java", action="store_true", help="the emulator fleet only")
    ap.add_argument("--skip-build", action="store_true", help="leave out the build figure")
    ap.add_argument("--only", choices=("burst", "ramp"), help="one arrival only")
    ap.add_argument("--modems", type=int, default=1000, help="modems of the build figure (default 1000)")
    ap.add_argument("--dir", default=None, help="where the build figure's state folders go")
    ap.add_argument("--json", help="also write every figure to this file")
    # one emulator trial, run by the benchmark as its own child process
    ap.add_argument("--emu-trial", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--server", help=argparse.SUPPRESS)
    ap.add_argument("--prefix", default="emu-", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.emu_trial:
        print(json.dumps(emulator_trial(args)), flush=True)
        return 0
    report: dict = {}
    if not args.skip_build:
        line = build_figure(args.modems, args.dir)
        print(line, flush=True)
        report["build"] = line
    from emulator.testing.leshan import LeshanServer
    rows = []
    arrivals = [("burst", None), (f"ramp {args.ramp:g}/s", args.ramp)]
    if args.only:
        arrivals = [a for a in arrivals if a[0].startswith(args.only)]
    with LeshanServer() as server:
        for name, ramp in arrivals:
            tag = "b" if ramp is None else "r"
            sides = [("emulator", run_emulator)] + ([] if args.skip_java else [("java", run_java)])
            for who, fn in sides:
                r = fn(server.coap_uri, args.count, ramp, f"{who[:3]}-{tag}-", args.timeout, args.idle)
                r["label"] = f"{who} {name}"
                r["arrival"] = name
                rows.append(r)
                print(f"  {r['label']}: {r['registered']}/{r['count']} registered", file=sys.stderr, flush=True)
    print(f"registration against one Leshan demo on loopback, {args.count} per trial; idle window {args.idle:g} s")
    print(table(rows))
    for name, _ in arrivals:
        e = next((r for r in rows if r["arrival"] == name and r["who"] == "emulator"), None)
        j = next((r for r in rows if r["arrival"] == name and r["who"] == "java"), None)
        if e and j and j["reg_per_s"] and j["rss_kb_per_modem"]:
            print(f"ratios {name}: reg/s emulator/java {e['reg_per_s'] / j['reg_per_s']:.2f} (goal >= 1), "
                  f"KB per modem emulator/java {e['rss_kb_per_modem'] / j['rss_kb_per_modem']:.2f}, "
                  f"p50 emulator/java {e['p50_ms'] / j['p50_ms']:.2f}" if e["p50_ms"] and j["p50_ms"] else "")
    e = [r for r in rows if r["who"] == "emulator"]
    if e:
        print(f"goals (emulator): KB per registered idle modem <= 50: {max(r['rss_kb_per_modem'] for r in e):.1f}; "
              f"no modem left behind in the burst: {e[0]['registered']}/{e[0]['count']}; "
              f"idle CPU < 5 % of a core: {max(r['idle_cpu_pct'] for r in e):.2f} %")
    report["registration"] = rows
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
