"""Command-line body -> command objects, with the Lark grammar (package data emulator.grammar/at.lark)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lark import Lark, Transformer
from lark.exceptions import LarkError

from ..resources import grammar_text

# The four forms of an extended command (V.25ter): AT+X, AT+X=..., AT+X?, AT+X=?
EXEC, SET, READ, TEST = "exec", "set", "read", "test"


class ParseError(ValueError):
    """The line is not valid AT syntax: the module answers ERROR."""


@dataclass(frozen=True)
class Param:
    text: str
    quoted: bool


@dataclass(frozen=True)
class Command:
    name: str                     # upper-case: "+CGDCONT", "#LWM2MENA", "E", "&F", "S3"
    form: str                     # EXEC / SET / READ / TEST
    params: tuple[Param | None, ...] = field(default=())
    basic: bool = False

    def __str__(self) -> str:     # for logs
        return f"{self.name}[{self.form}]{[p and p.text for p in self.params]}"


class _ToCommands(Transformer):
    def start(self, items):
        return [i for i in items if isinstance(i, Command)]

    def basic(self, items):
        name = items[0].upper()
        if len(items) > 1:
            return Command(name, SET, (Param(str(items[1]), False),), basic=True)
        return Command(name, EXEC, (), basic=True)

    def sreg_set(self, items):
        arg = items[1] if len(items) > 1 and items[1] is not None else "0"
        return Command(items[0].upper(), SET, (Param(str(arg), False),), basic=True)

    def sreg_read(self, items):
        return Command(items[0].upper(), READ, (), basic=True)

    def extended(self, items):
        name = items[0].upper()
        if len(items) == 1 or items[1] is None:
            return Command(name, EXEC)
        form, params = items[1]
        return Command(name, form, params)

    def set_form(self, items):
        params = items[0]
        # "AT+X=" (nothing after =) is a set with no parameters
        if params == (None,):
            params = ()
        return (SET, params)

    def read_form(self, _):
        return (READ, ())

    def test_form(self, _):
        return (TEST, ())

    def params(self, items):
        return tuple(items)

    def quoted(self, items):
        return Param(items[0][1:-1], True)

    def unquoted(self, items):
        return Param(str(items[0]), False)


class Parser:
    """grammar/at.lark with Lark's LALR parser (the one definition of the AT line syntax), and a bounded
    process-wide memo of parsed lines. Stateless but for that memo of immutable results, so one instance
    serves every modem of a process (a fleet parses each distinct line once).

    An unseen 400-character chain of 72 commands costs Lark about 1.6-1.8 ms on this machine; a line
    seen before costs a dictionary look-up (tools/bench_at.py prints both)."""

    def __init__(self, grammar_path: Path | None = None):
        text = Path(grammar_path).read_text() if grammar_path is not None else grammar_text()
        # the transformer runs inside the parser: no parse tree is built
        self._lark = Lark(text, parser="lalr", maybe_placeholders=True, transformer=_ToCommands())
        self._lines: dict[str, tuple[Command, ...] | str] = {}

    def parse(self, body: str) -> list[Command]:
        """Parse a line body (prefix and terminator removed, spaces outside quotes removed); ParseError
        when the grammar refuses it."""
        try:
            return self._lark.parse(body)
        except LarkError as exc:
            raise ParseError(str(exc).splitlines()[0] if str(exc) else "syntax error") from None

    def parse_line(self, body: str) -> tuple[Command, ...]:
        """``parse(strip_spaces(body))`` as a tuple, remembered per distinct body (bounded: at most
        _LINES_MAX bodies, forgotten all at once when full); an error is remembered too. ParseError as
        ``parse``."""
        got = self._lines.get(body)
        if got is None:
            try:
                got = tuple(self.parse(strip_spaces(body)))
            except ParseError as exc:
                got = str(exc)
            if len(self._lines) >= _LINES_MAX:
                self._lines.clear()
            self._lines[body] = got
        if got.__class__ is str:
            raise ParseError(got)
        return got


_LINES_MAX = 1024          # distinct line bodies remembered by parse_line


def strip_spaces(line: str) -> str:
    """V.25ter: spaces are ignored outside quoted strings."""
    if '"' not in line:
        return line.replace(" ", "")
    parts = line.split('"')
    parts[::2] = [part.replace(" ", "") for part in parts[::2]]      # the even pieces are outside quotes
    return '"'.join(parts)
