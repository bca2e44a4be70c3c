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

A step's ``after`` counts from the end of the previous step (its action done, its ``expect`` matched);
an ``expect`` window opens when the step's ``send`` is written, or at the step's time when it has none.
A step with ``repeat`` ends after its last run. Unknown keys are errors that name the file's line.
This version runs host steps (send, expect, wait, repeat); ``fault``, ``clear`` and ``expect_server``
are recognised and refused with an error naming the line until the fault catalogue exists.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

SCENARIO_KEYS = {"name", "seed", "description", "needs"}
STEP_KEYS = {"at", "after", "send", "expect", "within", "wait", "repeat"}
NOT_YET = {"fault", "clear", "expect_server"}
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


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int = 0
    steps: tuple[Step, ...] = field(default_factory=tuple)
    source: str = "<scenario>"


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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
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
        for key in raw:
            kline = _key_line(text, line, key)
            if key in NOT_YET:
                raise ScenarioError(f"{source}:{kline}: {key!r} steps are not supported by this version")
            if key not in STEP_KEYS:
                raise ScenarioError(f"{source}:{kline}: unknown key {key!r} in step {i + 1}")
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
        if send is None and expect is None and not wait and at is None and after is None:
            raise ScenarioError(f"{where}: step {i + 1} does nothing")
        steps.append(Step(line=line, at=at, after=after, send=send, expect=expect, within=within,
                          wait=wait, every=every, times=times))
    name = head.get("name") or Path(source).stem
    return Scenario(name=str(name), seed=seed, steps=tuple(steps), source=source)


def load(path: str | Path) -> Scenario:
    """Read and parse a scenario file; ScenarioError when unreadable or invalid."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {path}: {exc}") from None
    return parse(text, str(path))
