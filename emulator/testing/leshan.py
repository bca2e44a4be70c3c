"""Eclipse Leshan as an external peer for tests, benchmarks and manual checks.

Everything here runs Java programs on 127.0.0.1 only, and uses nothing but the
Python standard library.

Which Leshan
------------
The Maven registry reachable from this project's machines serves only one
Leshan demo: ``org.eclipse.leshan:leshan-server-demo:2.0.0-M4`` (classifier
``jar-with-dependencies``; the 2.0 milestones renamed it ``leshan-demo-server``,
and no version of ``leshan-demo-server``, ``leshan-demo-bsserver``,
``leshan-demo-client``, ``leshan-client-demo`` or ``leshan-bsserver-demo`` is
served there). :data:`LESHAN_VERSION` is therefore ``2.0.0-M4`` for all three
kinds:

* ``server``: the real Leshan demo server (web UI + REST API under ``/api``).
* ``bsserver``: a small bootstrap server (``TelitEmuLeshanBsServer``, source
  in emulator/testing/java/) built at fetch time with ``javac`` on Leshan 2.0.0-M4's own
  bootstrap-server library (``LeshanBootstrapServerBuilder``, which the demo
  server jar embeds), plus a tiny JSON REST API (see
  :class:`LeshanBootstrapServer`).
* ``client``: a small LwM2M client (``TelitEmuLeshanClient``) built the same way
  on ``leshan-client-core``/``leshan-client-cf`` 2.0.0-M4 (Security, Server,
  Device objects), used as a baseline peer.

Jars are cached outside the repository: ``$TELIT_EMU_LESHAN_CACHE``, else
``$XDG_CACHE_HOME/telit-emu/leshan``, else ``~/.cache/telit-emu/leshan``.

REST API of the 2.0.0-M4 demo server (what its web UI sends)
------------------------------------------------------------
* ``GET  /api/clients`` -> list of registrations.
* ``GET  /api/clients/EP/PATH?format=TEXT&timeout=5`` -> read.
* ``PUT  /api/clients/EP/O/I/R?format=TLV&timeout=5`` body
  ``{"id": R, "value": V}`` (multi-instance: ``{"id": R, "values": {"0": V}}``);
  the JSON type of V picks the first guess (bool, string, integral number ->
  integer, other number -> float) and the server then converts it to the
  model's type: opaque from a hex string, time from epoch seconds or an ISO 8601
  string, float <-> integer.
* ``PUT  /api/clients/EP/O/I?replace=true`` body
  ``{"id": I, "resources": [{"id": R, "value": V}, ...]}``.
* ``POST /api/clients/EP/O`` body ``{"id": I?, "resources": [...]}`` -> create.
* ``POST /api/clients/EP/O/I/R`` (body: execute arguments as text) -> execute.
* ``POST|DELETE /api/clients/EP/PATH/observe``; ``GET .../discover``;
  ``PUT .../attributes?pmin=..&pmax=..``; ``DELETE /api/clients/EP/O/I``.
* ``PUT  /api/security/clients/`` body
  ``{"endpoint": EP, "psk": {"identity": ID, "key": HEX}}``;
  ``DELETE /api/security/clients/EP``; ``GET /api/security/clients``.
* ``GET  /api/event?ep=EP`` with ``Accept: text/event-stream``: server-sent
  events REGISTRATION, UPDATED, DEREGISTRATION, SLEEPING, AWAKE, NOTIFICATION
  (``{"ep", "res", "val"}``) and COAPLOG.

Responses of device requests are JSON objects with ``status`` (e.g.
``"CONTENT(205)"``), ``valid``, ``success``, ``failure``, ``content`` and
``errormessage``; the helpers add ``http_status``.

The 2.0.0-M4 jar predates Java 17: it needs ``--add-opens`` (see
:data:`JAVA_OPTS`) or its JSON serialisation fails with HTTP 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

from .peer import PeerProcess, cache_folder, locked as _locked

__all__ = [
    "LESHAN_VERSION",
    "LESHAN_GROUP",
    "JAVA_OPTS",
    "LeshanError",
    "LeshanToolingMissing",
    "cache_dir",
    "fetch_jar",
    "free_port",
    "free_ports",
    "port_is_free",
    "require_tool",
    "make_bootstrap_config",
    "EventStream",
    "LeshanServer",
    "LeshanBootstrapServer",
    "LeshanDemoClient",
]

LESHAN_GROUP = "org.eclipse.leshan"
LESHAN_VERSION = "2.0.0-M4"
#: (artifactId, classifier) of the demo server jar on Maven Central.
SERVER_ARTIFACT = ("leshan-server-demo", "jar-with-dependencies")
#: Leshan client libraries (same version) that the baseline client is built on.
CLIENT_LIBRARIES = ("leshan-client-core", "leshan-client-cf")
#: Pinned so that ``dependency:copy`` behaves the same on every machine.
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

#: Java options for every Leshan process (Gson 2.8 reflection on Java 17).
JAVA_OPTS = (
    "-Xss512k",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens=java.base/java.net=ALL-UNNAMED",
    "--add-opens=java.base/java.text=ALL-UNNAMED",
    "--add-opens=java.base/java.time=ALL-UNNAMED",
)

HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT = 90.0
DEFAULT_STOP_GRACE = 10.0


class LeshanError(RuntimeError):
    """A Leshan process or request did not do what was asked."""


class LeshanToolingMissing(LeshanError):
    """java, javac or mvn is not installed."""


# --------------------------------------------------------------------------
# cache, tools, download and build
# --------------------------------------------------------------------------


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Folder holding the Leshan jars (outside the repository)."""
    return cache_folder("leshan", "TELIT_EMU_LESHAN_CACHE", override)


