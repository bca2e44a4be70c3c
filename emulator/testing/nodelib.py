"""lwm2m-node-lib (npm) as a second, independent LwM2M server for tests.

Standard library only. The server is ``tools/nodelib/server.js``: lwm2m-node-lib
:data:`NODELIB_VERSION` with an in-memory device registry, bound to 127.0.0.1,
driven over newline-delimited JSON on its stdin/stdout (the protocol is
described at the top of that file).

What this server does differently from Leshan (and so what it checks in the
emulator):

* writes carry content-format 1541 (the pre-standard "lightweightm2m/text");
* the registration answer carries one Location-Path option ``rd/<n>`` (with a
  slash inside), not two segments;
* reads and observes carry no Accept option unless ``accept=`` is given;
* requests to the device are relayed through the server's own socket (node-coap
  proxy mode), and the server never acknowledges a confirmable notification:
  the device must send notifications as NON to it;
* execute is a POST with a text payload (empty when no argument is given).

Packages are installed with ``npm ci`` (``npm install`` without a lock file)
outside the repository: ``$TELIT_EMU_NODELIB_CACHE``, else
``$XDG_CACHE_HOME/telit-emu/nodelib``, else ``~/.cache/telit-emu/nodelib``.

Typical use::

    with NodeLibServer() as srv:
        ... aim the emulator at srv.coap_uri, enable it ...
        srv.wait_device("my-ep", timeout=60)
        assert srv.read("my-ep", "3/0/0") == "Telit"
        srv.write("my-ep", "3/0/15", "Europe/Rome")
        first = srv.observe("my-ep", "3303/0/5700")
        note = srv.wait_notification("my-ep", "3303/0/5700", timeout=30)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .peer import PeerProcess, cache_folder, locked as _locked

NODELIB_VERSION = "1.4.0"
HOST = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]
SOURCE_DIR = REPO / "tools" / "nodelib"
SERVER_JS = SOURCE_DIR / "server.js"
DEFAULT_TIMEOUT = 30.0


class NodeLibError(RuntimeError):
    """The node server, its installation or one of its requests failed."""


class NodeLibToolingMissing(NodeLibError):
    """node or npm is not installed."""


class NodeLibRequestError(NodeLibError):
    """The server answered a request with an error (``name``, ``message``, CoAP ``code``)."""

    def __init__(self, op: str, error: dict):
        self.op = op
        self.name = error.get("name")
        self.code = error.get("code")
        self.detail = error.get("message")
        super().__init__(f"{op}: {self.name} (code {self.code}): {self.detail}")


# --------------------------------------------------------------------------
# installation
# --------------------------------------------------------------------------


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder holding the installed node packages (outside the repository)."""
    return cache_folder("nodelib", "TELIT_EMU_NODELIB_CACHE", override)


def require_tool(name: str) -> str:
    """Path of executable ``name`` or :class:`NodeLibToolingMissing`."""
    path = shutil.which(name)
    if path is None:
        raise NodeLibToolingMissing(
            f"'{name}' not found on PATH: install Node.js 18+ with npm "
            f"(Debian: apt-get install nodejs npm) to run the lwm2m-node-lib server")
    return path


def _manifest_files() -> list[Path]:
    files = [SOURCE_DIR / "package.json"]
    lock = SOURCE_DIR / "package-lock.json"
    if lock.is_file():
        files.append(lock)
    return files


def _stamp() -> str:
    h = hashlib.sha256()
    for f in _manifest_files():
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def installed_version(directory: str | os.PathLike | None = None) -> str | None:
    pkg = cache_dir(directory) / "node_modules" / "lwm2m-node-lib" / "package.json"
    try:
        return json.loads(pkg.read_text("utf-8")).get("version")
    except (OSError, ValueError):
        return None


def is_installed(directory: str | os.PathLike | None = None) -> bool:
    d = cache_dir(directory)
    try:
        stamp = (d / ".installed").read_text().strip()
    except OSError:
        return False
    return stamp == _stamp() and installed_version(d) == NODELIB_VERSION


