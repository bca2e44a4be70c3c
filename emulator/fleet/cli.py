"""``telit-emu fleet``: run many modems against one LwM2M server (see emulator/fleet/runner.py).

With ``--processes P`` the parent starts P child fleets (each a shard of the indexes), proxies the
control socket to them, prints their summed progress and merges their summaries.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..control import ControlError, ControlServer, request
from ..lwm2m.coap import server_uri_problem
from ..modem.profile import Profile, ProfileError
from ..scenarios.format import ScenarioError, load as load_scenario
from .identity import IdentityError, IdentityPlan, shard_slice
from .runner import Fleet, FleetOptions, percentile


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="telit-emu fleet", allow_abbrev=False,
                                description="Run N emulated modules (full modems, one event loop per "
                                            "process) against one LwM2M server.")
    p.add_argument("--count", type=int, required=True, help="modems in the whole fleet")
    p.add_argument("--lwm2m-server", required=True, metavar="URI", help="coap://host:port of the server")
    p.add_argument("--lwm2m-bootstrap", action="store_true", help="the server is a bootstrap server")
    arrival = p.add_mutually_exclusive_group()
    arrival.add_argument("--ramp", type=float, metavar="R", help="enable R modems per second")
    arrival.add_argument("--burst", action="store_true", help="enable every modem at once (default)")
    p.add_argument("--imei-base", default=IdentityPlan.imei_base, help="IMEI of modem 0 (15 digits)")
    p.add_argument("--imsi-base", default=IdentityPlan.imsi_base, help="IMSI of modem 0")
    p.add_argument("--iccid-base", default=IdentityPlan.iccid_base, help="ICCID of modem 0 (19/20 digits)")
    p.add_argument("--endpoint-prefix", metavar="P", help="endpoint names P0, P1 ... (default: the IMEI)")
    state = p.add_mutually_exclusive_group()
    state.add_argument("--state-dir", type=Path, metavar="DIR", help="one NVM folder per modem under DIR")
    state.add_argument("--ephemeral", action="store_true", help="no NVM on disk (the default without --state-dir)")
    p.add_argument("--control", type=Path, metavar="PATH",
                   help="control socket (default: DIR/control.sock with --state-dir, none when ephemeral)")
    p.add_argument("--behaviour", action="append", default=[], metavar="FILE[:SHARE]",
                   help="scenario run by every modem, or by a SHARE (0..1) of them after it registered; repeatable")
    p.add_argument("--ptys", type=int, default=0, metavar="K", help="modems 0..K-1 get a PTY for a host program")
    p.add_argument("--processes", type=int, default=1, metavar="P", help="shard the fleet across P processes")
    p.add_argument("--shard-index", type=int, default=None, metavar="I",
                   help="run only shard I (default: $JOB_COMPLETION_INDEX, else 0)")
    p.add_argument("--shard-count", type=int, default=1, metavar="S", help="the fleet is split in S shards")
    p.add_argument("--profile", metavar="TOML", help="module profile applied to every modem")
    p.add_argument("--time-scale", type=float, default=1.0, metavar="X", help="module clock speed")
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument("--json", type=Path, metavar="FILE", help="write the final summary as JSON")
    p.add_argument("--progress", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between progress lines on stderr (0: none)")
    p.add_argument("--samples", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)   # a shard of --processes
    return p


def _behaviours(specs: list[str]):
    out, total = [], 0.0
    for spec in specs:
        path, share = spec, 1.0
        head, sep, tail = spec.rpartition(":")
        if sep and head:
            try:
                share = float(tail)
                path = head
            except ValueError:
                pass
        if not 0 < share <= 1:
            raise ScenarioError(f"--behaviour {spec}: SHARE must be in (0, 1]")
        total += share
        if total > 1 + 1e-9:
            raise ScenarioError("--behaviour shares add up to more than 1")
        out.append((load_scenario(path), share))
    return out


def _raise_nofile(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, needed)) if hard != resource.RLIM_INFINITY else max(soft, needed)
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    say = lambda text: print(f"telit-emu fleet: {text}", file=sys.stderr)  # noqa: E731
    if args.count < 1:
        say("--count must be >= 1")
        return 2
    problem = server_uri_problem(args.lwm2m_server)
    if problem:
        say(f"--lwm2m-server {args.lwm2m_server!r}: {problem}")
        return 2
    shard_index = args.shard_index
    if shard_index is None:
        shard_index = int(os.environ.get("JOB_COMPLETION_INDEX", "0") or 0)
    plan = IdentityPlan(args.imei_base, args.imsi_base, args.iccid_base, args.endpoint_prefix)
    if args.shard_count > args.count * max(1, args.processes) and not args.child:
        say("--shard-count cannot exceed --count")
        return 2
    if args.json is not None and not args.json.parent.is_dir():
        say(f"--json {args.json}: no folder {args.json.parent}")
        return 2
    try:
        plan.validate(args.count)
        shard_slice(args.count, shard_index, args.shard_count)
        behaviours = _behaviours(args.behaviour)
        profile = Profile.load(args.profile)
    except (IdentityError, ScenarioError, ProfileError) as exc:
        say(str(exc))
        return 2
    if args.time_scale <= 0 or (args.ramp is not None and args.ramp <= 0) or args.processes < 1:
        say("--time-scale, --ramp and --processes must be > 0")
        return 2
    control = args.control
    if control is None and args.state_dir is not None:
        control = args.state_dir / "control.sock"
    if args.processes > 1:
        return asyncio.run(_parent(args, argv, shard_index, control))
    opts = FleetOptions(count=args.count, server=args.lwm2m_server, bootstrap=args.lwm2m_bootstrap,
                        plan=plan, shard_index=shard_index, shard_count=args.shard_count,
                        state_dir=args.state_dir, ramp=args.ramp, behaviours=behaviours, ptys=args.ptys,
                        profile=profile if args.profile else None, time_scale=args.time_scale,
                        duration=args.duration, progress=args.progress, samples=args.samples)
    _raise_nofile(len(opts.indexes) * 2 + 256)
    return asyncio.run(_single(opts, control, args.json, announce=not args.child))


async def _single(opts: FleetOptions, control: Path | None, json_path: Path | None, *,
                  announce: bool = True) -> int:
    fleet = Fleet(opts)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, fleet.stop)
    server = None
    if control is not None:
        server = ControlServer(control, fleet.handlers())
        try:
            await server.start()
        except ControlError as exc:
            print(f"telit-emu fleet: {exc}", file=sys.stderr)
            return 2
        if announce:
            print(f"control: {control}", flush=True)
    try:
        summary = await fleet.run()
    finally:
        if server is not None:
            await server.close()
    return 0 if _report(summary, json_path) else 1


def _report(summary: dict, json_path: Path | None) -> bool:
    """Print the summary on stderr and write it to ``json_path``; False when it could not be written."""
    short = {k: v for k, v in summary.items() if k not in ("endpoints", "registration_ms")}
    print("fleet summary: " + json.dumps(short), file=sys.stderr, flush=True)
    if json_path is not None:
        tmp = json_path.with_name(f".{json_path.name}.tmp")
        try:
            tmp.write_text(json.dumps(summary, indent=1) + "\n")
            os.replace(tmp, json_path)
        except OSError as exc:
            print(f"telit-emu fleet: cannot write {json_path}: {exc}", file=sys.stderr)
            return False
    return True


# ---------------------------------------------------------------------- several processes
def _strip(argv: list[str], names: set[str]) -> list[str]:
    """argv without the options in ``names`` (and their values)."""
    out, skip = [], False
    takes_value = {"--processes", "--shard-index", "--shard-count", "--json", "--control", "--progress"}
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in names:
            skip = "=" not in arg and name in takes_value
            continue
        out.append(arg)
    return out


async def _parent(args, argv: list[str], shard_index: int, control: Path | None) -> int:
    """Run the fleet as ``--processes`` child shards; always stops them and cleans up, whatever fails."""
    procs = args.processes
    children: list[tuple[subprocess.Popen, Path, Path, range]] = []

    def child_for(index):
        if isinstance(index, bool) or not isinstance(index, int):
            return None
        for _, ctl, _, rng in children:
            if index in rng:
                return ctl
        return None

    async def forward(ctl, req, timeout=10.0):
        return await asyncio.to_thread(request, ctl, req, timeout)

    async def at(req):
        ctl = child_for(req.get("modem", 0))
        if ctl is None:
            raise ControlError(f"no modem {req.get('modem')!r} in this fleet")
        wait = req.get("timeout", 10)
        wait = float(wait) if isinstance(wait, (int, float)) and not isinstance(wait, bool) else 10.0
        return await forward(ctl, req, min(wait, 300.0) + 5.0)

    async def status(req):
        total: dict = {"ok": True, "failures": {}}
        for _, ctl, _, _ in children:
            try:
                part = await forward(ctl, {"verb": "status"})
            except ControlError:
                continue
            for key, value in part.items():
                if key == "failures" and isinstance(value, dict):
                    for kind, n in value.items():
                        total["failures"][kind] = total["failures"].get(kind, 0) + n
                elif isinstance(value, (int, float)) and not isinstance(value, bool):
                    total[key] = total.get(key, 0) + value
        return total

    async def time_(req):
        return await forward(children[0][1], req)

    server = None
    if control is not None:                 # before any child starts: a bad path stops nothing
        server = ControlServer(control, {"at": at, "status": status, "time": time_})
        try:
            await server.start()
        except ControlError as exc:
            print(f"telit-emu fleet: {exc}", file=sys.stderr)
            return 2
    tmp = Path(tempfile.mkdtemp(prefix="telit-fleet-"))
    os.chmod(tmp, 0o700)
    names = {"--processes", "--shard-index", "--shard-count", "--json", "--control", "--progress"}
    base = _strip(argv, names)
    parts: list[dict | None] = []
    try:
        for k in range(procs):
            sub_index = shard_index * procs + k
            sub_count = args.shard_count * procs
            ctl, out = tmp / f"c{k}.sock", tmp / f"s{k}.json"
            cmd = [sys.executable, "-m", "emulator", "fleet", *base, "--shard-index", str(sub_index),
                   "--shard-count", str(sub_count), "--json", str(out), "--control", str(ctl),
                   "--progress", "0", "--samples", "--child", "--processes", "1"]
            if args.state_dir is None and "--ephemeral" not in base:
                cmd.append("--ephemeral")
            proc = subprocess.Popen(cmd, stdout=sys.stdout, stderr=sys.stderr, start_new_session=True)
            children.append((proc, ctl, out, shard_slice(args.count, sub_index, sub_count)))
        if server is not None:
            print(f"control: {control}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        t0 = time.monotonic()
        while not stop.is_set() and any(p.poll() is None for p, *_ in children):
            try:
                await asyncio.wait_for(stop.wait(), args.progress or 1.0)
            except asyncio.TimeoutError:
                pass
            if args.progress and not stop.is_set():
                c = await status({})
                if "count" in c:
                    print(f"fleet: {time.monotonic() - t0:7.1f} s  registered {c.get('registered', 0)}/{args.count}"
                          f"  pending {c.get('pending', 0)}  retrying {c.get('retrying', 0)}  "
                          f"failed {c.get('failed', 0)}  ({procs} processes)", file=sys.stderr, flush=True)
    finally:
        for proc, *_ in children:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc, *_ in children:
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), 60)
            except asyncio.TimeoutError:
                proc.kill()
        if server is not None:
            await server.close()
        for _, _, out, _ in children:
            try:
                parts.append(json.loads(out.read_text()))
            except (OSError, ValueError):
                parts.append(None)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    summary = merge_summaries([p for p in parts if p], procs)
    lost = sum(1 for p in parts if p is None)
    if lost:
        summary["failures"]["process"] = summary["failures"].get("process", 0) + lost
    written = _report(summary, args.json)
    return 0 if written and not lost else 1


def merge_summaries(parts: list[dict], processes: int) -> dict:
    """One summary from the summaries of the processes of a fleet."""
    samples = [t for p in parts for t in p.get("registration_ms", [])]
    out: dict = {"count": 0, "registered": 0, "failed": 0, "pending": 0, "retrying": 0, "updates": 0,
                 "notifications": 0, "requests": 0, "cpu_s": 0.0, "failures": {}, "endpoints": []}
    rss = 0.0
    for p in parts:
        for key in ("count", "registered", "failed", "pending", "retrying", "updates", "notifications",
                    "requests"):
            out[key] += p.get(key, 0)
        out["cpu_s"] = round(out["cpu_s"] + p.get("cpu_s", 0.0), 2)
        rss += p.get("rss_kb_per_modem", 0.0) * p.get("count", 0)
        for kind, n in p.get("failures", {}).items():
            out["failures"][kind] = out["failures"].get(kind, 0) + n
        out["endpoints"] += p.get("endpoints", [])
    p50, p99 = percentile(samples, 50), percentile(samples, 99)
    out["registration_p50_ms"] = round(p50, 1) if p50 is not None else None
    out["registration_p99_ms"] = round(p99, 1) if p99 is not None else None
    out["rss_kb_per_modem"] = round(rss / max(1, out["count"]), 1)
    out["wall_s"] = max((p.get("wall_s", 0.0) for p in parts), default=0.0)
    out["processes"] = processes
    return out