_resolve_cache_dir = cache_dir


def require_tool(name: str) -> str:
    """Path of executable ``name`` or :class:`LeshanToolingMissing`."""
    path = shutil.which(name)
    if path is None:
        hint = {
            "java": "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jdk-headless)",
            "javac": "install a Java 17+ JDK (Debian: apt-get install openjdk-17-jdk-headless)",
            "mvn": "install Maven (Debian: apt-get install maven)",
        }.get(name, "install it")
        raise LeshanToolingMissing(f"'{name}' not found on PATH: {hint}")
    return path


def _run(cmd: list[str], cwd: Path, what: str, timeout: float = 900) -> None:
    try:
        res = subprocess.run(
            cmd, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise LeshanError(f"{what} timed out after {timeout:.0f}s: {' '.join(cmd)}") from exc
    if res.returncode != 0:
        out = res.stdout.decode("utf-8", "replace").strip().splitlines()
        tail = "\n".join(out[-25:])
        raise LeshanError(f"{what} failed (exit {res.returncode}): {' '.join(cmd)}\n{tail}")


def _maven_copy(artifact_id: str, classifier: str | None, dest: Path) -> Path:
    """``mvn dependency:copy`` one artifact into ``dest`` (atomic), return its path."""
    name = f"{artifact_id}-{LESHAN_VERSION}" + (f"-{classifier}" if classifier else "") + ".jar"
    target = dest / name
    if target.is_file() and target.stat().st_size > 0:
        return target
    mvn = require_tool("mvn")
    coords = f"{LESHAN_GROUP}:{artifact_id}:{LESHAN_VERSION}:jar" + (f":{classifier}" if classifier else "")
    with tempfile.TemporaryDirectory(prefix=".mvn-", dir=dest) as tmp:
        tmpdir = Path(tmp)
        cmd = [mvn, "-B", "-q", f"{MAVEN_DEPENDENCY_PLUGIN}:copy", f"-Dartifact={coords}",
               f"-DoutputDirectory={tmpdir / 'out'}"]
        _run(cmd, tmpdir, f"fetching {coords} with Maven")
        got = tmpdir / "out" / name
        if not got.is_file():
            raise LeshanError(f"Maven reported success but {got} is missing")
        os.replace(got, target)
    return target


# The two small programs built on the Leshan libraries: Java sources shipped as package data
# (emulator/testing/java/*.java), compiled with javac into the cache at fetch time.


def _java_source(main: str) -> str:
    from ..resources import testing_file
    return testing_file("java", f"{main}.java").read_text(encoding="utf-8")


_BUILT = {
    # kind: (main class = name of its .java file, extra Leshan libraries on the class path)
    "bsserver": ("TelitEmuLeshanBsServer", ()),
    "client": ("TelitEmuLeshanClient", CLIENT_LIBRARIES),
    "fleet": ("TelitEmuLeshanFleet", CLIENT_LIBRARIES),      # N clients in one JVM (tools/bench_fleet.py)
}


def _build_jar(kind: str, dest: Path) -> Path:
    main, libs = _BUILT[kind]
    source = _java_source(main)
    digest = hashlib.sha256((LESHAN_VERSION + main + source).encode()).hexdigest()[:10]
    target = dest / f"telit-emu-leshan-{kind}-{LESHAN_VERSION}-{digest}.jar"
    if target.is_file() and target.stat().st_size > 0:
        return target
    server_jar = _maven_copy(*SERVER_ARTIFACT, dest)
    lib_jars = [_maven_copy(lib, None, dest) for lib in libs]
    class_path = [server_jar, *lib_jars]
    javac = require_tool("javac")
    jar_tool = require_tool("jar")
    with tempfile.TemporaryDirectory(prefix=".build-", dir=dest) as tmp:
        tmpdir = Path(tmp)
        (tmpdir / "src").mkdir()
        (tmpdir / "classes").mkdir()
        src = tmpdir / "src" / f"{main}.java"
        src.write_text(source, encoding="utf-8")
        _run([javac, "-nowarn", "-encoding", "UTF-8", "--release", "11",
              "-cp", os.pathsep.join(str(p) for p in class_path),
              "-d", str(tmpdir / "classes"), str(src)], tmpdir, f"compiling {main}")
        manifest = tmpdir / "MANIFEST.MF"
        # Class-Path entries are relative to the jar's own folder (the cache).
        manifest.write_text(
            f"Main-Class: {main}\n"
            f"Class-Path: {' '.join(p.name for p in class_path)}\n"
            "Add-Opens: java.base/java.util java.base/java.lang java.base/java.net\n"
            f"Implementation-Title: telit-emu {kind} on Leshan {LESHAN_VERSION}\n",
            encoding="utf-8",
        )
        out = tmpdir / target.name
        _run([jar_tool, "cfm", str(out), str(manifest), "-C", str(tmpdir / "classes"), "."],
             tmpdir, f"packaging {main}")
        os.replace(out, target)
    return target


def fetch_jar(kind: str = "server", cache_dir: str | os.PathLike | None = None) -> Path:
    """Path of the runnable jar for ``kind`` ("server", "bsserver", "client" or "fleet").

    Downloads with ``mvn`` (and builds with ``javac`` for bsserver/client) into
    the cache on first use; later calls return the cached jar without running
    Maven. Raises :class:`LeshanToolingMissing` if a needed tool is absent and
    :class:`LeshanError` if the download or build fails.
    """
    if kind not in ("server", "bsserver", "client", "fleet"):
        raise ValueError(f"kind must be 'server', 'bsserver', 'client' or 'fleet', not {kind!r}")
    dest = _resolve_cache_dir(cache_dir)
    with _locked(dest):
        if kind == "server":
            return _maven_copy(*SERVER_ARTIFACT, dest)
        return _build_jar(kind, dest)


# --------------------------------------------------------------------------
# ports
# --------------------------------------------------------------------------

_handed_out: set[tuple[str, int]] = set()
_port_lock = threading.Lock()


def free_port(kind: str = "udp", host: str = HOST) -> int:
    """A port that is free on ``host`` for ``kind`` ("udp" or "tcp").

    Ports already returned by this process are not returned again (until the
    set wraps), so several calls in a row give distinct ports.
    """
    if kind not in ("udp", "tcp"):
        raise ValueError("kind must be 'udp' or 'tcp'")
    stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with _port_lock:
        for _ in range(200):
            with socket.socket(socket.AF_INET, stype) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if (kind, port) not in _handed_out:
                _handed_out.add((kind, port))
                return port
        _handed_out.clear()
        with socket.socket(socket.AF_INET, stype) as s:
            s.bind((host, 0))
            return s.getsockname()[1]


def free_ports(kind: str = "udp", count: int = 2, host: str = HOST) -> list[int]:
    """``count`` distinct free ports."""
    return [free_port(kind, host) for _ in range(count)]


def port_is_free(port: int, kind: str = "udp", host: str = HOST) -> bool:
    """True if ``port`` can be bound on ``host`` right now."""
    stype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, stype) as s:
        if kind == "tcp":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------
