"""The byte stream between the host and the line engine.

PtyPort is the virtual serial port: a pseudo-terminal in raw mode whose slave side the emulator keeps
open, so hosts can open, close and reopen it at will. Output never blocks the event loop: what the
kernel won't take yet waits in a bounded queue of whole pieces. The engine marks each URC as a
droppable whole line; everything else (echo, a command's information lines and final result code,
prompts, file data) is a response and is never dropped. When the queue exceeds its bound, whole URC
lines are dropped, oldest first (never one the host has partly received), and each drop is reported
to `on_drop` and logged. When responses alone exceed the bound, the port stops reading the host's
input until the host has read (a UART's flow control): a host that never reads loses URCs, never a
response, and never receives a partial line. MemoryPort is the in-process twin for unit tests (like
python-can's virtual bus).
"""
from __future__ import annotations

import asyncio
import errno
import logging
import os
import pty
import tty
from collections import deque
from typing import Callable

log = logging.getLogger("emulator.port")

DataCallback = Callable[[bytes], None]


class Port:
    path: str | None = None

    def start(self, on_data: DataCallback) -> None:
        raise NotImplementedError

    def write(self, data: bytes, droppable: bool = False) -> None:
        """Queue `data` for the host; droppable=True: a whole URC line the port may drop."""
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
        self.dropped = 0                 # URC lines dropped
        self.dropped_bytes = 0
        self.on_drop: Callable[[bytes], None] | None = None
        self._out: deque[list] = deque()  # [bytearray, droppable]; the first may be partly sent
        self._out_len = 0
        self._urc_len = 0
        self._sent_head = 0              # bytes of the first piece already in the kernel
        self._loop: asyncio.AbstractEventLoop | None = None
        self._writing = False
        self._reading = False
        self._paused = False
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
        self._resume_reading()

    def _resume_reading(self) -> None:
        if not self._reading and not self._closed and self._loop is not None:
            self._reading = True
            self._loop.add_reader(self.master, self._readable)

    def _pause_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._reading = False
            self._loop.remove_reader(self.master)

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

    @property
    def pending(self) -> int:
        """Bytes waiting for the host to read them (beyond what the kernel holds)."""
        return self._out_len - self._sent_head

    def write(self, data: bytes, droppable: bool = False) -> None:
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
            if n == len(data):
                return
            self._out.append([bytearray(data), droppable])
            self._out_len += len(data)
            self._urc_len += len(data) if droppable else 0
            self._sent_head = n
        else:
            self._out.append([bytearray(data), droppable])
            self._out_len += len(data)
            self._urc_len += len(data) if droppable else 0
        if self.pending > self.max_buffer:
            self._shed()
        if not self._writing and self._loop is not None:
            self._writing = True
            self._loop.add_writer(self.master, self._writable)

    def _shed(self) -> None:
        """Over the bound: drop whole URC lines, oldest first; if responses alone are over it,
        stop reading input until the host reads."""
        if self._urc_len:
            keep: deque[list] = deque()
            for i, piece in enumerate(self._out):
                data, droppable = piece
                if (droppable and self.pending > self.max_buffer
                        and not (i == 0 and self._sent_head)):
                    self._out_len -= len(data)
                    self._urc_len -= len(data)
                    self.dropped += 1
                    self.dropped_bytes += len(data)
                    if self.on_drop:
                        self.on_drop(bytes(data))
                    if self.dropped == 1 or self.dropped % 1000 == 0:
                        log.warning("host is not reading: dropped URC line %r (%d lines in all)",
                                    bytes(data).strip(), self.dropped)
                    continue
                keep.append(piece)
            self._out = keep
        if self.pending > self.max_buffer and not self._paused:
            self._paused = True
            self._pause_reading()
            log.info("host is not reading: input paused (%d response bytes waiting)", self.pending)

    def _writable(self) -> None:
        while self._out:
            data, droppable = self._out[0]
            try:
                n = os.write(self.master, memoryview(data)[self._sent_head:])
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.warning("pty write failed: %s", exc)
                break
            self._sent_head += n
            if self._sent_head < len(data):
                break
            self._out.popleft()
            self._out_len -= len(data)
            self._urc_len -= len(data) if droppable else 0
            self._sent_head = 0
        if self._paused and self.pending <= self.max_buffer // 2:
            self._paused = False
            self._resume_reading()
        if not self._out and self._loop is not None:
            self._loop.remove_writer(self.master)
            self._writing = False

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            self._pause_reading()
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

    def write(self, data: bytes, droppable: bool = False) -> None:
        self.output += data

    def take(self) -> bytes:
        out = bytes(self.output)
        self.output.clear()
        return out
