"""Output of fleet modems as lines: what the module writes is cut into lines and handed to listeners
(metrics, behaviours, control-socket AT requests), then forgotten, so an idle modem holds no output."""
from __future__ import annotations

from typing import Callable

from ..port import DataCallback, Port

LineListener = Callable[[str], None]

MAX_PARTIAL = 4096          # bytes of an unfinished output line kept (a longer one is cut)


class LineTap:
    """Cuts a byte stream into lines (without <CR>/<LF>, latin-1 decoded) for its listeners. A prompt
    (``>>>``) and a V0 answer ending in a bare <CR> count as lines too."""

    __slots__ = ("_partial", "_listeners")

    def __init__(self) -> None:
        self._partial = b""
        self._listeners: list[LineListener] = []

    def listen(self, fn: LineListener) -> Callable[[], None]:
        """Add a line listener; returns a function that removes it."""
        self._listeners.append(fn)

        def remove() -> None:
            if fn in self._listeners:
                self._listeners.remove(fn)
        return remove

    def _emit(self, raw: bytes) -> None:
        line = raw.strip(b"\r").decode("latin-1")
        if line:
            for fn in tuple(self._listeners):
                fn(line)

    def write(self, data: bytes, *_flags) -> None:
        """Take output bytes (extra arguments, such as the engine tap's ``masked``, are ignored)."""
        if not self._listeners:
            self._partial = b""
            return
        buf = self._partial + data if self._partial else data
        *lines, rest = buf.split(b"\n")
        for raw in lines:
            self._emit(raw)
        if rest.endswith(b"\r") or rest.endswith(b">>>"):
            self._partial = b""
            self._emit(rest)
        else:
            self._partial = rest[-MAX_PARTIAL:]


class LinePort(Port):
    """A host-less port: ``feed(bytes)`` plays the host typing; output goes to ``tap``'s listeners."""

    __slots__ = ("_on_data", "tap")

    def __init__(self) -> None:
        self._on_data: DataCallback | None = None
        self.tap = LineTap()

    def start(self, on_data: DataCallback) -> None:
        self._on_data = on_data

    def feed(self, data: bytes) -> None:
        if self._on_data is not None:
            self._on_data(data)

    def write(self, data: bytes, droppable: bool = False) -> None:
        self.tap.write(data)