# HTTP (direct, never through a proxy)
# --------------------------------------------------------------------------

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http(method: str, url: str, body: Any = None, *, timeout: float = 30.0,
          content_type: str | None = None) -> tuple[int, str]:
    data = None
    headers = {"Accept": "application/json"}
    if body is not None:
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type or "application/json"
        else:
            data = body.encode() if isinstance(body, str) else bytes(body)
            headers["Content-Type"] = content_type or "text/plain"
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")


def _as_result(code: int, text: str) -> dict:
    try:
        obj = json.loads(text) if text.strip() else None
    except ValueError:
        obj = None
    if isinstance(obj, dict):
        obj.setdefault("success", 200 <= code < 300)
        obj["http_status"] = code
        return obj
    return {
        "status": f"HTTP {code}", "valid": False, "success": 200 <= code < 300 and not text.strip(),
        "failure": not (200 <= code < 300), "content": obj, "error": text.strip(), "http_status": code,
    }


def _norm_path(path: str | Iterable[int]) -> str:
    if not isinstance(path, str):
        path = "/".join(str(p) for p in path)
    path = "/" + path.strip().strip("/")
    if not re.fullmatch(r"/(\d+(/\d+){0,3})?", path):
        raise ValueError(f"not an LwM2M path: {path!r}")
    return path.rstrip("/") if path != "/" else ""


def _lwm2m_value(value: Any, type: str | None) -> Any:  # noqa: A002 - mirrors LwM2M naming
    """Python value -> the JSON value the demo server converts to the model type."""
    t = (type or "").lower()
    if t in ("opaque", "bytes"):
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value).hex()
        if isinstance(value, str):
            bytes.fromhex(value)  # validate
            return value
        raise TypeError("opaque value must be bytes or a hex string")
    if t in ("integer", "int", "unsigned", "unsigned_integer"):
        return int(value)
    if t == "float":
        return float(value)
    if t in ("boolean", "bool"):
        if isinstance(value, str):
            return value.strip().lower() in ("1", "true", "yes", "on")
        return bool(value)
    if t == "string":
        return str(value)
    if t == "time":
        # the 2.0.0-M4 demo reads a JSON number for a time resource as milliseconds since the epoch
        if hasattr(value, "timestamp"):
            return int(value.timestamp()) * 1000
        return value if isinstance(value, str) else int(value) * 1000
    if t in ("objlnk", "objectlink"):
        if isinstance(value, (tuple, list)):
            return f"{int(value[0])}:{int(value[1])}"
        return str(value)
    if t:
        raise ValueError(f"unknown LwM2M type {type!r}")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "timestamp"):
        return int(value.timestamp())
    raise TypeError(f"cannot send {value!r} as an LwM2M value")


# --------------------------------------------------------------------------
# server-sent events
# --------------------------------------------------------------------------


