"""The line engine: host bytes -> command lines -> handlers -> result codes, with V.25ter behaviour.

Echo (E), verbose/numeric codes (V), quiet (Q), S3/S4/S5, the A/ repeat prefix, the 400-character
line limit, ;-chains that stop at the first error, +CMEE error rendering, data phases (prompted raw
input such as #M2MWRITE) and a URC queue that never splits a response.

Secrets: a line that carries #LWM2MINJKEYS (found on the line as assembled after S5 editing, however
it was typed or split across writes) is never shown to a tap or a log. The taps see whole lines:
`on_input(data, masked)` gets each line's raw bytes once the line is complete (or, for a secret line,
a masked form with masked=True); `on_output(data, masked)` gets the echo the same way and every other
byte the module writes as written.

Output: responses (echo, information lines, final result codes, prompts) go to the port as
non-droppable; each URC goes as one droppable whole line (see emulator/port.py).
"""
from __future__ import annotations

import asyncio
import inspect
import logging
import re
from typing import TYPE_CHECKING, Any

from ..modem.nvm import NvmFull
from .errors import MEMORY_FULL, RESULT_NUMERIC, SIM_NOT_INSERTED, AtError
from .parser import EXEC, SET, TEST, Command, ParseError, Parser, strip_spaces
from .registry import Registry, Spec

if TYPE_CHECKING:
    from ..modem.owner import ModemOwner

log = logging.getLogger("emulator.at")

LINE_LIMIT = 400
RAW_LINE_KEEP = 4 * LINE_LIMIT     # raw bytes of one line kept for the taps (the rest is only echoed)
_REPEAT = b"\x00repeat"
_SECRET_NAME = b"INJKEYS"          # #LWM2MINJKEYS carries a PSK key
_MASK = b"***"


_BLANKS = bytes(range(0x21))           # spaces and control bytes
_SPECIAL = re.compile(rb"[\x00-\x1f/]")   # bytes _pump looks at one by one (S3/S4/S5 below 0x20, A/)


def _squeeze(line: bytes) -> bytes:
    """The line without spaces and control bytes, upper-cased: how the parser sees a name."""
    return bytes(line).translate(None, _BLANKS).upper()


def is_secret_line(line: bytes) -> bool:
    """Whether a command line (as assembled, or raw) carries a #LWM2MINJKEYS secret."""
    return _SECRET_NAME in _squeeze(line)


def masked_line(line: bytes, end: bytes = b"") -> bytes:
    """A secret line as a trace may show it: what comes before the secret-bearing command's name
    (and the name), then ***."""
    out = bytearray()
    seen = b""
    for b in line:
        out.append(b)
        if b > 0x20:
            seen = (seen + bytes((b,)).upper())[-len(_SECRET_NAME):]
            if seen == _SECRET_NAME:
                break
    else:
        out = bytearray()
    return bytes(out) + _MASK + end


class DataTimeout(Exception):
    pass


class Context:
    """What a handler may use: the modem, and engine services for prompts and raw data."""

    __slots__ = ("modem", "engine", "spec", "cmd")

    def after_final(self, fn) -> None:
        """Run fn right after this line's final result code is written (e.g. #REBOOT)."""
        self.engine._after_final.append(fn)

    def __init__(self, modem, engine, spec, cmd):
        self.modem, self.engine, self.spec, self.cmd = modem, engine, spec, cmd

    def write_raw(self, data: bytes) -> None:
        self.engine.write(data)

    async def read_raw(self, size: int, time_limit: float) -> bytes:
        """`size` raw bytes from the host; DataTimeout if they have not all come within
        `time_limit` seconds (module clock) from now."""
        return await self.engine.read_raw(size, time_limit)


