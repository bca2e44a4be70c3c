"""Test helpers that play the host: start the emulator as a process, talk to its PTY with pyserial.

Used by this project's tests; the seed of the pytest plugin for host-software CI.
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import serial

# the first final result code in what was read (URCs may follow it in the same read)
FINAL_V1 = re.compile(rb"\r\n(OK|ERROR|\+CME ERROR: [^\r\n]*|NO CARRIER)\r\n")
FINAL_V0 = re.compile(rb"(?:^|\n)([0-9]\r(?!\n)|\+CME ERROR: [^\r\n]*\r\n)")


# unsolicited lines that can never be part of a command's answer
URC_LINE = re.compile(rb"\r\n(?:#?LWM2M-TLT:|#LWM2MRING: |#LWM2MEND: |#LWM2MMON: UPD,|#LWM2MINFO: |#LWM2MNFYACK: |"
                      rb"#LWM2MFOTARING: )[^\r\n]*\r\n")


class Timeout(AssertionError):
    pass


class EmulatorProcess:
    """`python -m emulator` in a subprocess; .port is the PTY path it printed."""

    def __init__(self, state_dir: Path, *args: str, env: dict | None = None):
        self.state_dir = Path(state_dir)
        cmd = [sys.executable, "-m", "emulator", "--state-dir", str(state_dir), *args]
        # stderr goes to a file: a pipe nobody reads would stall a chatty (-v) emulator
        self.stderr_path = Path(f"{self.state_dir}.stderr")
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        self._stderr = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env={**os.environ, **(env or {})})
        line = self.proc.stdout.readline().decode()
        if not line.startswith("port: "):
            self.kill()
            raise RuntimeError(f"emulator did not print its port: {line!r} {self.stderr_text()}")
        self.port = line.split(": ", 1)[1].strip()

    def open(self, **kw) -> "AtHost":
        return AtHost(self.port, **kw)

    # ------------------------------------------------------------------ the control socket
    @property
    def control_path(self) -> Path:
        """The emulator's control socket (``<state dir>/control.sock``)."""
        return self.state_dir / "control.sock"

    def control(self, request: dict, timeout: float = 30.0) -> dict:
        """One JSON request to the control socket (see emulator/control.py); its answer. Raises
        RuntimeError when the answer is not ok."""
        from ..control import request as control_request
        answer = control_request(self.control_path, request, timeout=timeout)
        if not answer.get("ok"):
            raise RuntimeError(f"control {request.get('verb')}: {answer.get('error')}")
        return answer

    def fault(self, name: str, **params) -> dict:
        """Apply a fault of the catalogue, e.g. ``fault("network.detach")`` or
        ``fault("link.loss", rate=0.3)``; returns the parameters used."""
        return self.control({"verb": "fault", "name": name, "params": params})["params"]

    def clear(self, name: str) -> None:
        """End a lasting fault."""
        self.control({"verb": "clear", "name": name})

    def advance(self, seconds: float) -> float:
        """Move a ``--manual-clock`` module's time forward; returns the module time."""
        return self.control({"verb": "advance", "seconds": seconds})["time"]

    def terminate(self, timeout: float = 5.0) -> float:
        """SIGTERM; returns the seconds it took to exit."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout)
        return time.monotonic() - t0

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        for stream in (self.proc.stdout, self._stderr):
            if stream and not stream.closed:
                stream.close()

    def stderr_text(self) -> str:
        """Everything the emulator wrote on stderr so far (its log)."""
        try:
            return self.stderr_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self):
        return self

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM (a registered agent deregisters, within its 2 s budget), SIGKILL after ``grace`` s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def __exit__(self, *exc):
        self.stop()


class AtHost:
    """A host program's view of the port: write lines, read answers byte for byte."""

    def __init__(self, port: str, *, echo: bool = True, timeout: float = 10.0):
        self.ser = serial.Serial(port, 115200, timeout=0.01)
        self.echo = echo
        self.verbose = True
        self.timeout = timeout
        self.buf = bytearray()

    def close(self) -> None:
        self.ser.close()

    def write(self, data: bytes) -> None:
        self.ser.write(data)
        self.ser.flush()

    def _fill(self) -> bool:
        chunk = self.ser.read(self.ser.in_waiting or 1)
        self.buf += chunk
        return bool(chunk)

    def read_until(self, pred, timeout: float | None = None) -> bytes:
        """Read until pred(buffer) returns an end index (int) or True; returns that much."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            r = pred(bytes(self.buf))
            if r is not None and r is not False:
                end = len(self.buf) if r is True else r
                out = bytes(self.buf[:end])
                del self.buf[:end]
                return out
            if time.monotonic() > deadline:
                raise Timeout(f"timed out; got {bytes(self.buf)!r}")
            self._fill()

    def read_exactly(self, n: int, timeout: float | None = None) -> bytes:
        return self.read_until(lambda b: n if len(b) >= n else None, timeout)

    def read_final(self, timeout: float | None = None) -> bytes:
        rx = FINAL_V1 if self.verbose else FINAL_V0

        def pred(b: bytes):
            m = rx.search(b)
            return m.end() if m else None
        return self.read_until(pred, timeout)

    def cmd(self, line: str | bytes, timeout: float | None = None, raw: bool = False) -> bytes:
        """Send a command line (CR appended); return the answer up to its final result code.

        The echo (when on) is checked and stripped unless raw=True.
        """
        data = line.encode("latin-1") if isinstance(line, str) else line
        self.write(data + b"\r")
        echo = b""
        before = b""
        if self.echo:
            got = self.wait_for(re.escape(data + b"\r"), timeout)
            before, echo = got[:-len(data) - 1], got[-len(data) - 1:]
            assert URC_LINE.sub(b"", before) == b"", f"unexpected bytes {before!r} before the echo of {data!r}"
        ans = self.read_final(timeout)
        # URCs the module wrote just before this answer: set aside for later wait_for() calls
        urcs = b"".join(URC_LINE.findall(ans))
        ans = URC_LINE.sub(b"", ans)
        if before or urcs:
            self.buf[0:0] = before + urcs
        return echo + ans if raw else ans

    def wait_network(self, timeout: float = 30.0) -> None:
        """Poll +CEREG? until the module is registered (home or roaming)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(rb"\+CEREG: \d,[15]", self.cmd("AT+CEREG?")):
                return
            time.sleep(0.05)
        raise Timeout("the module never registered to the network")

    def wait_for(self, pattern: bytes, timeout: float | None = None) -> bytes:
        """Read until pattern (a regex on bytes) matches; returns everything up to its end."""
        rx = re.compile(pattern)

        def pred(b: bytes):
            m = rx.search(b)
            return m.end() if m else None
        return self.read_until(pred, timeout)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
