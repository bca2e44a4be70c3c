"""The trace (``--record FILE``, ``--log FILE``): one text line per thing that happened, stamped with
module time, so two runs of one scenario and seed can be diffed byte for byte. Format (version 1)::

    # telit-emu trace 1
    # seed 7
    0.000 host->module b'AT#LWM2MENA=1\\r'
    0.000 module->host b'AT#LWM2MENA=1\\r\\r\\nOK\\r\\n'
    0.000 host->module masked b'AT#LWM2MINJKEYS***\\r'
    2.512 coap up CON POST /rd?ep=001&lt=86400&lwm2m=1.0&b=U cf=40 b'</1/0>,</3/0>'
    2.530 coap down ACK 2.01 location={location}
    60.000 fault link.loss rate=0.3 direction=both server=all
    60.000 event registration stat=2
    61.000 coap up lost CON POST {location}
    61.000 ## dropped-urc b'\r\n#LWM2MRING: "NOT"\r\n'   (a free-text note)

* ``<module seconds, 3 decimals> host->module|module->host [masked] <Python bytes literal>``: the bytes of
  the serial line, cut after each <CR>/<LF> (and after a ``>>>`` prompt). ``masked``: a secret
  (#LWM2MINJKEYS parameters) was replaced by ``***``; a replay needs ``--secret``.
* ``coap up|down [lost] <type> <method or code> [path] [location=...] [cf=N] [payload]``: a CoAP
  datagram in summary (no token, no message id); ``lost`` = dropped by a fault or for lack of network;
  the location the server assigned at Register is written ``{location}``; a Security object payload
  (/0) is written ``masked``; coaps:// records are ``DTLS handshake|application|alert|ccs``.
* ``fault NAME k=v ...``, ``clear NAME``, ``event NAME k=v ...`` (the modem's events), ``## text`` (a
  note: a URC line dropped because the host did not read, a port warning).

``replay`` reads only the host->module and module->host lines; a trace of just those (e.g. a capture
from a real module) is accepted.
"""
from __future__ import annotations

import json
import os
import re
from typing import Callable

from ..modem.link import Datagram

HEADER = "# telit-emu trace 1"
DTLS_TYPES = {20: "ccs", 21: "alert", 22: "handshake", 23: "application"}
MAX_PAYLOAD = 512


class Trace:
    """Writes a trace to ``path`` (created 0600). ``now()`` gives module seconds."""

    def __init__(self, path: str | os.PathLike, now: Callable[[], float], seed: int | None = None):
        # never through a symlink planted at the path; private even when the file already existed
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        os.fchmod(fd, 0o600)
        self.fh = open(fd, "w", buffering=1, encoding="utf-8")
        self.now = now
        self._t0 = now()
        self._pending = {"host->module": bytearray(), "module->host": bytearray()}
        self._locations: list[str] = []
        self.fh.write(HEADER + "\n")
        if seed is not None:
            self.fh.write(f"# seed {seed}\n")

    def _stamp(self) -> str:
        return f"{self.now() - self._t0:.3f}"

    def _line(self, arrow: str, data: bytes, masked: bool = False) -> None:
        self.fh.write(f"{self._stamp()} {arrow}{' masked' if masked else ''} {data!r}\n")

    def _feed(self, arrow: str, data: bytes, masked: bool) -> None:
        buf = self._pending[arrow]
        if masked:
            if buf:
                self._line(arrow, bytes(buf))
                buf.clear()
            self._line(arrow, data, masked=True)
            return
        buf += data
        while True:
            cut = max(buf.rfind(b"\r"), buf.rfind(b"\n"))
            if cut < 0:
                break
            chunk = bytes(buf[:cut + 1])
            del buf[:cut + 1]
            self._line(arrow, chunk)
        if len(buf) > 1024 or buf.endswith(b">>>"):
            self._line(arrow, bytes(buf))
            buf.clear()

    # engine taps: fn(data, masked)
    def host_to_module(self, data: bytes, masked: bool = False) -> None:
        self._feed("host->module", data, masked)

    def module_to_host(self, data: bytes, masked: bool = False) -> None:
        self._feed("module->host", data, masked)

    def dropped(self, data: bytes) -> None:
        self.note(f"dropped-urc {data!r}")      # the host was not reading: this whole URC line was dropped

    def flush(self) -> None:
        for arrow, buf in self._pending.items():
            if buf:
                self._line(arrow, bytes(buf))
                buf.clear()

    def note(self, text: str) -> None:
        self.fh.write(f"{self._stamp()} ## {text}\n")

    def fault(self, text: str) -> None:
        """A fault layer's note: ``fault ...`` / ``clear ...`` / power lines."""
        self.flush()
        self.fh.write(f"{self._stamp()} {text}\n")

    def event(self, name: str, **data) -> None:
        if name == "fault" or name == "fault_cleared":
            return                               # written by fault() already
        self.flush()
        items = " ".join(f"{k}={_short(v)}" for k, v in sorted(data.items()))
        self.fh.write(f"{self._stamp()} event {name}{' ' + items if items else ''}\n")

    # link watcher
    def coap(self, direction: str, data: bytes, peer, d: Datagram) -> None:
        self.flush()
        self.fh.write(f"{self._stamp()} coap {direction} {self.summary(d)}\n")

    def summary(self, d: Datagram) -> str:
        if d.dtls is not None or d.mtype.endswith("DTLS"):
            kind = DTLS_TYPES.get(d.dtls, "record") if d.dtls is not None else "record"
            return f"{d.mtype.replace('DTLS', '').strip()} DTLS {kind}".strip().replace("  ", " ") \
                if d.mtype.startswith("lost") else f"DTLS {kind}"
        parts = [d.mtype, d.code]
        if d.location and d.code == "2.01":
            self._locations.append(d.location)
            parts.append("location={location}")
        if d.path:
            parts.append(self._place(d.path))
        if d.cf is not None:
            parts.append(f"cf={d.cf}")
        if d.observe is not None and d.code in ("GET",):
            parts.append(f"observe={d.observe}")
        if d.payload:
            if d.path.startswith("/0") and d.code in ("PUT", "POST"):
                parts.append("masked")
            else:
                p = d.payload[:MAX_PAYLOAD]
                parts.append(repr(p) + (f"...({len(d.payload)} bytes)" if len(d.payload) > MAX_PAYLOAD else ""))
        return " ".join(x for x in parts if x)

    def _place(self, path: str) -> str:
        for loc in self._locations:
            if path == loc or path.startswith(loc + "?") or path.startswith(loc + "/"):
                return "{location}" + path[len(loc):]
        return path

    def close(self) -> None:
        self.flush()
        self.fh.close()