class EventStream:
    """Reads ``text/event-stream`` in a background thread and keeps the events.

    Each event is a dict ``{"event": NAME, "data": parsed JSON (or text),
    "received": time.monotonic()}``. :meth:`wait_event` returns the oldest
    not-yet-returned event that matches, so successive waits for the same name
    see successive events.
    """

    def __init__(self, host: str, port: int, path: str, connect_timeout: float = 10.0):
        self.url = f"http://{host}:{port}{path}"
        self.events: list[dict] = []
        self._taken: set[int] = set()
        self._cond = threading.Condition()
        self._closed = False
        self.error: BaseException | None = None
        sock = socket.create_connection((host, port), timeout=connect_timeout)
        try:
            # HTTP/1.0: the body is streamed as is (no chunked encoding) until close.
            sock.sendall((f"GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\n"
                          "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n").encode())
            buf = b""
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(4096)
                if not chunk:
                    raise LeshanError(f"event stream {self.url} closed before its headers")
                buf += chunk
            head, rest = buf.split(b"\r\n\r\n", 1)
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            if " 200 " not in status_line + " ":
                raise LeshanError(f"event stream {self.url}: {status_line}")
        except BaseException:
            sock.close()
            raise
        sock.settimeout(0.5)
        self._sock = sock
        self._thread = threading.Thread(target=self._run, args=(rest,), name="leshan-sse", daemon=True)
        self._thread.start()

    def _dispatch(self, name: str | None, data_lines: list[str]) -> None:
        if name is None and not data_lines:
            return
        text = "\n".join(data_lines)
        try:
            data: Any = json.loads(text) if text else None
        except ValueError:
            data = text
        with self._cond:
            self.events.append({"event": name or "message", "data": data, "received": time.monotonic()})
            self._cond.notify_all()

    def _run(self, pending: bytes) -> None:
        name: str | None = None
        data_lines: list[str] = []
        try:
            while not self._closed:
                while b"\n" in pending:
                    raw, pending = pending.split(b"\n", 1)
                    line = raw.rstrip(b"\r").decode("utf-8", "replace")
                    if not line:
                        self._dispatch(name, data_lines)
                        name, data_lines = None, []
                    elif line.startswith(":"):
                        continue
                    else:
                        field, _, val = line.partition(":")
                        val = val[1:] if val.startswith(" ") else val
                        if field == "event":
                            name = val
                        elif field == "data":
                            data_lines.append(val)
                try:
                    chunk = self._sock.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not chunk:
                    break
                pending += chunk
        except BaseException as exc:  # pragma: no cover - reported to waiters
            self.error = exc
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def names(self) -> list[str]:
        with self._cond:
            return [e["event"] for e in self.events]

    def wait_event(self, name: str | Iterable[str], timeout: float = 10.0,
                   predicate: Callable[[Any], bool] | None = None) -> dict:
        """Oldest unreturned event named ``name`` (or any of several names)
        whose ``data`` satisfies ``predicate``; raises :class:`TimeoutError`."""
        wanted = {name} if isinstance(name, str) else set(name)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for i, ev in enumerate(self.events):
                    if i in self._taken or ev["event"] not in wanted:
                        continue
                    if predicate is not None and not predicate(ev["data"]):
                        continue
                    self._taken.add(i)
                    return ev
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    seen = [e["event"] for e in self.events if e["event"] != "COAPLOG"]
                    state = "closed" if self._closed else "open"
                    raise TimeoutError(f"no {sorted(wanted)} event within {timeout}s on {self.url} "
                                       f"(stream {state}; other events: {seen[-20:]})")
                self._cond.wait(min(left, 0.5))

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# --------------------------------------------------------------------------
# Java processes
# --------------------------------------------------------------------------


