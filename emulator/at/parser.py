"""Command-line body -> command objects, with the Lark grammar (package data emulator.grammar/at.lark)."""
from __future__ import annotations

import re
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


class LarkParser:
    """The reference: grammar/at.lark with Lark's LALR parser. Stateless after construction.

    ``Parser`` answers the same as this for every line (tests/test_at_parser.py compares the two on
    random and mutated lines); this one stays as the grammar's executable form and for a custom
    grammar file."""

    def __init__(self, grammar_path: Path | None = None):
        text = Path(grammar_path).read_text() if grammar_path is not None else grammar_text()
        self._lark = Lark(text, parser="lalr", maybe_placeholders=True)
        self._tx = _ToCommands()

    def parse(self, body: str) -> list[Command]:
        """Parse a line body (prefix and terminator removed, spaces outside quotes removed)."""
        try:
            return self._tx.transform(self._lark.parse(body))
        except LarkError as exc:
            raise ParseError(str(exc).splitlines()[0] if str(exc) else "syntax error") from None


# One command of grammar/at.lark as one regular expression (terminals as in the grammar; ";" separators
# before it). A parameter may be empty; where a parameter may start, Lark's lexer tries EXT_NAME and
# SREG before UNQUOTED (its terminal order: same priority and width, then the longer pattern, then the
# name), so a parameter position that starts like one of them ends the list and starts the next command.
_P = r"""(?:"[^"]*"|(?![+#$*@][A-Z0-9_]|S[0-9])[^,;"]+)?"""
_ITEM = re.compile(
    r";*(?:(?P<ext>[+#$*@][A-Z0-9_]+)(?:(?P<test>=\?)|(?P<read>\?)|=(?P<params>" + _P + r"(?:," + _P + r")*))?"
    r"|(?P<sreg>S[0-9]+)(?:(?P<sread>\?)|=(?P<sarg>[0-9]*))"
    r"|(?P<basic>&[A-Z]|[A-RT-Z])(?P<barg>[0-9]*))", re.I)
_ITEMS_MAX = 4096          # distinct command texts remembered (their Command objects are immutable)
_LINES_MAX = 1024          # distinct line bodies remembered by parse_line


def _params(text: str) -> tuple:
    """The parameters of a set form (the text after "=", known to fit the grammar)."""
    if '"' not in text:
        if not text:
            return ()                           # "AT+X=": a set with no parameters
        return tuple(Param(x, False) if x else None for x in text.split(","))
    out: list[Param | None] = []
    pos, n = 0, len(text)
    while True:
        if text.startswith('"', pos):
            j = text.index('"', pos + 1)
            out.append(Param(text[pos + 1:j], True))
            pos = j + 1
        else:
            j = text.find(",", pos)
            j = n if j < 0 else j
            out.append(Param(text[pos:j], False) if j > pos else None)
            pos = j
        if pos >= n:
            return tuple(out)
        pos += 1                                # the ","
        if pos == n:
            out.append(None)
            return tuple(out)


def _command(m: re.Match) -> Command:
    g = m.group
    name = g("ext")
    if name is not None:
        name = name.upper()
        if g("test") is not None:
            return Command(name, TEST)
        if g("read") is not None:
            return Command(name, READ)
        params = g("params")
        if params is None:
            return Command(name, EXEC)
        return Command(name, SET, _params(params))
    name = g("sreg")
    if name is not None:
        if g("sread") is not None:
            return Command(name.upper(), READ, (), True)
        return Command(name.upper(), SET, (Param(g("sarg") or "0", False),), True)
    arg = g("barg")
    if arg:
        return Command(g("basic").upper(), SET, (Param(arg, False),), True)
    return Command(g("basic").upper(), EXEC, (), True)


class Parser:
    """Command-line body -> commands: a scanner for grammar/at.lark (the LALR grammar with Lark's
    contextual lexer), one regular-expression match per command, many times faster than Lark on a long
    chained line. Stateless but for a bounded memo of immutable Command objects by their text: one
    instance may serve every modem of a process. ``Parser(grammar_path)`` uses Lark on that grammar
    file instead."""

    def __init__(self, grammar_path: Path | None = None):
        self._lark = LarkParser(grammar_path) if grammar_path is not None else None
        self._items: dict[str, Command] = {}
        self._lines: dict[str, tuple[Command, ...] | str] = {}

    def parse_line(self, body: str) -> tuple[Command, ...]:
        """``parse(strip_spaces(body))`` as a tuple, remembered per distinct body (bounded: at most
        _LINES_MAX bodies, forgotten all at once when full). The result is immutable, so modems sharing
        this parser share the memo. ParseError as ``parse``."""
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

    def parse(self, body: str) -> list[Command]:
        """Parse a line body (prefix and terminator removed, spaces outside quotes removed); ParseError
        when the grammar refuses it."""
        if self._lark is not None:
            return self._lark.parse(body)
        out: list[Command] = []
        items = self._items
        match = _ITEM.match
        i, n = 0, len(body)
        while i < n:
            m = match(body, i)
            if m is None:
                if body[i:].strip(";"):
                    raise ParseError(f"unexpected {body[i]!r} at column {i + 1}")
                break
            text = m.group()
            cmd = items.get(text)
            if cmd is None:
                cmd = _command(m)
                if len(items) >= _ITEMS_MAX:
                    items.clear()
                items[text] = cmd
            out.append(cmd)
            i = m.end()
        return out


def strip_spaces(line: str) -> str:
    """V.25ter: spaces are ignored outside quoted strings."""
    if '"' not in line:
        return line.replace(" ", "")
    parts = line.split('"')
    parts[::2] = [part.replace(" ", "") for part in parts[::2]]      # the even pieces are outside quotes
    return '"'.join(parts)