def _short(v) -> str:
    text = str(v) if isinstance(v, (int, float, str, bool, tuple, type(None))) else type(v).__name__
    return re.sub(r"\s+", "_", text)[:80]


# ---------------------------------------------------------------------------------------------- reading
LINE = re.compile(r"^(?P<t>-?\d+(?:\.\d+)?) (?P<arrow>host->module|module->host)(?P<masked> masked)? (?P<data>b(['\"]).*\5)$")
# a capture with wall-clock stamps (the old --log format: 2026-01-01T10:00:00.123)
WALL = re.compile(r"^(?P<t>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?) (?P<arrow>host->module|module->host)"
                  r"(?P<masked> masked)? (?P<data>b(['\"]).*\5)$")


def read_port_lines(path: str | os.PathLike) -> list[tuple[float, str, bool, bytes, int]]:
    """The serial-line entries of a trace: (module seconds, or seconds from the first line of a
    wall-clock capture, arrow, masked, bytes, file line)."""
    import ast
    from datetime import datetime
    out = []
    t0 = None
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            raw = raw.rstrip("\n")
            m = LINE.match(raw) or WALL.match(raw)
            if not m:
                continue
            t = m.group("t")
            secs = float(t) if "T" not in t else datetime.fromisoformat(t).timestamp()
            if t0 is None:                   # module-time stamps are kept; wall-clock ones start at 0
                t0 = secs if "T" in t else 0.0
            try:
                data = ast.literal_eval(m.group("data"))
                if not isinstance(data, bytes):
                    raise ValueError("not bytes")
            except (ValueError, SyntaxError) as exc:
                raise ValueError(f"{path}:{n}: not a trace line ({exc})") from None
            out.append((secs - t0, m.group("arrow"), bool(m.group("masked")), data, n))
    return out


FAULT_LINE = re.compile(r"^(?P<t>\d+(?:\.\d+)?) (?P<verb>fault|clear) (?P<name>[a-z_.]+)(?P<params>(?: .*)?)$")
_PARAM_KEY = re.compile(r" ([a-z_]+)=")


def _fault_params(text: str) -> dict:
    """`` key=<JSON value> ...`` (as FaultLayer writes them; an unquoted token from an older trace is
    taken as a string). ValueError when the text is not such a list."""
    out, i, decode = {}, 0, json.JSONDecoder().raw_decode
    while i < len(text):
        m = _PARAM_KEY.match(text, i)
        if not m:
            raise ValueError(f"bad fault parameters {text[i:i + 40]!r}")
        i = m.end()
        try:
            out[m.group(1)], i = decode(text, i)
        except ValueError:
            j = text.find(" ", i)
            j = len(text) if j < 0 else j
            out[m.group(1)], i = text[i:j], j
    return out


def read_fault_lines(path: str | os.PathLike) -> list[tuple[float, str, str, dict, int]]:
    """The fault and clear lines of a trace: (module seconds, "fault"|"clear", name, params, file line).
    ValueError (naming the file line) for a fault line whose parameters cannot be read."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for n, raw in enumerate(fh, 1):
            m = FAULT_LINE.match(raw.rstrip("\n"))
            if m:
                try:
                    params = _fault_params(m.group("params"))
                except ValueError as exc:
                    raise ValueError(f"{path}:{n}: {exc}") from None
                out.append((float(m.group("t")), m.group("verb"), m.group("name"), params, n))
    return out


def read_seed(path: str | os.PathLike) -> int | None:
    """The ``# seed N`` header line of a trace, if any."""
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            m = re.match(r"# seed (-?\d+)$", raw.strip())
            if m:
                return int(m.group(1))
            if not raw.startswith("#"):
                return None
    return None
