"""Fleet mode: N complete modems on one asyncio loop, each its own identity, UDP socket and NVM.

Every modem is a full `Modem` (AT engine, module model, object store, LwM2M agent); the fleet plays
the host of each one: it waits for the network, sends ``AT#LWM2MENA=1`` at the modem's arrival time
(all at once with ``burst``, or ``ramp`` modems per second) and then runs the modem's behaviour
scenario, if any. Registration progress is read from the module's own URCs (``LWM2M-TLT:``), as a host
would. Modems 0..ptys-1 get a PTY instead and are left to the host program that opens it.

The summary (``Fleet.summary()``) is a dict with at least: ``count``, ``registered``, ``failed``,
``registration_p50_ms`` / ``registration_p99_ms`` (real milliseconds from ``AT#LWM2MENA=1`` to the
``REGISTERED`` URC), ``updates``, ``notifications``, ``rss_kb_per_modem``, ``cpu_s`` and ``failures``
(kind -> count).
"""
from __future__ import annotations

import asyncio
import logging
import os
import resource
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..clock import Clock, RealClock
from ..control import ControlError, ControlServer, at_exchange
from ..modem.core import Modem
from ..modem.profile import Profile
from ..port import PtyPort
from ..scenarios.format import Scenario
from ..scenarios.host import HostRunner
from .identity import Identity, IdentityPlan, shard_slice
from .port import LinePort, LineTap

log = logging.getLogger("emulator.fleet")

GOLDEN = 0.6180339887498949          # spreads behaviour shares evenly over the indexes


@dataclass
class FleetOptions:
    """What ``telit-emu fleet`` was asked for. ``count`` is the whole fleet; this process runs the
    indexes of ``shard_index`` of ``shard_count``. ``state_dir`` None means ephemeral (no NVM on disk)."""
    count: int
    server: str
    bootstrap: bool = False
    plan: IdentityPlan = field(default_factory=IdentityPlan)
    shard_index: int = 0
    shard_count: int = 1
    state_dir: Path | None = None
    ramp: float | None = None            # modems per second; None = burst
    behaviours: list[tuple[Scenario, float]] = field(default_factory=list)
    ptys: int = 0
    profile: Profile | None = None
    time_scale: float = 1.0
    duration: float | None = None        # real seconds to run; None = until stopped
    progress: float = 1.0                # seconds between progress lines on stderr; 0 = none
    samples: bool = False                # keep the raw registration times in the summary

    @property
    def indexes(self) -> range:
        return shard_slice(self.count, self.shard_index, self.shard_count)


PENDING, REGISTERED, FAILED, IDLE, DISABLED = "pending", "registered", "failed", "idle", "disabled"


class FleetModem:
    """One modem of the fleet and what the fleet knows of it."""

    __slots__ = ("ident", "modem", "tap", "feed", "pty", "state", "enabled_at", "registered_ms",
                 "attempts_failed", "behaviour", "task", "_lock", "_registered")

    def __init__(self, ident: Identity, modem: Modem, tap: LineTap, pty: bool):
        self.ident = ident
        self.modem = modem
        self.tap = tap
        self.feed = modem.engine.feed
        self.pty = pty
        self.state = IDLE
        self.enabled_at = 0.0
        self.registered_ms: float | None = None
        self.attempts_failed = 0
        self.behaviour: Scenario | None = None
        self.task: asyncio.Task | None = None
        self._lock: asyncio.Lock | None = None
        self._registered: asyncio.Future | None = None

    @property
    def lock(self) -> asyncio.Lock:
        """Serialises the AT exchanges the fleet itself has with this modem (arrival, control)."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    async def until_registered(self) -> bool:
        """Wait for the modem's REGISTERED URC; False when it failed (FORCE_EXIT) instead."""
        if self.state == REGISTERED:
            return True
        if self.state == FAILED:
            return False
        self._registered = asyncio.get_running_loop().create_future()
        try:
            return await self._registered
        finally:
            self._registered = None

    def settle(self, registered: bool) -> None:
        if self._registered is not None and not self._registered.done():
            self._registered.set_result(registered)

    def send(self, line: str) -> None:
        self.feed(line.encode("latin-1", "replace") + b"\r")