class _JavaProcess(PeerProcess):
    """A ``java -jar`` child whose output goes to a log file."""

    kind = "server"
    label = "leshan"
    error_type = LeshanError

    def __init__(self, *, jar: str | os.PathLike | None = None, cache_dir: str | os.PathLike | None = None,
                 log_path: str | os.PathLike | None = None, java_opts: Iterable[str] = ()):
        self._jar = Path(jar) if jar else None
        self._cache_dir = cache_dir
        self._java_opts = list(java_opts)
        # work_dir is the Java process's current directory: Californium writes
        # Californium.properties and the demo server data/security.data there.
        super().__init__(log_path=log_path)

    # -- lifecycle --------------------------------------------------------
    @property
    def jar(self) -> Path:
        if self._jar is None:
            self._jar = fetch_jar(self.kind, self._cache_dir)
        return self._jar.resolve()

    def _args(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _spawn(self) -> None:  # type: ignore[override]
        java = require_tool("java")
        super()._spawn([java, *JAVA_OPTS, *self._java_opts, "-jar", str(self.jar), *self._args()])

    def stop(self, grace: float = DEFAULT_STOP_GRACE) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; idempotent. Returns the exit code."""
        return super().stop(grace)


class _WebProcess(_JavaProcess):
    """A Leshan process with CoAP, CoAPs and HTTP ports on 127.0.0.1."""

    ready_path = "/clients"

    def __init__(self, *, coap_port: int | None = None, coaps_port: int | None = None,
                 web_port: int | None = None, start_timeout: float = DEFAULT_START_TIMEOUT, **kw):
        super().__init__(**kw)
        self._fixed = (coap_port, coaps_port, web_port)
        self.coap_port = coap_port
        self.coaps_port = coaps_port
        self.web_port = web_port
        self.start_timeout = start_timeout

    @property
    def coap_uri(self) -> str:
        return f"coap://{HOST}:{self.coap_port}"

    @property
    def coaps_uri(self) -> str:
        return f"coaps://{HOST}:{self.coaps_port}"

    @property
    def web_url(self) -> str:
        return f"http://{HOST}:{self.web_port}/"

    @property
    def api_url(self) -> str:
        return f"http://{HOST}:{self.web_port}/api"

    def _pick_ports(self) -> None:
        coap, coaps, web = self._fixed
        self.coap_port = coap or free_port("udp")
        self.coaps_port = coaps or free_port("udp")
        self.web_port = web or free_port("tcp")

    def start(self):
        """Start on 127.0.0.1 and wait until the REST API answers."""
        if self.running:
            return self
        self.jar  # fetch before the clock starts  # noqa: B018
        attempts = 1 if all(self._fixed) else 3
        for attempt in range(1, attempts + 1):
            self._pick_ports()
            taken = self._taken_ports()
            if taken:
                if attempt < attempts:
                    continue
                raise LeshanError(f"{self.label} did not start: port(s) {', '.join(taken)} on {HOST} "
                                  "already in use")
            self._spawn()
            try:
                self._wait_ready()
                return self
            except LeshanError as exc:
                text = self.log_tail(200)
                self.stop(grace=3)
                bind_clash = "BindException" in text or "Address already in use" in text
                if attempt < attempts and bind_clash:
                    continue
                raise LeshanError(f"{self.label} did not start: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _taken_ports(self) -> list[str]:
        """The ports this server is to bind that another socket holds now. (The REST check alone
        cannot tell: another server on the web port answers it while this one dies.)"""
        wanted = [(self.coap_port, "udp"), (self.coaps_port, "udp"), (self.web_port, "tcp")]
        return [f"{port}/{kind}" for port, kind in wanted if port and not port_is_free(port, kind)]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        last = "no answer yet"
        while True:
            if not self.running:
                raise LeshanError(f"process exited with code {self.proc.returncode}\n{self.log_tail()}")
            clash = next((ln for ln in self.output_lines()
                          if "BindException" in ln or "Address already in use" in ln), None)
            if clash is not None:
                raise LeshanError(f"a port is taken ({clash.strip()})\n{self.log_tail()}")
            try:
                code, text = _http("GET", self.api_url + self.ready_path, timeout=5)
                if code == 200:
                    json.loads(text)
                    return
                last = f"HTTP {code}: {text[:200]}"
            except (OSError, ValueError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise LeshanError(f"REST API {self.api_url}{self.ready_path} not ready after "
                                  f"{self.start_timeout:.0f}s ({last})\n{self.log_tail()}")
            time.sleep(0.2)

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{type(self).__name__} {state} coap={self.coap_port} coaps={self.coaps_port} web={self.web_port}>"


class LeshanServer(_WebProcess):
    """The Leshan demo server (LwM2M server + web UI + REST API) on 127.0.0.1.

    ``with LeshanServer() as srv: ...`` picks free CoAP/CoAPs/web ports (or
    uses the given ones), passes ``-m models_dir`` when given, and waits until
    ``GET /api/clients`` answers. Version 2.0.0-M4 opens no other endpoint
    (no java-coap, no mDNS unless ``-mdns``, no Redis unless ``-r``).
    """

    kind = "server"
    label = "leshan-server"

    def __init__(self, models_dir: str | os.PathLike | None = None, *, coap_port: int | None = None,
                 coaps_port: int | None = None, web_port: int | None = None,
                 start_timeout: float = DEFAULT_START_TIMEOUT, extra_args: Iterable[str] = (), **kw):
        super().__init__(coap_port=coap_port, coaps_port=coaps_port, web_port=web_port,
                         start_timeout=start_timeout, **kw)
        self.models_dir = Path(models_dir).resolve() if models_dir else None
        self.extra_args = list(extra_args)
        self._streams: list[EventStream] = []

    def _args(self) -> list[str]:
        args = ["-lh", HOST, "-lp", str(self.coap_port), "-slh", HOST, "-slp", str(self.coaps_port),
                "-wh", HOST, "-wp", str(self.web_port)]
        if self.models_dir is not None:
            args += ["-m", str(self.models_dir)]
        return args + self.extra_args

    def stop(self, grace: float = DEFAULT_STOP_GRACE) -> int | None:
        for s in self._streams:
            s.close()
        self._streams.clear()
        return super().stop(grace)

    # -- REST helpers -------------------------------------------------------
    def _client_url(self, ep: str, path: str = "", suffix: str = "", **query: Any) -> str:
        url = f"{self.api_url}/clients/{urllib.parse.quote(ep, safe='')}{_norm_path(path) if path else ''}{suffix}"
        q = {k: v for k, v in query.items() if v is not None}
        return url + ("?" + urllib.parse.urlencode(q) if q else "")

    def _request(self, method: str, url: str, body: Any = None, coap_timeout: float = 5) -> dict:
        code, text = _http(method, url, body, timeout=coap_timeout + 15)
        return _as_result(code, text)

    def clients(self) -> list[dict]:
        """All current registrations (``GET /api/clients``)."""
        code, text = _http("GET", f"{self.api_url}/clients", timeout=15)
        if code != 200:
            raise LeshanError(f"GET /api/clients -> HTTP {code}: {text[:300]}")
        return json.loads(text)

    def client(self, ep: str) -> dict | None:
        """Registration of endpoint ``ep`` or None."""
        for reg in self.clients():
            if reg.get("endpoint") == ep:
                return reg
        return None

    def wait_client(self, ep: str, timeout: float = 30.0,
                    predicate: Callable[[dict], bool] | None = None) -> dict:
        """Poll until ``ep`` is registered (and ``predicate(registration)`` holds)."""
        deadline = time.monotonic() + timeout
        while True:
            reg = self.client(ep)
            if reg is not None and (predicate is None or predicate(reg)):
                return reg
            if not self.running:
                raise LeshanError(f"Leshan server exited while waiting for {ep}\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ep!r} not registered{' as expected' if reg else ''} within {timeout}s "
                                   f"(registered: {[c.get('endpoint') for c in self.clients()]}; last: {reg})")
            time.sleep(0.1)

    def wait_gone(self, ep: str, timeout: float = 30.0) -> None:
        """Poll until ``ep`` is no longer registered."""
        deadline = time.monotonic() + timeout
        while self.client(ep) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{ep!r} still registered after {timeout}s")
            time.sleep(0.1)

    def read(self, ep: str, path: str, format: str | None = "TEXT", timeout: float = 5) -> dict:  # noqa: A002
        """Read; e.g. ``read(ep, "/3/0/0")["content"]["value"]``."""
        return self._request("GET", self._client_url(ep, path, format=format, timeout=timeout), coap_timeout=timeout)

    def read_value(self, ep: str, path: str, format: str | None = "TEXT", timeout: float = 5) -> Any:  # noqa: A002
        """Value of a single resource, or :class:`LeshanError` if the read failed."""
        res = self.read(ep, path, format=format, timeout=timeout)
        if not res.get("success"):
            raise LeshanError(f"read {ep}{_norm_path(path)} failed: {res}")
        content = res.get("content") or {}
        return content.get("value", content.get("values"))

    def write(self, ep: str, path: str, value: Any, type: str | None = None, *,  # noqa: A002
              format: str | None = "TLV", timeout: float = 5, replace: bool = True) -> dict:  # noqa: A002
        """Write a resource (``/O/I/R``) or an object instance (``/O/I``).

        ``type`` is one of string, integer, float, boolean, opaque (bytes or a
        hex string), time (epoch seconds, datetime or ISO string), objlnk
        ("O:I" or a pair); without it the Python type decides. For a
        multi-instance resource give a dict ``{instance_id: value}``; for an
        object instance a dict ``{resource_id: value}`` (``type`` applies to
        every value) and ``replace`` picks replace vs. partial update.
        """
        p = _norm_path(path)
        parts = [int(x) for x in p.strip("/").split("/")] if p else []
        if len(parts) == 2:
            if not isinstance(value, dict):
                raise TypeError("writing an object instance needs a dict {resource_id: value}")
            body = {"id": parts[1], "resources": [self._resource_json(int(k), v, type) for k, v in value.items()]}
            url = self._client_url(ep, p, format=format, timeout=timeout, replace=str(bool(replace)).lower())
        elif len(parts) in (3, 4):
            body = self._resource_json(parts[-1], value, type)
            url = self._client_url(ep, p, format=format, timeout=timeout)
        else:
            raise ValueError(f"write needs /O/I or /O/I/R, not {path!r}")
        return self._request("PUT", url, body, coap_timeout=timeout)

    @staticmethod
    def _resource_json(rid: int, value: Any, type: str | None) -> dict:  # noqa: A002
        if isinstance(value, dict):
            return {"id": rid, "values": {str(int(k)): _lwm2m_value(v, type) for k, v in value.items()}}
        return {"id": rid, "value": _lwm2m_value(value, type)}

    def execute(self, ep: str, path: str, params: str | None = None, timeout: float = 5) -> dict:
        """Execute ``/O/I/R`` with optional argument text (e.g. ``"0='a'"``)."""
        return self._request("POST", self._client_url(ep, path, timeout=timeout), params, coap_timeout=timeout)

    def observe(self, ep: str, path: str, format: str | None = "TLV", timeout: float = 5) -> dict:  # noqa: A002
        """Start observing; notifications arrive as NOTIFICATION events (see :meth:`events`)."""
        return self._request("POST", self._client_url(ep, path, "/observe", format=format, timeout=timeout),
                             coap_timeout=timeout)

    def cancel_observe(self, ep: str, path: str) -> dict:
        """Passive cancel of the observation of ``path`` (the server forgets it)."""
        return self._request("DELETE", self._client_url(ep, path, "/observe"))

    def discover(self, ep: str, path: str, timeout: float = 5) -> dict:
        """Discover; links are in ``result["objectLinks"]``."""
        return self._request("GET", self._client_url(ep, path, "/discover", timeout=timeout), coap_timeout=timeout)

    def write_attributes(self, ep: str, path: str, **attributes: Any) -> dict:
        """Write-Attributes, e.g. ``write_attributes(ep, "/3/0/9", pmin=5, pmax=60)``."""
        return self._request("PUT", self._client_url(ep, path, "/attributes", **attributes))

    def create(self, ep: str, path: str, resources: dict, instance_id: int | None = None,
               type: str | None = None, format: str | None = "TLV", timeout: float = 5) -> dict:  # noqa: A002
        """Create an instance of object ``path`` (``/O``) with ``{resource_id: value}``."""
        p = _norm_path(path)
        if p.count("/") != 1:
            raise ValueError("create takes an object path /O")
        body: dict = {"resources": [self._resource_json(int(k), v, type) for k, v in resources.items()]}
        if instance_id is not None:
            body["id"] = int(instance_id)
        return self._request("POST", self._client_url(ep, p, format=format, timeout=timeout), body,
                             coap_timeout=timeout)

    def delete(self, ep: str, path: str, timeout: float = 5) -> dict:
        """Delete an object instance ``/O/I``."""
        return self._request("DELETE", self._client_url(ep, path, timeout=timeout), coap_timeout=timeout)

    # -- security (DTLS PSK) -------------------------------------------------
    def security_infos(self) -> list[dict]:
        code, text = _http("GET", f"{self.api_url}/security/clients", timeout=15)
        if code != 200:
            raise LeshanError(f"GET /api/security/clients -> HTTP {code}: {text[:300]}")
        return json.loads(text)

    def add_psk(self, ep: str, identity: str, key_hex: str) -> None:
        """Let ``ep`` connect with DTLS PSK ``identity``/``key_hex`` on :attr:`coaps_uri`."""
        bytes.fromhex(key_hex)
        body = {"endpoint": ep, "psk": {"identity": identity, "key": key_hex}}
        code, text = _http("PUT", f"{self.api_url}/security/clients/", body, timeout=15)
        if code != 200:
            raise LeshanError(f"adding PSK for {ep} -> HTTP {code}: {text[:300]}")

    def remove_psk(self, ep: str) -> None:
        code, text = _http("DELETE", f"{self.api_url}/security/clients/{urllib.parse.quote(ep, safe='')}",
                           timeout=15)
        if code not in (200, 404):
            raise LeshanError(f"removing PSK of {ep} -> HTTP {code}: {text[:300]}")

    # -- events --------------------------------------------------------------
    def events(self, ep: str | None = None) -> EventStream:
        """Open ``/api/event[?ep=EP]``; closed by :meth:`stop` or by the caller."""
        path = "/api/event" + (f"?ep={urllib.parse.quote(ep, safe='')}" if ep else "")
        stream = EventStream(HOST, self.web_port, path)
        # Jetty registers the listener right after sending the headers.
        time.sleep(0.1)
        self._streams.append(stream)
        return stream


def make_bootstrap_config(server_uri: str, short_server_id: int = 123, lifetime: int = 300, *,
                          security_mode: str = "NO_SEC", psk_identity: str | None = None,
                          psk_key_hex: str | None = None, binding: str = "U",
                          default_min_period: int | None = 1, default_max_period: int | None = None,
                          notif_if_disabled: bool = True, bootstrap_server_uri: str | None = None,
                          bootstrap_psk_identity: str | None = None, bootstrap_psk_key_hex: str | None = None,
                          to_delete: Iterable[str] = ("/0", "/1"), content_format: str | int | None = None) -> dict:
    """JSON body for :meth:`LeshanBootstrapServer.set_config` (Leshan 2.0.0-M4
    ``BootstrapConfig``; byte arrays as hex strings).

    It deletes ``to_delete``, then writes Security instance 1 (the DM server:
    ``server_uri``, NO_SEC or PSK, Short Server ID) and Server instance 0
    (Short Server ID, lifetime, binding); with ``bootstrap_server_uri`` also
    Security instance 0 for the bootstrap server itself (needed for PSK
    bootstrap: the bootstrap server authenticates the client with it).
    ``content_format`` (e.g. "TLV" or 11542) forces the format of the writes;
    by default Leshan picks from the client's LwM2M version (TLV for 1.0).
    """
    mode = security_mode.upper().replace("-", "_")
    if mode in ("NOSEC", "NONE"):
        mode = "NO_SEC"
    if mode not in ("NO_SEC", "PSK"):
        raise ValueError("security_mode must be NO_SEC or PSK")

    def sec(uri: str, bs: bool, ident: str | None, key: str | None, sid: int | None) -> dict:
        entry: dict[str, Any] = {
            "uri": uri, "bootstrapServer": bs, "securityMode": "PSK" if ident else "NO_SEC",
            "publicKeyOrId": ident.encode().hex() if ident else "", "serverPublicKey": "",
            "secretKey": key or "",
        }
        if ident and key is None:
            raise ValueError("a PSK identity needs a key")
        if key:
            bytes.fromhex(key)
        if sid is not None:
            entry["serverId"] = sid
        return entry

    if mode == "PSK" and not (psk_identity and psk_key_hex):
        raise ValueError("PSK security needs psk_identity and psk_key_hex")
    server: dict[str, Any] = {"shortId": int(short_server_id), "lifetime": int(lifetime),
                              "notifIfDisabled": bool(notif_if_disabled), "binding": list(binding)}
    if default_min_period is not None:
        server["defaultMinPeriod"] = int(default_min_period)
    if default_max_period is not None:
        server["defaultMaxPeriod"] = int(default_max_period)
    security = {"1": sec(server_uri, False, psk_identity if mode == "PSK" else None,
                         psk_key_hex if mode == "PSK" else None, int(short_server_id))}
    if bootstrap_server_uri:
        security["0"] = sec(bootstrap_server_uri, True, bootstrap_psk_identity, bootstrap_psk_key_hex, None)
    config: dict[str, Any] = {"toDelete": list(to_delete), "servers": {"0": server}, "security": security}
    if content_format is not None:
        config["contentFormat"] = content_format
    return config


class LeshanBootstrapServer(_WebProcess):
    """A Leshan 2.0.0-M4 bootstrap server on 127.0.0.1 with a small REST API.

    REST (under :attr:`api_url`): ``GET /bootstrap`` (all configs),
    ``POST /bootstrap/EP`` with a BootstrapConfig JSON body (see
    :func:`make_bootstrap_config`), ``DELETE /bootstrap/EP``, ``GET /server``
    (ports), ``GET /events?ep=EP`` (session events: INITIATED, AUTHORIZED,
    UNAUTHORIZED, NOCONFIG, SEND, RESPONSE, RESPONSE_ERROR, REQUEST_FAILURE,
    FINISHED, FAILED). Clients bootstrap on :attr:`coap_uri` (NoSec) or
    :attr:`coaps_uri` (PSK given in the endpoint's config).
    """

    kind = "bsserver"
    label = "leshan-bsserver"
    ready_path = "/server"

    def _args(self) -> list[str]:
        return ["-lh", HOST, "-lp", str(self.coap_port), "-slh", HOST, "-slp", str(self.coaps_port),
                "-wh", HOST, "-wp", str(self.web_port)]

    def set_config(self, ep: str, config: dict) -> None:
        """Install (replace) the bootstrap config of endpoint ``ep``."""
        code, text = _http("POST", f"{self.api_url}/bootstrap/{urllib.parse.quote(ep, safe='')}", config,
                           timeout=15)
        if code != 200:
            raise LeshanError(f"bootstrap config for {ep} rejected: HTTP {code} {text[:500]}")

    def provision(self, ep: str, server_uri: str, short_server_id: int = 123, lifetime: int = 300,
                  **kw: Any) -> dict:
        """``set_config(ep, make_bootstrap_config(server_uri, ...))``; returns the config sent."""
        config = make_bootstrap_config(server_uri, short_server_id, lifetime, **kw)
        self.set_config(ep, config)
        return config

    def configs(self) -> dict:
        code, text = _http("GET", f"{self.api_url}/bootstrap", timeout=15)
        if code != 200:
            raise LeshanError(f"GET /api/bootstrap -> HTTP {code}: {text[:300]}")
        return json.loads(text)

    def config(self, ep: str) -> dict | None:
        return self.configs().get(ep)

    def remove_config(self, ep: str) -> bool:
        code, _ = _http("DELETE", f"{self.api_url}/bootstrap/{urllib.parse.quote(ep, safe='')}", timeout=15)
        return code == 200

    def session_events(self, ep: str | None = None) -> list[dict]:
        q = f"?ep={urllib.parse.quote(ep, safe='')}" if ep else ""
        code, text = _http("GET", f"{self.api_url}/events{q}", timeout=15)
        if code != 200:
            raise LeshanError(f"GET /api/events -> HTTP {code}: {text[:300]}")
        return json.loads(text)

    def wait_session_event(self, ep: str, name: str = "FINISHED", timeout: float = 30.0) -> dict:
        """Poll until a bootstrap session event ``name`` for ``ep`` was recorded."""
        deadline = time.monotonic() + timeout
        while True:
            evs = self.session_events(ep)
            for ev in evs:
                if ev.get("event") == name:
                    return ev
            if not self.running:
                raise LeshanError(f"bootstrap server exited\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {name} bootstrap event for {ep} within {timeout}s: "
                                   f"{[e.get('event') for e in evs]}")
            time.sleep(0.1)


class LeshanDemoClient(_JavaProcess):
    """A Leshan-library LwM2M client (Security, Server, Device objects) as a baseline peer.

    ``server`` is a :class:`LeshanServer` (registers on its CoAP URI, or CoAPs
    when ``psk_identity``/``psk_key`` are given), a :class:`LeshanBootstrapServer`
    (bootstraps first) or a URI string on 127.0.0.1. :meth:`start` waits until
    the client reports its registration and, when ``wait_server`` (default: the
    LeshanServer given as ``server``) is known, until that server lists it.
    Device object 3 reads: manufacturer "Leshan Demo Device", model "Model 500",
    serial "LT-500-000-0001"; /3/0/14 and /3/0/15 are writable.
    """

    kind = "client"
    label = "leshan-client"

    def __init__(self, endpoint: str, server: "LeshanServer | LeshanBootstrapServer | str", *,
                 bootstrap: bool | None = None, psk_identity: str | None = None, psk_key: str | None = None,
                 lifetime: int = 300, short_server_id: int = 123, local_port: int | None = None,
                 wait_server: LeshanServer | None = None, register_timeout: float = 60.0, **kw: Any):
        super().__init__(**kw)
        self.endpoint = endpoint
        self.psk_identity = psk_identity
        self.psk_key = psk_key
        if isinstance(server, LeshanBootstrapServer):
            self.server_uri = server.coaps_uri if psk_identity else server.coap_uri
            self.bootstrap = True if bootstrap is None else bootstrap
        elif isinstance(server, LeshanServer):
            self.server_uri = server.coaps_uri if psk_identity else server.coap_uri
            self.bootstrap = bool(bootstrap)
            wait_server = wait_server or server
        else:
            self.server_uri = str(server)
            self.bootstrap = bool(bootstrap)
        host = urllib.parse.urlsplit(self.server_uri).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"server URI must be on the loopback interface, not {self.server_uri}")
        self.wait_server = wait_server
        self.lifetime = lifetime
        self.short_server_id = short_server_id
        self._fixed_port = local_port
        self.local_port = local_port
        self.register_timeout = register_timeout

    def _args(self) -> list[str]:
        args = ["-n", self.endpoint, "-u", self.server_uri, "-lh", HOST, "-lp", str(self.local_port),
                "-l", str(self.lifetime), "-sid", str(self.short_server_id)]
        if self.bootstrap:
            args.append("-b")
        if self.psk_identity:
            args += ["-i", self.psk_identity, "-p", self.psk_key or ""]
        return args

    def start(self, wait: bool = True):
        if self.running:
            return self
        self.jar  # noqa: B018 - fetch/build first
        self.local_port = self._fixed_port or free_port("udp")
        self._spawn()
        if wait:
            try:
                self.wait_registered(self.register_timeout)
            except BaseException:
                self.stop(grace=3)
                raise
        return self

    def wait_registered(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        m = self.wait_line(r"TELITEMU (REGISTERED|REGISTRATION_FAILED|BOOTSTRAP_FAILED)", timeout)
        if m.group(1) != "REGISTERED":
            raise LeshanError(f"{self.endpoint}: {m.string}\n{self.log_tail()}")
        if self.wait_server is not None:
            self.wait_server.wait_client(self.endpoint, max(1.0, deadline - time.monotonic()))

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<LeshanDemoClient {self.endpoint!r} {state} -> {self.server_uri}>"


def _main_fetch_all() -> None:  # pragma: no cover - convenience: python -m emulator.testing.leshan
    for k in ("server", "bsserver", "client"):
        print(k, fetch_jar(k))


if __name__ == "__main__":  # pragma: no cover
    _main_fetch_all()