def missing_tools(directory: str | os.PathLike | None = None) -> list[str]:
    """Tools needed to run the server that are not on PATH (npm only when an install is needed)."""
    need = ["node"] if is_installed(directory) else ["node", "npm"]
    return [t for t in need if shutil.which(t) is None]


def fetch(directory: str | os.PathLike | None = None, *, timeout: float = 600) -> Path:
    """Install lwm2m-node-lib (``npm ci``, or ``npm install`` without a lock) into the cache folder.

    Skips the install when the cache already holds what ``tools/nodelib/package*.json`` describe.
    Returns the folder (its ``node_modules`` is what ``server.js`` loads).
    """
    d = cache_dir(directory)
    if is_installed(d):
        return d
    require_tool("node")
    npm = require_tool("npm")
    with _locked(d):
        if is_installed(d):
            return d
        with contextlib.suppress(FileNotFoundError):
            (d / ".installed").unlink()
        for name in ("package.json", "package-lock.json"):
            with contextlib.suppress(FileNotFoundError):
                (d / name).unlink()
        for f in _manifest_files():
            shutil.copyfile(f, d / f.name)
        has_lock = (d / "package-lock.json").is_file()
        # --ignore-scripts: nothing in this tree needs an install script (mongodb's native extras
        # are optional and unused by the in-memory registry)
        cmd = [npm, "ci" if has_lock else "install", "--no-audit", "--no-fund", "--ignore-scripts",
               "--loglevel=error"]
        try:
            res = subprocess.run(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise NodeLibError(f"{' '.join(cmd)} timed out after {timeout:.0f}s in {d}") from exc
        if res.returncode != 0:
            tail = "\n".join(res.stdout.decode("utf-8", "replace").strip().splitlines()[-25:])
            raise NodeLibError(f"{' '.join(cmd)} failed (exit {res.returncode}) in {d}\n{tail}")
        version = installed_version(d)
        if version != NODELIB_VERSION:
            raise NodeLibError(f"npm installed lwm2m-node-lib {version!r}, expected {NODELIB_VERSION}")
        (d / ".installed").write_text(_stamp() + "\n")
    return d


# --------------------------------------------------------------------------
# the server process
# --------------------------------------------------------------------------


def _path(o: int | str, i: int | None = None, r: int | None = None) -> tuple[int, int, int]:
    """``(3, 0, 0)`` from ``3, 0, 0``, ``"3/0/0"`` or ``"/3/0/0"``."""
    if isinstance(o, str):
        parts = [p for p in o.strip("/").split("/") if p]
        if len(parts) != 3 or i is not None or r is not None:
            raise ValueError(f"need a resource path /o/i/r, got {o!r}")
        return tuple(int(p) for p in parts)  # type: ignore[return-value]
    if i is None or r is None:
        raise ValueError("need object, instance and resource ids")
    return int(o), int(i), int(r)


class NodeLibServer(PeerProcess):
    """``node server.js`` on a free UDP port of 127.0.0.1; a context manager.

    Events (dicts with ``event`` and a ``seq`` number) are kept in :attr:`events`:
    ``registration``, ``update``, ``unregistration``, ``notification`` ...
    """

    label = "nodelib"
    error_type = NodeLibError
    stdin_pipe = True           # the control channel: one JSON request a line
    stderr_to_log = True        # stdout carries only JSON answers and events
    log_prefix = b"<< "

    def __init__(self, *, cache_dir: str | os.PathLike | None = None, port: int = 0,
                 accept: str | None = None, log_level: str = "FATAL",
                 log_path: str | os.PathLike | None = None, startup_timeout: float = 60.0):
        super().__init__(log_path=log_path)
        self._cache_dir = cache_dir
        self.requested_port = port
        self.accept = accept
        self.log_level = log_level
        self.startup_timeout = startup_timeout
        self.port: int | None = None
        self.address: str | None = None
        self.version: str | None = None
        self.events: list[dict] = []
        self._answers: dict[int, dict] = {}
        self._cond = self._lines_cond       # the reader thread fills events/_answers under it
        self._next_id = 1
        self._write_lock = threading.Lock()
        self._seen_notes: dict[tuple[str, str], int] = {}

    # -- lifecycle --------------------------------------------------------
    def start(self) -> "NodeLibServer":
        if self.proc is not None:
            return self
        node = require_tool("node")
        modules = fetch(self._cache_dir) / "node_modules"
        if not SERVER_JS.is_file():
            raise NodeLibError(f"{SERVER_JS} is missing")
        command = [node, "--no-warnings", str(SERVER_JS), "--port", str(self.requested_port),
                   "--host", HOST, "--log-level", self.log_level]
        if self.accept:
            command += ["--accept", self.accept]
        env = {**os.environ, "NODE_PATH": str(modules)}
        for var in [k for k in env if k.startswith("LWM2M_")]:   # the library reads these as overrides
            del env[var]
        self._spawn(command, env=env)
        try:
            ready = self.wait_event("ready", timeout=self.startup_timeout, since=0)
        except BaseException:
            self.stop(grace=2)
            raise
        self.port = int(ready["port"])
        self.address = ready.get("address")
        self.version = ready.get("version")
        if self.address != HOST:
            self.stop(grace=2)
            raise NodeLibError(f"the server bound to {self.address!r}, not {HOST}")
        return self

    def _on_line(self, line: str) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            return
        if not isinstance(msg, dict):
            return
        if "event" in msg:
            msg["seq"] = len(self.events)
            msg["t"] = time.monotonic()
            self.events.append(msg)
        elif msg.get("id") is not None:
            self._answers[msg["id"]] = msg

    def _ask_to_exit(self, proc: subprocess.Popen, grace: float) -> bool:
        """``{"op":"stop"}``, then end of input; True when the server exited within ``grace``."""
        with contextlib.suppress(OSError, ValueError):
            with self._write_lock:
                proc.stdin.write(b'{"op":"stop"}\n')
                proc.stdin.flush()
        with contextlib.suppress(OSError, ValueError):
            proc.stdin.close()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = 5.0) -> int | None:
        """Ask the server to stop, then SIGTERM/SIGKILL; idempotent. Returns the exit code."""
        return super().stop(grace)

    def __repr__(self) -> str:
        return f"<NodeLibServer {self.coap_uri if self.port else '(not started)'}>"

    @property
    def coap_uri(self) -> str:
        if self.port is None:
            raise NodeLibError("the server is not started")
        return f"coap://{HOST}:{self.port}"

    # -- control channel --------------------------------------------------
    def request(self, op: str, timeout: float = DEFAULT_TIMEOUT, **fields: Any) -> Any:
        """Send one request; return its ``result`` or raise :class:`NodeLibRequestError`."""
        return self.send(op, **fields).result(timeout)

    def send(self, op: str, **fields: Any) -> "PendingRequest":
        """Send one request without waiting; ``.result(timeout)`` of the handle waits for the answer."""
        if not self.running:
            raise NodeLibError(f"the server is not running\n{self.log_tail()}")
        with self._cond:
            rid = self._next_id
            self._next_id += 1
        line = json.dumps({"id": rid, "op": op, **fields}) + "\n"
        with self._write_lock:
            try:
                self.proc.stdin.write(line.encode())
                self.proc.stdin.flush()
            except (OSError, ValueError) as exc:
                raise NodeLibError(f"cannot write to the server: {exc}\n{self.log_tail()}") from exc
        return PendingRequest(self, rid, op, fields)

    def _answer(self, rid: int, op: str, fields: dict, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while rid not in self._answers:
                if self._finished:
                    raise NodeLibError(f"{op}: the server exited\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{op} {fields}: no answer within {timeout}s")
                self._cond.wait(min(left, 0.5))
            return self._answers[rid]

    # -- events -----------------------------------------------------------
    def mark(self) -> int:
        """Sequence number of the next event (pass as ``since`` to ignore what came before)."""
        with self._cond:
            return len(self.events)

    def wait_event(self, name: str | tuple[str, ...], *, timeout: float = DEFAULT_TIMEOUT,
                   predicate: Callable[[dict], bool] | None = None, since: int = 0) -> dict:
        """First event named ``name`` (one of, for a tuple) with ``seq >= since`` matching ``predicate``."""
        names = (name,) if isinstance(name, str) else tuple(name)
        deadline = time.monotonic() + timeout
        with self._cond:
            i = since
            while True:
                while i < len(self.events):
                    e = self.events[i]
                    i += 1
                    if e.get("event") in names and (predicate is None or predicate(e)):
                        return e
                if self.proc is None or self._finished:
                    raise NodeLibError(f"the server exited while waiting for {names}\n{self.log_tail()}")
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e.get("event") for e in self.events[since:]]
                    raise TimeoutError(f"no {names} event within {timeout}s (events since {since}: {seen})")
                self._cond.wait(min(left, 0.5))

    # -- devices ----------------------------------------------------------
    def devices(self) -> list[dict]:
        return self.request("devices")

    def device(self, ep: str) -> dict | None:
        try:
            return self.request("device", ep=ep)
        except NodeLibRequestError as exc:
            if exc.code == "4.04":
                return None
            raise

    def wait_device(self, ep: str, timeout: float = 60.0) -> dict:
        """The registry entry of ``ep`` once it is registered."""
        deadline = time.monotonic() + timeout
        while True:
            mark = self.mark()
            dev = self.device(ep)
            if dev is not None:
                return dev
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{ep} did not register within {timeout}s; devices: {self.devices()}")
            with contextlib.suppress(TimeoutError):
                self.wait_event("registration", timeout=min(left, 1.0), since=mark,
                                predicate=lambda e: e.get("ep") == ep)

    def wait_gone(self, ep: str, timeout: float = 60.0) -> None:
        """Until ``ep`` is no longer registered."""
        deadline = time.monotonic() + timeout
        while True:
            mark = self.mark()
            if self.device(ep) is None:
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{ep} still registered after {timeout}s")
            with contextlib.suppress(TimeoutError):
                self.wait_event("unregistration", timeout=min(left, 1.0), since=mark,
                                predicate=lambda e: e.get("ep") == ep)

    # -- device management ------------------------------------------------
    def read(self, ep: str, o: int | str, i: int | None = None, r: int | None = None, *,
             timeout: float = DEFAULT_TIMEOUT) -> str:
        """Read one resource; the payload as text (the library decodes it as UTF-8)."""
        o, i, r = _path(o, i, r)
        return self.request("read", ep=ep, o=o, i=i, r=r, timeout=timeout)

    def write(self, ep: str, o: int | str, i: Any = None, r: Any = None, value: Any = None, *,
              timeout: float = DEFAULT_TIMEOUT) -> str:
        """Write one resource (``write(ep, "3/0/15", "Europe/Rome")`` or ``write(ep, 3, 0, 15, "..")``).

        The value goes out as text with content-format 1541.
        """
        if isinstance(o, str):
            value, i = i, None
        if value is None:
            raise ValueError("write needs a value")
        o, i, r = _path(o, i, r)
        return self.request("write", ep=ep, o=o, i=i, r=r, value=str(value), timeout=timeout)

    def execute(self, ep: str, o: int | str, i: Any = None, r: Any = None, value: str = "", *,
                timeout: float = DEFAULT_TIMEOUT) -> str:
        """Execute one resource (optional text argument)."""
        if isinstance(o, str):
            value, i = (i if i is not None else value), None
        o, i, r = _path(o, i, r)
        return self.request("execute", ep=ep, o=o, i=i, r=r, value=value, timeout=timeout)

    def discover(self, ep: str, o: int, i: int | None = None, r: int | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT) -> str:
        return self.request("discover", ep=ep, o=o, i=i, r=r, timeout=timeout)

    def write_attributes(self, ep: str, o: int | str, i: int | None = None, r: int | None = None, *,
                         timeout: float = DEFAULT_TIMEOUT, **attributes: Any) -> str:
        o, i, r = _path(o, i, r)
        return self.request("writeAttributes", ep=ep, o=o, i=i, r=r, attributes=attributes, timeout=timeout)

    def observe(self, ep: str, o: int | str, i: int | None = None, r: int | None = None, *,
                wait: bool = True, timeout: float = DEFAULT_TIMEOUT) -> "str | PendingRequest":
        """Start observing one resource (later values are ``notification`` events).

        ``wait=True``: returns the first value the library hands back. ``wait=False``: returns a
        :class:`PendingRequest` as soon as the server lists the observation (the device answered
        the Observe request), whether or not the library has delivered a first value yet; the
        first value is then also the first ``notification`` event (``"initial": True``).
        """
        o, i, r = _path(o, i, r)
        path = f"/{o}/{i}/{r}"
        self._seen_notes[(ep, path)] = self.mark()
        pending = self.send("observe", ep=ep, o=o, i=i, r=r)
        if wait:
            return pending.result(timeout)
        self.wait_observing(ep, path, timeout=timeout, pending=pending)
        return pending

    def wait_observing(self, ep: str, o: int | str, i: int | None = None, r: int | None = None, *,
                       timeout: float = DEFAULT_TIMEOUT, pending: "PendingRequest | None" = None) -> None:
        """Until the server lists an observation of the resource on ``ep``."""
        o, i, r = _path(o, i, r)
        path = f"/{o}/{i}/{r}"
        deadline = time.monotonic() + timeout
        while True:
            dev = self.device(ep)
            if dev is not None and any(s.get("resource") == path and s.get("deviceId") == dev["id"]
                                       for s in self.observers()):
                return
            if pending is not None and pending.done():
                pending.result(0)           # raises the server's error, if that is what came back
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server does not list an observation of {path} on {ep} "
                                   f"after {timeout}s")
            with self._cond:
                self._cond.wait(0.05)

    def cancel_observe(self, ep: str, o: int | str, i: int | None = None, r: int | None = None, *,
                       timeout: float = DEFAULT_TIMEOUT) -> None:
        o, i, r = _path(o, i, r)
        self.request("cancel", ep=ep, o=o, i=i, r=r, timeout=timeout)

    def observers(self) -> list[dict]:
        return self.request("observers")

    def notifications(self, ep: str | None = None, path: str | None = None) -> list[dict]:
        norm = "/" + path.strip("/") if path else None
        with self._cond:
            return [e for e in self.events if e.get("event") == "notification"
                    and (ep is None or e.get("ep") == ep) and (norm is None or e.get("path") == norm)]

    def wait_notification(self, ep: str, o: int | str, i: int | None = None, r: int | None = None, *,
                          value: str | Callable[[str], bool] | None = None, timeout: float = DEFAULT_TIMEOUT,
                          since: int | None = None) -> dict:
        """The next notification of ``ep`` on the resource not returned before (optionally with ``value``).

        ``since`` overrides where to look from (an event sequence number, see :meth:`mark`).
        """
        o, i, r = _path(o, i, r)
        path = f"/{o}/{i}/{r}"
        key = (ep, path)
        start = self._seen_notes.get(key, 0) if since is None else since

        def match(e: dict) -> bool:
            if e.get("ep") != ep or e.get("path") != path:
                return False
            if value is None:
                return True
            return value(e.get("value")) if callable(value) else e.get("value") == value
        e = self.wait_event("notification", timeout=timeout, predicate=match, since=start)
        self._seen_notes[key] = e["seq"] + 1
        return e


class PendingRequest:
    """A request sent to the node server whose answer has not been collected yet."""

    def __init__(self, server: NodeLibServer, rid: int, op: str, fields: dict):
        self.server = server
        self.rid = rid
        self.op = op
        self.fields = fields

    def done(self) -> bool:
        with self.server._cond:
            return self.rid in self.server._answers

    def result(self, timeout: float = DEFAULT_TIMEOUT) -> Any:
        """The answer's ``result`` (waits up to ``timeout``), or :class:`NodeLibRequestError`."""
        ans = self.server._answer(self.rid, self.op, self.fields, timeout)
        if not ans.get("ok"):
            raise NodeLibRequestError(self.op, ans.get("error") or {})
        return ans.get("result")
