"""The byte stream between the host and the line engine.

PtyPort is the virtual serial port: a pseudo-terminal in raw mode whose slave side the emulator keeps
open, so hosts can open, close and reopen it at will. Output never blocks the event loop: what the
kernel won't take yet waits in a bounded buffer; when that overflows the oldest bytes are dropped and
the drop is logged. MemoryPort is the in-process twin for unit tests (like python-can's virtual bus).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import pty
import tty
from typing import Callable

log = logging.getLogger("emulator.port")

DataCallback = Callable[[bytes], None]


class Port:
    path: str | None = None

    def start(self, on_data: DataCallback) -> None:
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class PtyPort(Port):
    def __init__(self, link: str | None = None, max_buffer: int = 256 * 1024):
        self.master, self.slave = pty.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self.slave)
        self.link = link
        self.max_buffer = max_buffer
        self.dropped = 0
        self._out = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False
        self._closed = False
        if link:
            self._make_link(link)

    def _make_link(self, link: str) -> None:
        tmp = f"{link}.{os.getpid()}.tmp"
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        os.symlink(self.path, tmp)
        os.replace(tmp, link)   # atomic: the link always points at a live port

    def start(self, on_data: DataCallback) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_data = on_data
        self._loop.add_reader(self.master, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:      # EIO cannot happen while we hold the slave, but never die on it
            log.warning("pty read failed: %s", exc)
            return
        if data:
            self._on_data(data)

    def write(self, data: bytes) -> None:
        if self._closed or not data:
            return
        if not self._out:
            try:
                n = os.write(self.master, data)
            except BlockingIOError:
                n = 0
            except OSError as exc:
                if exc.errno != errno.EAGAIN:
                    log.warning("pty write failed: %s", exc)
                n = 0
            data = data[n:]
            if not data:
                return
        self._out += data
        if len(self._out) > self.max_buffer:
            drop = len(self._out) - self.max_buffer
            del self._out[:drop]
            self.dropped += drop
            log.warning("host is not reading: dropped %d output bytes (%d in all)", drop, self.dropped)
        if not self._writing and self._loop is not None:
            self._writing = True
            self._loop.add_writer(self.master, self._writable)

    def _writable(self) -> None:
        try:
            n = os.write(self.master, self._out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("pty write failed: %s", exc)
            return
        del self._out[:n]
        if not self._out and self._loop is not None:
            self._loop.remove_writer(self.master)
            self._writing = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._loop.remove_reader(self.master)
            if self._writing:
                self._loop.remove_writer(self.master)
        if self.link:
            try:
                if os.path.islink(self.link) and os.readlink(self.link) == self.path:
                    os.unlink(self.link)
            except OSError:
                pass
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass


class MemoryPort(Port):
    """In-memory port: feed() plays the host typing, .output collects what the module writes."""

    def __init__(self):
        self.output = bytearray()
        self._on_data: DataCallback | None = None
        self.waiters: list[tuple[bytes, asyncio.Future]] = []

    def start(self, on_data: DataCallback) -> None:
        self._on_data = on_data

    def feed(self, data: bytes) -> None:
        assert self._on_data is not None, "port not started"
        self._on_data(data)

    def write(self, data: bytes) -> None:
        self.output += data

    def take(self) -> bytes:
        out = bytes(self.output)
        self.output.clear()
        return out
