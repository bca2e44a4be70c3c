"""The scenario file format (TOML, read with tomllib).

::

    [scenario]
    name = "set a value every minute"
    seed = 7                      # every random choice of the run comes from it (default 0)

    [[step]]
    at = 0                        # module seconds from the start; or: after = <s after the previous step>
    send = "AT#LWM2MSET=1,3303,0,5700,0,21.5"    # an AT line the scenario sends as the host
    expect = "^OK$"               # a regular expression a module line must match ...
    within = 10                   # ... within this many module seconds of the send (default 10)
    repeat = { every = 60, times = 10 }          # run the step 10 times, 60 s apart
    wait = 5                      # then let 5 module seconds pass

    [[step]]
    after = 5
    fault = "link.loss"           # a fault of the catalogue (emulator/scenarios/faults.py) ...
    rate = 0.3                    # ... with its parameters as keys of the step
    direction = "both"

    [[step]]
    clear = "link.loss"           # end a lasting fault
    expect_server = { method = "POST", path = "^/rd" }   # a request that left for the server

A step's ``after`` counts from the end of the previous step (its action done, its ``expect`` matched);
an ``expect`` window opens when the step's ``send`` is written, or at the step's time when it has none.
A step with ``repeat`` ends after its last run. ``expect_server`` matches a datagram that left the
module through the CoAP seam since the previous ``expect_server`` matched (or the start), within the
step's window: ``method`` (a regular expression on the method, or on the response code such as
``2.05`` for answers to a ``server.request``), ``path`` (on Uri-Path?query; for an answer the request's
path) and optionally ``payload`` (on the payload as text). ``[scenario] needs`` lists the servers the
scenario requires: ``"lwm2m"``, ``"bootstrap"``, ``"coaps"``. Unknown keys, unknown fault names and
bad fault parameters are errors that name the file's line.
"""
from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SCENARIO_KEYS = {"name", "seed", "description", "needs"}
STEP_KEYS = {"at", "after", "send", "expect", "within", "wait", "repeat", "fault", "clear", "expect_server"}
NEEDS = ("lwm2m", "bootstrap", "coaps")
DEFAULT_WITHIN = 10.0


class ScenarioError(ValueError):
    """A scenario file that cannot be run; the message names the file and line."""


@dataclass(frozen=True)
class Step:
    """One step. Times are module seconds; ``expect`` is a compiled regular expression or None."""
    line: int
    at: float | None = None
    after: float | None = None
    send: str | None = None
    expect: re.Pattern | None = None
    within: float = DEFAULT_WITHIN
    wait: float = 0.0
    every: float = 0.0
    times: int = 1
    fault: str | None = None
    params: tuple = ()                    # the fault's parameters as (name, value) pairs
    clear: str | None = None
    expect_server: tuple | None = None    # (method, path, payload) compiled patterns (payload may be None)

    def describe(self) -> str:
        parts = []
        if self.fault:
            parts.append(f"fault {self.fault}" + "".join(f" {k}={v}" for k, v in self.params))
        if self.clear:
            parts.append(f"clear {self.clear}")
        if self.send is not None:
            parts.append(f"send {self.send}")
        if self.expect is not None:
            parts.append(f"expect /{self.expect.pattern}/")
        if self.expect_server is not None:
            parts.append(f"expect_server {self.expect_server[0].pattern} {self.expect_server[1].pattern}")
        if self.wait:
            parts.append(f"wait {self.wait:g}")
        return ", ".join(parts) or "time"


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int = 0
    steps: tuple[Step, ...] = field(default_factory=tuple)
    source: str = "<scenario>"
    description: str = ""
    needs: tuple[str, ...] = ()


def _step_lines(text: str) -> list[int]:
    """1-based line numbers of each ``[[step]]`` header, in order."""
    return [n for n, raw in enumerate(text.splitlines(), 1) if re.match(r"\s*\[\[\s*step\s*\]\]", raw)]


def _key_line(text: str, start: int, key: str) -> int:
    lines = text.splitlines()
    for n in range(start, len(lines) + 1):
        raw = lines[n - 1]
        if n > start and re.match(r"\s*\[", raw):
            break
        if re.match(rf"\s*{re.escape(key)}\s*=", raw) or re.search(rf"[{{,]\s*{re.escape(key)}\s*=", raw):
            return n
    return start