def _rss_kb() -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, int(round(q / 100.0 * (len(ordered) - 1)))))
    return ordered[k]


class Fleet:
    """Builds, runs and stops the modems of ``options`` on the running loop."""

    def __init__(self, options: FleetOptions, clock: Clock | None = None):
        self.opts = options
        self.clock = clock or RealClock(options.time_scale)
        self.members: list[FleetModem] = []
        self.by_index: dict[int, FleetModem] = {}
        self.failures: dict[str, int] = {}
        self.counters = {"updates": 0, "notifications": 0, "requests": 0}
        self._tmp: tempfile.TemporaryDirectory | None = None
        self._t0 = 0.0
        self._rss0 = 0
        self._rss_loaded = 0
        self._stopping = False
        self._stopped = asyncio.Event()
        self._arrivals: asyncio.Task | None = None
        self._progress_task: asyncio.Task | None = None
        self._ranks: dict[int, int] | None = None
        self._base_profile: Profile | None = None

    # ------------------------------------------------------------------ building
    def _profile_for(self, ident: Identity) -> Profile:
        """The fleet's profile with this modem's identity; the sections it leaves alone are shared by
        every modem of the fleet (read-only)."""
        if self._base_profile is None:
            self._base_profile = self.opts.profile or Profile()
        return Profile.derived(self._base_profile, {
            "identity": {"imei": ident.imei, "serial": ident.imei},
            "sim": {"imsi": ident.imsi, "iccid": ident.iccid},
            "lwm2m": {"endpoint": ident.endpoint}})

    def _behaviour_for(self, index: int) -> Scenario | None:
        """Behaviour shares are exact over the whole fleet and spread over its indexes: the indexes are
        ranked by (index * golden ratio) mod 1 and a share takes the next run of ranks."""
        if not self.opts.behaviours:
            return None
        if self._ranks is None:
            order = sorted(range(self.opts.count), key=lambda j: ((j * GOLDEN) % 1.0, j))
            self._ranks = {j: r for r, j in enumerate(order) if j in self.opts.indexes}
        u = self._ranks[index] / self.opts.count
        edge = 0.0
        for scenario, share in self.opts.behaviours:
            edge += share
            if u < edge:
                return scenario
        return None

    def build(self) -> None:
        """Create and power on every modem of this shard (from inside the running loop)."""
        self._rss0 = _rss_kb()
        server = f"{self.opts.server}|{1 if self.opts.bootstrap else 0}"
        root = self.opts.state_dir
        if root is None:            # ephemeral: NVM in memory; the /XML/ folders in a temporary directory
            self._tmp = tempfile.TemporaryDirectory(prefix="telit-fleet-")
            root = Path(self._tmp.name)
        else:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
        for index in self.opts.indexes:
            ident = self.opts.plan.identity(index)
            pty = index < self.opts.ptys
            if pty:
                port = PtyPort()
                tap = LineTap()
            else:
                port = LinePort()
                tap = port.tap
            modem = Modem(port, root / f"modem-{index}", profile=self._profile_for(ident), clock=self.clock,
                          lwm2m_server=server, ephemeral=self.opts.state_dir is None)
            if pty:
                modem.engine.on_output = tap.write
                print(f"modem {index} port {port.path} endpoint {ident.endpoint}", flush=True)
            member = FleetModem(ident, modem, tap, pty)
            member.behaviour = None if pty else self._behaviour_for(index)
            tap.listen(lambda line, m=member: self._on_line(m, line))
            modem.events.subscribe("lwm2m", lambda m=member, **ev: self._on_event(m, **ev))
            modem.start()
            self.members.append(member)
            self.by_index[index] = member
        self._rss_loaded = _rss_kb()

    # ------------------------------------------------------------------ what the modems say
    def _fail(self, kind: str) -> None:
        self.failures[kind] = self.failures.get(kind, 0) + 1

    def _on_line(self, m: FleetModem, line: str) -> None:
        if not line.startswith("LWM2M-TLT:") and not line.startswith("#LWM2M-TLT:"):
            return
        if '"REGISTERED"' in line:
            if m.state != REGISTERED and m.registered_ms is None:
                m.registered_ms = (time.monotonic() - m.enabled_at) * 1000.0
            m.state = REGISTERED
            m.settle(True)
        elif '"REGISTERING"' in line or '"BOOTSTRAPPING"' in line:
            if m.state == REGISTERED:
                self._fail("reregistration")
            m.state = PENDING
        elif '"FORCE_EXIT"' in line:
            m.state = FAILED
            self._fail("force_exit")
            m.settle(False)
        elif '"CLIENT_DISABLED"' in line:
            if m.state not in (FAILED, DISABLED) and not self._stopping and m.state != IDLE:
                m.state = DISABLED
        elif '"DEREGISTERED"' in line or '"SUSPENDED"' in line:
            if m.state == REGISTERED:
                m.state = PENDING

    def _on_event(self, m: FleetModem, event: str = "", **_) -> None:
        if event == "updated":
            self.counters["updates"] += 1
        elif event == "notified":
            self.counters["notifications"] += 1
        elif event == "request":
            self.counters["requests"] += 1
        elif event == "register_failed":
            m.attempts_failed += 1
            self._fail("register_attempt")

    # ------------------------------------------------------------------ running
    async def _arrive(self, m: FleetModem) -> None:
        net = m.modem.network
        while not net.registered:                 # a host waits for +CEREG before enabling
            fut = asyncio.get_running_loop().create_future()
            undo = m.modem.events.subscribe("registration", lambda **_: fut.done() or fut.set_result(None))
            try:
                await fut
            finally:
                undo()
        m.state = PENDING
        m.enabled_at = time.monotonic()
        answer = await at_exchange(m.feed, m.tap.listen, "AT#LWM2MENA=1", 30.0, m.lock)
        if not answer.get("ok") or answer.get("final") != "OK":
            m.state = FAILED
            self._fail("enable_error")
            return
        if m.behaviour is not None and await m.until_registered():
            faults = server_log = None
            if any(st.fault or st.clear or st.expect_server for st in m.behaviour.steps):
                from ..scenarios.faults import FaultLayer
                from ..scenarios.runner import ServerLog
                # each modem its own random stream, all from the behaviour's seed: a fleet run repeats
                faults = FaultLayer(m.modem, m.behaviour.seed * 1_000_003 + m.ident.index)
                server_log = ServerLog(faults)
                m.modem.link.watchers.append(server_log.watch)
            runner = HostRunner(m.behaviour, self.clock, m.send, m.tap.listen, faults=faults,
                                server_log=server_log)
            failure = await runner.run()
            if failure is not None:
                self._fail("expect")
                log.info("modem %d behaviour %s: %s", m.ident.index, m.behaviour.name, failure)

    async def _arrivals_loop(self) -> None:
        start = self.clock.now()
        tasks = []
        for k, m in enumerate(x for x in self.members if not x.pty):
            if self.opts.ramp:
                due = start + k / self.opts.ramp
                if due > self.clock.now():
                    await self.clock.sleep(due - self.clock.now())
            elif k % 200 == 199:
                await asyncio.sleep(0)            # a burst still lets the loop breathe
            m.task = asyncio.ensure_future(self._arrive(m))
            tasks.append(m.task)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def counts(self) -> dict:
        """Live counters: registered / pending / retrying / failed modems, requests so far."""
        c = {"count": len(self.members), "registered": 0, "pending": 0, "retrying": 0, "failed": 0,
             "disabled": 0, "idle": 0}
        for m in self.members:
            if m.state == REGISTERED:
                c["registered"] += 1
            elif m.state == PENDING:
                c["pending"] += 1
                if m.attempts_failed:
                    c["retrying"] += 1
            elif m.state == FAILED:
                c["failed"] += 1
            elif m.state == DISABLED:
                c["disabled"] += 1
            else:
                c["idle"] += 1
        c.update(self.counters)
        return c

    async def _progress_loop(self) -> None:
        last_t, last_req = time.monotonic(), 0
        while True:
            await asyncio.sleep(self.opts.progress)
            c = self.counts()
            now = time.monotonic()
            moved = c["requests"] + c["updates"] + c["notifications"] + c["registered"]
            rate = (moved - last_req) / max(1e-6, now - last_t)
            last_t, last_req = now, moved
            print(f"fleet: {now - self._t0:7.1f} s  registered {c['registered']}/{c['count']}  "
                  f"pending {c['pending']}  retrying {c['retrying']}  failed {c['failed']}  "
                  f"req/s {rate:.0f}", file=sys.stderr, flush=True)

    async def run(self) -> dict:
        """Build, arrive, run until ``duration`` or ``stop()``; then stop cleanly and summarise."""
        self._t0 = time.monotonic()
        self.build()
        self._arrivals = asyncio.ensure_future(self._arrivals_loop())
        if self.opts.progress > 0:
            self._progress_task = asyncio.ensure_future(self._progress_loop())
        try:
            if self.opts.duration is not None:
                try:
                    await asyncio.wait_for(self._stopped.wait(), self.opts.duration)
                except asyncio.TimeoutError:
                    pass
            else:
                await self._stopped.wait()
        finally:
            summary = self.summary()
            await self.shutdown()
        return summary

    def stop(self) -> None:
        """Ask ``run()`` to end (signal handlers call this)."""
        self._stopped.set()

    async def shutdown(self, budget: float = 5.0) -> None:
        """Deregister what is registered (within ``budget`` real seconds), then power everything off."""
        self._stopping = True
        for task in (self._arrivals, self._progress_task):
            if task and not task.done():
                task.cancel()
        for m in self.members:
            if m.task and not m.task.done():
                m.task.cancel()
        # each modem switches off as telit-emu does: a registered agent deregisters within the budget
        await asyncio.gather(*(m.modem.aclose(budget) for m in self.members), return_exceptions=True)
        if self._tmp is not None:
            self._tmp.cleanup()

    def summary(self) -> dict:
        c = self.counts()
        times = [m.registered_ms for m in self.members if m.registered_ms is not None]
        n = max(1, len(self.members))
        p50, p99 = percentile(times, 50), percentile(times, 99)
        out = {
            "count": c["count"],
            "registered": c["registered"],
            "failed": c["failed"],
            "pending": c["pending"],
            "retrying": c["retrying"],
            "registration_p50_ms": round(p50, 1) if p50 is not None else None,
            "registration_p99_ms": round(p99, 1) if p99 is not None else None,
            "updates": c["updates"],
            "notifications": c["notifications"],
            "requests": c["requests"],
            "rss_kb_per_modem": round((self._rss_loaded_now() - self._rss0) / n, 1),
            "cpu_s": round(_cpu_s(), 2),
            "wall_s": round(time.monotonic() - self._t0, 2),
            "failures": dict(sorted(self.failures.items())),
            "shard": {"index": self.opts.shard_index, "count": self.opts.shard_count,
                      "first": self.opts.indexes.start, "stop": self.opts.indexes.stop},
            "endpoints": [m.ident.endpoint for m in self.members],
        }
        if self.opts.samples:
            out["registration_ms"] = [round(t, 2) for t in times]
        return out

    def _rss_loaded_now(self) -> int:
        return _rss_kb()

    # ------------------------------------------------------------------ control socket
    def handlers(self) -> dict:
        async def at(req: dict) -> dict:
            index = req.get("modem", 0)
            ok_index = isinstance(index, int) and not isinstance(index, bool)
            m = self.by_index.get(index) if ok_index else None
            if m is None:
                raise ControlError(f"no modem {index!r} in this fleet")
            if m.pty:
                raise ControlError(f"modem {index} has a PTY: its host program talks to it there")
            timeout = req.get("timeout", 10)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
                raise ControlError("timeout must be 0 < t <= 300 seconds")
            return await at_exchange(m.feed, m.tap.listen, req.get("line"), float(timeout), m.lock)

        async def time_(req: dict) -> dict:
            return {"ok": True, "time": self.clock.now(), "wall": self.clock.wall()}

        async def status(req: dict) -> dict:
            return {"ok": True, **self.counts(), "failures": dict(self.failures)}

        return {"at": at, "time": time_, "status": status}
