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
    """Stateless after construction: one instance may serve every modem of a process."""

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


def strip_spaces(line: str) -> str:
    """V.25ter: spaces are ignored outside quoted strings."""
    out, quoted = [], False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        if ch == " " and not quoted:
            continue
        out.append(ch)
    return "".join(out)