class Engine:
    """The V.25ter line engine of one modem (guide 2.1-2.2): bytes from the port in, answers out.

    ``feed(bytes)`` takes what the host typed: echo (E), S3/S4/S5 line editing, ``A/`` and ``AT#/``
    repeat, the 400-character limit (``LINE_LIMIT``; a longer line answers ERROR), ``;`` chains (the first
    error ends the line), the ``#M2MWRITE`` data phase (``read_raw``). Each line is parsed by ``parser``
    (grammar/at.lark through Lark, with its process-wide memo) and its commands run through ``registry``
    (the declared commands); answers follow V0/V1, Q and ``+CMEE``. ``urc(text)`` writes an unsolicited
    line, held back while a response is being written. ``on_input`` / ``on_output`` are taps
    ``fn(bytes, masked)`` for the trace: a line carrying a ``#LWM2MINJKEYS`` key reaches them masked.
    Errors never escape: a handler's exception answers ERROR and is logged by command name only."""

    def __init__(self, modem: "ModemOwner", registry: Registry, parser: Parser, *, clean_output: bool = False):
        self.modem = modem
        self.registry = registry
        self.clean_output = clean_output
        self._parser = parser
        self._parse = getattr(parser, "parse_line", None) or self._parse_uncached
        self._out = bytearray()            # response bytes held while a feed is processed (one write)
        self._holding = False
        self._in = bytearray()
        self._line = bytearray()
        self._overflow = False
        self._last_line: tuple[bytes, bool, bool] | None = None
        self._busy = False                 # a line is being executed: URCs wait
        self._urcs: list[str] = []
        self._task: asyncio.Task | None = None
        self._raw: tuple[int, bytearray, asyncio.Future] | None = None
        self._raw_skip_lf = False
        self._lf_may_follow = False        # the last line ended with <CR> as the last byte seen so far
        self._after_final: list = []
        self._raw_line = bytearray()       # the raw bytes of the line being typed (for the taps)
        self._last_secret = False
        self._secret_quote_open = False    # a secret line ended inside a quoted string (a <CR> in a key)
        self._tap_secret = False           # the line just completed carries (part of) a secret
        self._line_secret = False          # the line being executed carries a secret
        self.on_output = None              # optional taps (the --log trace): fn(data, masked)
        self.on_input = None

    # ---------------------------------------------------------------- output primitives
    def write(self, data: bytes, *, urc: bool = False) -> None:
        """Write to the host. A URC is one whole line the port may drop (host not reading);
        everything else is part of a response and is never dropped."""
        if self.on_output:
            self.on_output(data, False)
        if urc:
            self._flush_out()
            self.modem.port.write(data, droppable=True)
        elif self._holding:
            self._out += data
        else:
            self._flush_out()
            self.modem.port.write(data)

    def _flush_out(self) -> None:
        """Write the response bytes held so far (echo, answers) to the port in one piece."""
        if self._out:
            data, self._out = bytes(self._out), bytearray()
            self.modem.port.write(data)

    def _held(self, fn, *args) -> None:
        """Run fn with response output held, then written at once: a chain of synchronous commands
        reaches the host as one write, in the same order and bytes as written one by one."""
        if self._holding:
            fn(*args)
            return
        self._holding = True
        try:
            fn(*args)
        finally:
            self._holding = False
            self._flush_out()

    @property
    def _s(self):
        return self.modem.settings

    def _crlf(self) -> bytes:
        v = self.modem.settings.values
        return bytes((v["S3"], v["S4"]))

    def format_info(self, lines: list[str], lf_join: bool) -> bytes:
        if not lines:
            return b""
        v = self.modem.settings.values
        crlf = bytes((v["S3"], v["S4"]))
        if v["V"] == 0:
            return b"".join(l.encode("latin-1", "replace") + crlf for l in lines)
        if len(lines) == 1:
            return crlf + lines[0].encode("latin-1", "replace") + crlf
        sep = b"\n" if (lf_join and not self.clean_output) else crlf
        return crlf + sep.join(l.encode("latin-1", "replace") for l in lines) + crlf

    def format_final(self, text: str) -> bytes:
        if self._s.get("Q") == 1:
            return b""
        cr = bytes((self._s.get("S3"),))
        if self._s.get("V") == 0:
            if text in RESULT_NUMERIC:
                return str(RESULT_NUMERIC[text]).encode() + cr
            return text.encode("latin-1", "replace") + self._crlf()
        crlf = self._crlf()
        return crlf + text.encode("latin-1", "replace") + crlf

    # ---------------------------------------------------------------- URCs
    def urc(self, text: str) -> None:
        """Unsolicited result: written now if the engine is idle, else after the current response."""
        if self._busy or self._raw is not None:
            self._urcs.append(text)
        else:
            self._write_urc(text)

    def _write_urc(self, text: str) -> None:
        crlf = self._crlf()
        if self._s.get("V") == 0:
            self.write(text.encode("latin-1", "replace") + crlf, urc=True)
        else:
            self.write(crlf + text.encode("latin-1", "replace") + crlf, urc=True)

    def _flush_urcs(self) -> None:
        while self._urcs and not self._busy:
            self._write_urc(self._urcs.pop(0))

    # ---------------------------------------------------------------- input
    def feed(self, data: bytes) -> None:
        if not self.modem.powered:     # a module without power neither echoes nor answers
            return
        self._in += data
        if not self._busy or self._raw is not None:
            self._held(self._pump)

    def reset_input(self) -> None:
        """Power cycle: forget the partial line and pending input."""
        self._in.clear()
        self._line.clear()
        self._raw_line.clear()
        self._overflow = False
        self._urcs.clear()
        self._flush_out()                  # what was answered before the power cycle still goes out

    def _pump(self) -> None:
        if self._raw is not None:
            self._pump_raw()
            if self._raw is not None:
                return
        while self._in and not self._busy:
            s3 = self._s.get("S3")            # a line may change them for the next one
            s5 = self._s.get("S5")
            echo_on = self._s.get("E") == 1
            data = self._in
            i = 0
            n = len(data)
            run_line = None
            plain = s3 < 0x20 and s5 < 0x20      # then only _SPECIAL bytes need a look of their own
            while i < n:
                if plain:
                    m = _SPECIAL.search(data, i)
                    j = m.start() if m is not None else n
                    if j > i:                   # a run of ordinary bytes: into the line at once
                        room = LINE_LIMIT + 9 - len(self._line)
                        if j - i > room:
                            if room > 0:
                                self._line += data[i:i + room]
                            self._overflow = True
                        else:
                            self._line += data[i:j]
                        i = j
                        continue
                b = data[i]
                i += 1
                if b == s3:
                    run_line = bytes(self._line)
                    self._line.clear()
                    self._lf_may_follow = i == len(data)
                    if i < len(data) and data[i] == self._s.get("S4"):
                        i += 1                  # the <LF> of a <CR><LF> ending: echoed before the answer
                    break
                if b == s5:
                    if self._line:
                        del self._line[-1]
                    continue
                if b == 0x2F and bytes(self._line).lstrip(b"\x00\t\n\x0b\x0c\r ").upper() in (b"A", b"AT#"):
                    self._line.clear()          # A/ (or AT#/) repeats the previous command line
                    run_line = _REPEAT
                    break
                if b < 0x20:           # other control bytes (LF, NUL ...) take no place in a line
                    continue
                if len(self._line) <= LINE_LIMIT + 8:
                    self._line.append(b)
                else:
                    self._overflow = True
            echo_end = i
            if echo_on and echo_end:
                self._echo(bytes(data[:echo_end]))      # the tap sees it once the line is whole
            if len(self._raw_line) < RAW_LINE_KEEP:      # the taps see at most this much of one line
                self._raw_line += data[:min(echo_end, RAW_LINE_KEEP - len(self._raw_line))]
            del data[:echo_end]
            if run_line is not None:
                self._tap_line(run_line, echo_on)
                overflow, self._overflow = self._overflow, False
                if run_line is _REPEAT:
                    if self._last_line is None:
                        continue
                    self._run_line(*self._last_line)
                else:
                    self._run_line(run_line, overflow, self._tap_secret)

    def _echo(self, data: bytes) -> None:
        if self._holding:
            self._out += data
        else:
            self.modem.port.write(data)

    def _tap_line(self, line: bytes, echoed: bool) -> None:
        """A line is complete: show its raw bytes (masked if it carries a secret) to the taps."""
        raw, self._raw_line = bytes(self._raw_line), bytearray()
        secret = line is not _REPEAT and (is_secret_line(line) or is_secret_line(raw))
        if not secret and line is not _REPEAT and self._find_prefix(line) < 0 and self._last_secret:
            secret = True               # no AT prefix right after a secret line: the rest of a key
        if line is not _REPEAT:
            quotes = line.count(b'"')
            if is_secret_line(line):     # a key command of its own: its own quotes decide
                self._secret_quote_open = quotes % 2 == 1
            elif self._secret_quote_open:  # a <CR> inside a key's quotes: the key goes on in this line
                secret = True            # (even if it looks like a command); one line at most
                self._secret_quote_open = False
            else:
                self._secret_quote_open = False
        self._last_secret = secret
        self._tap_secret = secret
        if not (self.on_input or (echoed and self.on_output)):
            return
        shown = raw
        if secret:
            shown = masked_line(line, raw[-1:] if raw[-1:] == bytes((self._s.get("S3"),)) else b"")
        if self.on_input:
            self.on_input(shown, secret)
        if echoed and self.on_output:
            self.on_output(shown, secret)

    # ---------------------------------------------------------------- raw data phase
    async def read_raw(self, size: int, time_limit: float) -> bytes:
        """The data phase: `size` raw bytes. Only an <LF> that directly follows the command line's
        <CR> (and was not yet seen) is skipped. DataTimeout `time_limit` seconds (module clock) after
        the start, however many bytes came: the port is then back in command mode."""
        fut = asyncio.get_running_loop().create_future()
        self._raw = (size, bytearray(), fut)
        self._raw_skip_lf = self._lf_may_follow
        self._pump_raw()
        try:
            try:
                await self.modem.clock.wait_for(asyncio.shield(fut), time_limit)
            except asyncio.TimeoutError:
                raise DataTimeout() from None
            return fut.result()
        finally:
            self._raw = None

    def _pump_raw(self) -> None:
        size, buf, fut = self._raw
        if self._raw_skip_lf and self._in:
            if self._in[0] == self._s.get("S4"):
                if self.on_input:
                    self.on_input(bytes(self._in[:1]), False)
                del self._in[0]
            self._raw_skip_lf = False
        take = min(size - len(buf), len(self._in))
        if take:
            if self.on_input:
                self.on_input(bytes(self._in[:take]), False)
            buf += self._in[:take]
            del self._in[:take]
        if len(buf) >= size and not fut.done():
            fut.set_result(bytes(buf))

    # ---------------------------------------------------------------- execution
    @staticmethod
    def _find_prefix(line: bytes) -> int:
        up = line.upper()
        return up.find(b"AT")

    def _parse_uncached(self, body: str) -> tuple[Command, ...]:
        return tuple(self._parser.parse(strip_spaces(body)))

    def _run_line(self, line: bytes, overflow: bool, secret: bool = False) -> None:
        """Run one assembled command line; ``secret``: it carries (part of) a key, never log it."""
        idx = self._find_prefix(line)
        if idx < 0:
            return                      # no AT prefix: not a command line, no answer
        line = line[idx:]
        self._last_line = (line, overflow, secret)
        self._busy = True
        self._line_secret = secret or is_secret_line(line)
        if overflow or len(line) > LINE_LIMIT:
            self._finish("ERROR")
            return
        body = line[2:].decode("latin-1")
        try:
            cmds = self._parse(body)
        except ParseError as exc:
            if self._line_secret:
                log.debug("syntax error in a #LWM2MINJKEYS line (not shown: it carries a key)")
            else:
                log.debug("syntax error in %r: %s", body, exc)
            self._finish("ERROR")
            return
        self._run_commands(cmds)

    def _run_commands(self, cmds) -> None:
        """Run the commands of a line in order; the first error ends the line (V.25ter)."""
        write, fmt = self.write, self.format_info
        for k, cmd in enumerate(cmds):
            try:
                spec, result = self._dispatch(cmd)
            except AtError as err:
                self._finish(err.render(self._s.get("+CMEE")))
                return
            except NvmFull:
                self._finish(AtError(MEMORY_FULL).render(self._s.get("+CMEE")))
                return
            except Exception as exc:       # a bug must never kill the port: log it, answer ERROR
                if not self.modem.powered:  # the supply went during the command: no answer at all
                    log.info("%s: the power went during the command", cmd.name)
                    self._busy = False
                    return
                self._log_failure(cmd.name, exc)
                self._finish("ERROR")
                return
            if result is None:
                continue
            if isinstance(result, str):     # the common answer: one information line
                write(fmt((result,), spec.lf_join))
                continue
            if result.__class__ not in _PLAIN and inspect.isawaitable(result):
                self._task = asyncio.ensure_future(self._await_then_continue(spec, result, list(cmds[k + 1:])))
                return
            self._emit(spec, result)
        self._finish("OK")

    async def _await_then_continue(self, spec: Spec, aw, rest: list[Command]) -> None:
        try:
            result = await aw
        except AtError as err:
            self._finish(err.render(self._s.get("+CMEE")))
        except DataTimeout:
            self._finish("ERROR")
        except NvmFull:
            self._finish(AtError(MEMORY_FULL).render(self._s.get("+CMEE")))
        except asyncio.CancelledError:
            self._busy = False
            raise
        except Exception as exc:
            self._log_failure(spec.name, exc)
            self._finish("ERROR")
        else:
            if result is _NO_RESULT:
                self._busy = False
                self._flush_urcs()
            else:
                self._emit(spec, result)
                self._run_commands(rest)
        if not self._busy and self._in:
            self._pump()

    def _log_failure(self, name: str, exc: BaseException) -> None:
        """A handler raised: log the command's name, never its arguments (they may hold a key);
        for a line that carries a secret not even the exception's text (or traceback)."""
        if self._line_secret:
            log.error("handler of %s failed: %s", name, type(exc).__name__)
        else:
            log.error("handler of %s failed", name, exc_info=exc)

    def _emit(self, spec: Spec, result: Any) -> None:
        if result is None:
            return
        lines = (result,) if isinstance(result, str) else list(result)
        if lines:
            self.write(self.format_info(lines, spec.lf_join))

    def _dispatch(self, cmd: Command) -> tuple[Spec, Any]:
        spec = self.registry.lookup(cmd.name)
        if spec is None:
            raise AtError()
        form = cmd.form
        if spec.needs_sim and form != TEST:
            sim = self.modem.sim
            if not sim.present:
                raise AtError(SIM_NOT_INSERTED)
        ctx = Context(self.modem, self, spec, cmd)
        handler = spec.handlers.get(form)
        if form == TEST:
            if handler:
                return spec, handler(ctx)
            if spec.test_answer is not None:
                ans = spec.test_answer
                return spec, (ans(ctx) if callable(ans) else ans)
            if not spec.handlers:
                raise AtError()
            return spec, spec.default_test_lines()
        if form == EXEC and handler is None and SET in spec.handlers and cmd.basic:
            handler, form = spec.handlers[SET], SET          # ATE == ATE0
        if handler is None:
            raise AtError()
        args = spec.bind(cmd, ctx) if form == SET else []
        gate = spec.gate(ctx, form) if spec.gate else None
        if gate is not None:                       # the command waits (e.g. the agent's busy window)
            return spec, self._after_gate(gate, handler, ctx, args)
        return spec, handler(ctx, *args)

    @staticmethod
    async def _after_gate(gate, handler, ctx, args):
        await gate
        result = handler(ctx, *args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _finish(self, text: str) -> None:
        self.write(self.format_final(text))
        self._busy = False
        after, self._after_final = self._after_final, []
        if after:
            self._flush_out()              # the final result code reaches the host before e.g. a reboot
        for fn in after:
            fn()
        self._flush_urcs()

    # ---------------------------------------------------------------- control
    def cancel(self) -> None:
        if self._task and not self._task.done():
            self._task.cancel()


_PLAIN = (str, list, tuple)     # handler results that are surely not awaitable (the common ones)

# A handler that ends the line itself (e.g. #REBOOT after its OK) returns this.
_NO_RESULT = object()
NO_RESULT = _NO_RESULT
