"""Command declarations: each command states its parameters once; checks and =? answers derive from that.

A command family module does:

    reg = Family()
    cereg = reg.command("+CEREG", Int("n", (0, 2), default=0))

    @cereg.set
    def _(ctx, n): ...
    @cereg.read
    def _(ctx): return f"+CEREG: {...}"

Handlers get a context (the modem and the engine services) and the typed parameter values;
they return None, one information line, or a list of lines, or raise AtError. They may be async.

An omitted sub-parameter (empty, ``AT+CMD=,10``, or left off the end) is filled in once, here, by one
rule (guide 2.2 and 2.2.2): a parameter-type command (declared with ``keeps=fn(ctx)`` giving the values
it holds now) keeps its previous value; otherwise the default of the command's parameter table
(``default=``) applies; a parameter with neither is refused when mandatory (``optional=False``), and
reaches the handler as None when it may be absent (the table's "-": the handler decides).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

from .errors import OPERATION_NOT_SUPPORTED, AtError
from .parser import EXEC, READ, SET, TEST, Command, Param

_MISSING = object()
_DECIMAL = re.compile(r"[+-]?[0-9]+")


class Arg:
    """One declared parameter of a command."""

    optional = True

    def __init__(self, name: str, *, default: Any = None, optional: bool = True, test: str | None = None):
        self.name = name
        self.default = default
        self.optional = optional
        self._test = test

    def convert(self, p: Param) -> Any:
        raise NotImplementedError

    def test_text(self) -> str:
        return self._test if self._test is not None else ""


def _ranges_text(ranges: Sequence[tuple[int, int]]) -> str:
    parts = [f"{lo}" if lo == hi else (f"{lo},{hi}" if hi == lo + 1 else f"{lo}-{hi}") for lo, hi in ranges]
    return "(" + ",".join(parts) + ")"


class Int(Arg):
    """Decimal integer within one or more ranges: Int("n", (0, 2)) or Int("fun", [(0, 1), (4, 4)])."""

    def __init__(self, name: str, ranges: tuple[int, int] | Iterable[tuple[int, int]] | None = None, **kw):
        super().__init__(name, **kw)
        if ranges is None:
            self.ranges: list[tuple[int, int]] = []
        elif isinstance(ranges, tuple) and len(ranges) == 2 and all(isinstance(x, int) for x in ranges):
            self.ranges = [ranges]
        else:
            self.ranges = [tuple(r) for r in ranges]  # type: ignore[misc]

    def convert(self, p: Param) -> int:
        text = p.text
        if p.quoted or not _DECIMAL.fullmatch(text):
            raise AtError(OPERATION_NOT_SUPPORTED)
        if len(text) > 12:
            raise AtError(OPERATION_NOT_SUPPORTED)
        value = int(text)
        if self.ranges and not any(lo <= value <= hi for lo, hi in self.ranges):
            raise AtError(OPERATION_NOT_SUPPORTED)
        return value

    def test_text(self) -> str:
        if self._test is not None:
            return self._test
        return _ranges_text(self.ranges) if self.ranges else ""


class Str(Arg):
    """A string, quoted or not (guide 2.2.1). quoted=True makes quotes mandatory."""

    def __init__(self, name: str, *, max_len: int | None = None, min_len: int = 0, quoted: bool = False,
                 choices: tuple[str, ...] | None = None, **kw):
        super().__init__(name, **kw)
        self.max_len, self.min_len, self.quoted, self.choices = max_len, min_len, quoted, choices
        if choices and self._test is None:
            self._test = "(" + ",".join(f'"{c}"' for c in choices) + ")"

    def convert(self, p: Param) -> str:
        if self.quoted and not p.quoted:
            raise AtError(OPERATION_NOT_SUPPORTED)
        if self.max_len is not None and len(p.text) > self.max_len:
            raise AtError(OPERATION_NOT_SUPPORTED)
        if len(p.text) < self.min_len:
            raise AtError(OPERATION_NOT_SUPPORTED)
        if self.choices is not None and p.text not in self.choices:
            raise AtError(OPERATION_NOT_SUPPORTED)
        return p.text


class Raw(Arg):
    """Mixed-type value left to the handler (e.g. #LWM2MSET <value>)."""

    def convert(self, p: Param) -> Param:
        return p


@dataclass
class Spec:
    name: str
    args: tuple[Arg, ...]
    handlers: dict[str, Callable[..., Any]] = field(default_factory=dict)
    needs_sim: bool = False
    lf_join: bool = False          # multi-line answers joined by a bare <LF> (guide 2.2.2.3)
    test_answer: Callable[..., Any] | str | None = None
    max_args: int | None = None    # None: len(args)
    keeps: Callable[..., Sequence[Any] | None] | None = None   # keeps(ctx) -> values held now (None: none)
    gate: Callable[..., Any] | None = None   # gate(ctx, form) -> awaitable to wait for before running, or None

    # -- decorators --------------------------------------------------------------------------
    def _on(self, form: str):
        def deco(fn):
            self.handlers[form] = fn
            return fn
        return deco

    def set(self, fn):
        return self._on(SET)(fn)

    def read(self, fn):
        return self._on(READ)(fn)

    def exec(self, fn):
        return self._on(EXEC)(fn)

    def test(self, fn):
        return self._on(TEST)(fn)

    # -- derived behaviour -------------------------------------------------------------------
    def bind(self, cmd: Command, ctx: Any = None) -> list[Any]:
        """Typed values for a SET command, omitted ones filled in (see the module docstring); AtError
        when they don't fit."""
        params = cmd.params
        limit = self.max_args if self.max_args is not None else len(self.args)
        if len(params) > limit:
            raise AtError(OPERATION_NOT_SUPPORTED)
        held: Sequence[Any] = ()
        if self.keeps is not None and ctx is not None and any(
                (params[i] if i < len(params) else None) is None for i in range(len(self.args))):
            held = self.keeps(ctx) or ()
        values = []
        for i, arg in enumerate(self.args):
            p = params[i] if i < len(params) else None
            if p is not None:
                values.append(arg.convert(p))
            elif i < len(held) and held[i] is not None:
                values.append(held[i])             # a parameter-type command keeps its value
            elif arg.default is not None:
                values.append(arg.default)         # the default of the parameter table
            elif arg.optional:
                values.append(None)                # may be absent: the handler decides
            else:
                raise AtError(OPERATION_NOT_SUPPORTED)
        return values

    def default_test_lines(self) -> list[str]:
        if not self.args:
            return []
        fields = [a.test_text() for a in self.args]
        while fields and not fields[-1]:          # a trailing free-form value shows no range
            fields.pop()
        return [f"{self.name}: {','.join(fields)}"] if fields else []


class Family:
    """The commands of one family (one module under emulator/commands)."""

    def __init__(self):
        self.specs: dict[str, Spec] = {}
        self.attach_hooks: list[Callable[[Any], None]] = []

    def on_attach(self, fn: Callable[[Any], None]) -> Callable[[Any], None]:
        """fn(modem) runs once per modem built with this family (to subscribe to its events)."""
        self.attach_hooks.append(fn)
        return fn

    def command(self, name: str, *args: Arg, needs_sim: bool = False, lf_join: bool = False,
                test_answer: Any = None, max_args: int | None = None, aliases: Sequence[str] = (),
                gate: Callable[..., Any] | None = None,
                keeps: Callable[..., Sequence[Any] | None] | None = None) -> Spec:
        """Declare a command. keeps(ctx): for a parameter-type command, the values it holds now (one per
        declared parameter, None where it holds none): omitted sub-parameters keep them (guide 2.2)."""
        spec = Spec(name.upper(), tuple(args), needs_sim=needs_sim, lf_join=lf_join,
                    test_answer=test_answer, max_args=max_args, gate=gate, keeps=keeps)
        for n in (name, *aliases):
            if n.upper() in self.specs:
                raise ValueError(f"command {n} declared twice")
            self.specs[n.upper()] = spec
        return spec


class Registry:
    """Every command the modem knows, gathered from the families."""

    def __init__(self, families: Iterable[Family] = ()):
        self.specs: dict[str, Spec] = {}
        self.attach_hooks: list[Callable[[Any], None]] = []
        for fam in families:
            self.add(fam)

    def add(self, fam: Family) -> None:
        for name, spec in fam.specs.items():
            if name in self.specs:
                raise ValueError(f"command {name} declared twice")
            self.specs[name] = spec
        self.attach_hooks.extend(fam.attach_hooks)

    def lookup(self, name: str) -> Spec | None:
        return self.specs.get(name)