def _number(value, what: str, where: str, *, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < minimum:
        raise ScenarioError(f"{where}: {what} must be a number >= {minimum:g}, not {value!r}")
    return float(value)


def parse(text: str, source: str = "<scenario>") -> Scenario:
    """Parse and check a scenario; ScenarioError (naming ``source`` and the line) when it is not valid."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    for key in doc:
        if key not in ("scenario", "step"):
            line = next((n for n, raw in enumerate(text.splitlines(), 1)
                         if re.match(rf"\s*(\[\[?\s*)?{re.escape(key)}\b", raw)), 1)
            raise ScenarioError(f"{source}:{line}: unknown key {key!r}")
    head = doc.get("scenario", {})
    if not isinstance(head, dict):
        raise ScenarioError(f"{source}: [scenario] must be a table")
    for key in head:
        if key not in SCENARIO_KEYS:
            raise ScenarioError(f"{source}:{_key_line(text, 1, key)}: unknown key {key!r} in [scenario]")
    seed = head.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ScenarioError(f"{source}:{_key_line(text, 1, 'seed')}: seed must be an integer")
    raw_steps = doc.get("step", [])
    if not isinstance(raw_steps, list):
        raise ScenarioError(f"{source}: step must be an array of tables ([[step]])")
    headers = _step_lines(text)
    steps = []
    for i, raw in enumerate(raw_steps):
        line = headers[i] if i < len(headers) else 1
        where = f"{source}:{line}"
        fault = raw.get("fault")
        fault_params: dict = {}
        if fault is not None:
            from .faults import CATALOGUE, FaultError, check
            fline = _key_line(text, line, "fault")
            if not isinstance(fault, str) or fault not in CATALOGUE:
                raise ScenarioError(f"{source}:{fline}: unknown fault {fault!r}")
            fault_params = {k: v for k, v in raw.items() if k not in STEP_KEYS}
            bad = [k for k in fault_params if k not in {p.name for p in CATALOGUE[fault].params}]
            if bad:
                raise ScenarioError(f"{source}:{_key_line(text, line, bad[0])}: unknown key {bad[0]!r} in "
                                    f"step {i + 1} (fault {fault} has: "
                                    f"{', '.join(p.name for p in CATALOGUE[fault].params) or 'no parameters'})")
            try:
                check(fault, fault_params)
            except FaultError as exc:
                raise ScenarioError(f"{source}:{fline}: {exc}") from None
        for key in raw:
            kline = _key_line(text, line, key)
            if key not in STEP_KEYS and key not in fault_params:
                raise ScenarioError(f"{source}:{kline}: unknown key {key!r} in step {i + 1}")
        clear = raw.get("clear")
        if clear is not None:
            from .faults import CATALOGUE
            if not isinstance(clear, str) or clear not in CATALOGUE:
                raise ScenarioError(f"{source}:{_key_line(text, line, 'clear')}: unknown fault {clear!r}")
        expect_server = None
        if "expect_server" in raw:
            es, eline = raw["expect_server"], _key_line(text, line, "expect_server")
            if not isinstance(es, dict) or set(es) - {"method", "path", "payload"} or "path" not in es:
                raise ScenarioError(f"{source}:{eline}: expect_server must be {{ method = \"POST\", "
                                    f"path = \"^/rd\" [, payload = \"...\"] }}")
            try:
                expect_server = (re.compile(str(es.get("method", ".*"))), re.compile(str(es["path"])),
                                 re.compile(str(es["payload"])) if "payload" in es else None)
            except re.error as exc:
                raise ScenarioError(f"{source}:{eline}: expect_server: not a valid regular expression: "
                                    f"{exc}") from None
        if "at" in raw and "after" in raw:
            raise ScenarioError(f"{where}: step {i + 1} has both 'at' and 'after'")
        at = _number(raw["at"], "at", where) if "at" in raw else None
        after = _number(raw["after"], "after", where) if "after" in raw else None
        send = raw.get("send")
        if send is not None and (not isinstance(send, str) or "\r" in send or "\n" in send):
            raise ScenarioError(f"{where}: send must be one AT line (a string without CR/LF)")
        expect = None
        if "expect" in raw:
            if not isinstance(raw["expect"], str):
                raise ScenarioError(f"{where}: expect must be a regular expression string")
            try:
                expect = re.compile(raw["expect"])
            except re.error as exc:
                raise ScenarioError(f"{where}: expect is not a valid regular expression: {exc}") from None
        within = _number(raw.get("within", DEFAULT_WITHIN), "within", where)
        wait = _number(raw.get("wait", 0.0), "wait", where)
        every, times = 0.0, 1
        if "repeat" in raw:
            rep = raw["repeat"]
            rline = _key_line(text, line, "repeat")
            if not isinstance(rep, dict) or set(rep) - {"every", "times"} or "every" not in rep:
                raise ScenarioError(f"{source}:{rline}: repeat must be {{ every = <s>, times = <n> }}")
            every = _number(rep["every"], "repeat.every", f"{source}:{rline}", minimum=0.001)
            times = rep.get("times", 1)
            if isinstance(times, bool) or not isinstance(times, int) or times < 1:
                raise ScenarioError(f"{source}:{rline}: repeat.times must be an integer >= 1")
        if send is None and expect is None and not wait and at is None and after is None \
                and fault is None and clear is None and expect_server is None:
            raise ScenarioError(f"{where}: step {i + 1} does nothing")
        steps.append(Step(line=line, at=at, after=after, send=send, expect=expect, within=within,
                          wait=wait, every=every, times=times, fault=fault,
                          params=tuple(fault_params.items()), clear=clear, expect_server=expect_server))
    needs = head.get("needs", [])
    if not isinstance(needs, list) or any(n not in NEEDS for n in needs):
        raise ScenarioError(f"{source}:{_key_line(text, 1, 'needs')}: needs must be a list of "
                            f"{', '.join(repr(n) for n in NEEDS)}")
    name = head.get("name") or Path(source).stem
    return Scenario(name=str(name), seed=seed, steps=tuple(steps), source=source,
                    description=str(head.get("description", "")), needs=tuple(needs))


def load(path: str | Path) -> Scenario:
    """Read and parse a scenario file; ScenarioError when unreadable or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from None
    return parse(text, str(path))
