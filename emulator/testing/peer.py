"""External peer processes for tests (Leshan, lwm2m-node-lib ...): the shared part.

Standard library only. :class:`PeerProcess` runs one child in its own session
and working folder, copies its output to a log file, keeps its stdout lines
(a reader thread), stops it with SIGTERM then SIGKILL, and is a context
manager. Every running peer is listed in one registry so that the ones a test
run forgets are stopped when Python exits. :func:`cache_folder` and
:func:`locked` serve the peers' download/build caches.

Subclasses set :attr:`PeerProcess.label` and :attr:`PeerProcess.error_type`,
implement ``start()`` (which calls :meth:`PeerProcess._spawn`) and may
override the hooks :meth:`PeerProcess._on_line` (each stdout line) and
:meth:`PeerProcess._ask_to_exit` (a polite stop before SIGTERM).
"""
from __future__ import annotations

import atexit
import contextlib
import fcntl
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Iterator, Mapping

DEFAULT_STOP_GRACE = 5.0


def cache_folder(name: str, env_var: str, override: str | os.PathLike | None = None) -> Path:
    """``override``, else ``$env_var``, else ``$XDG_CACHE_HOME/telit-emu/<name>``, else ``~/.cache/telit-emu/<name>``."""
    if override is not None:
        return Path(override).expanduser()
    env = os.environ.get(env_var)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "telit-emu" / name


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory/.lock`` (created with the folder when missing)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)

_live: "set[PeerProcess]" = set()
_live_lock = threading.Lock()


@atexit.register
def _kill_leftovers() -> None:  # pragma: no cover - safety net
    with _live_lock:
        peers = list(_live)
    for p in peers:
        with contextlib.suppress(Exception):
            p.stop(grace=2)


class PeerProcess:
    """A child process whose output goes to a log file (and, line by line, to :meth:`output_lines`)."""

    #: Names the working folder (``telit-emu-<label>-*``), the default log file and messages.
    label = "peer"
    #: Raised by :meth:`wait_line` when the process exits without printing what was awaited.
    error_type: type[Exception] = RuntimeError
    #: Give the child a stdin pipe (``self.proc.stdin``); otherwise stdin is /dev/null.
    stdin_pipe = False
    #: Send stderr straight to the log file; otherwise it is merged into stdout.
    stderr_to_log = False
    #: Written before each stdout line copied to the log.
    log_prefix = b""

    def __init__(self, *, log_path: str | os.PathLike | None = None):
        # Working folder of the child (some peers write files into their current directory).
        self.work_dir = Path(tempfile.mkdtemp(prefix=f"telit-emu-{self.label}-"))
        self.log_path = Path(log_path).resolve() if log_path else self.work_dir / f"{self.label}.log"
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self._lines: list[str] = []
        self._lines_cond = threading.Condition()
        self._reader: threading.Thread | None = None
        self.command: list[str] = []

    # -- lifecycle --------------------------------------------------------
    def start(self):  # pragma: no cover - overridden
        raise NotImplementedError

    def _spawn(self, command: list[str], *, env: Mapping[str, str] | None = None) -> None:
        """Start ``command`` in :attr:`work_dir` (new session), log to :attr:`log_path`, pump its stdout."""
        self.command = list(command)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log = open(self.log_path, "ab")
        log.write(("\n$ " + " ".join(self.command) + "\n").encode())
        log.flush()
        self._lines = []
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.PIPE if self.stdin_pipe else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=log if self.stderr_to_log else subprocess.STDOUT,
            cwd=self.work_dir, env=env,
            start_new_session=True,  # Ctrl-C in a terminal reaches Python, which stops us cleanly
        )
        with _live_lock:
            _live.add(self)
        self._reader = threading.Thread(target=self._pump, args=(self.proc, log),
                                        name=f"{self.label}-stdout", daemon=True)
        self._reader.start()

    def _pump(self, proc: subprocess.Popen, log: IO[bytes]) -> None:
        assert proc.stdout is not None
        for raw in iter(proc.stdout.readline, b""):
            with contextlib.suppress(ValueError, OSError):
                log.write(self.log_prefix + raw)
                log.flush()
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with self._lines_cond:
                self._lines.append(line)
                self._on_line(line)
                self._lines_cond.notify_all()
        with self._lines_cond:
            self._lines_cond.notify_all()

    def _on_line(self, line: str) -> None:
        """Called by the reader thread for each stdout line, with ``self._lines_cond`` held."""

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def _finished(self) -> bool:
        """The process has exited and all its output has been read."""
        return not self.running and (self._reader is None or not self._reader.is_alive())

    def _ask_to_exit(self, proc: subprocess.Popen, grace: float) -> bool:
        """Ask the process to exit before SIGTERM; True when it did. By default: nothing to ask."""
        return False

    def stop(self, grace: float = DEFAULT_STOP_GRACE) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; idempotent. Returns the exit code."""
        proc = self.proc
        code = None
        if proc is not None:
            if proc.poll() is None and not self._ask_to_exit(proc, grace):
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    proc.wait(timeout=30)
            code = proc.returncode
            if self._reader is not None:
                self._reader.join(timeout=5)
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError, ValueError):
                        stream.close()
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None
        with _live_lock:
            _live.discard(self)
        with self._lines_cond:
            self._lines_cond.notify_all()
        return code

    def __enter__(self):
        if self.proc is None:
            try:
                self.start()
            except BaseException:
                self.stop(grace=2)
                raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- output -----------------------------------------------------------
    def wait_line(self, pattern: str, timeout: float = 30.0, start: int = 0) -> re.Match:
        """First output line (from index ``start``) matching regex ``pattern``."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._lines_cond:
            i = start
            while True:
                while i < len(self._lines):
                    m = rx.search(self._lines[i])
                    if m:
                        return m
                    i += 1
                if self._finished:
                    raise self.error_type(
                        f"{self.label} exited (code {self.proc.returncode if self.proc else None}) "
                        f"without printing /{pattern}/\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{self.label}: no /{pattern}/ within {timeout}s\n{self.log_tail()}")
                self._lines_cond.wait(min(left, 0.5))

    def output_lines(self) -> list[str]:
        with self._lines_cond:
            return list(self._lines)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text("utf-8", "replace").splitlines()
        except OSError:
            return f"(no log at {self.log_path})"
        return f"--- last {min(lines, len(text))} lines of {self.log_path} ---\n" + "\n".join(text[-lines:])
