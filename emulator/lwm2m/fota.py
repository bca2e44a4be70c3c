"""Firmware update: the behaviour of the LwM2M 1.0 Firmware Update object (/5/0).

The state machine of the object (LwM2M 1.0 TS, appendix E.6):

    State (/5/0/3)  0 Idle, 1 Downloading, 2 Downloaded, 3 Updating
    Update Result (/5/0/5)  0 initial, 1 success, 2 not enough flash, 3 out of RAM,
        4 connection lost during download, 5 integrity check failure, 6 unsupported package type,
        7 invalid URI, 8 update failed, 9 unsupported protocol

Push: the server writes the whole package to /5/0/0 (aiocoap has already put the Block1 pieces
together). Pull: the server writes a ``coap://`` URI to /5/0/1 and the module fetches it with GETs
through the agent's own CoAP context, one Block2 block at a time, each exchange bounded on the modem
clock. Both go Idle -> Downloading -> Downloaded, or back to Idle with the failure in Update Result.
Writing an empty package or an empty URI cancels a download or forgets a downloaded package (Idle,
result 0). Executing /5/0/2 in Downloaded starts the update: Updating, the host gets
``#LWM2MINFO: "GEN","FOTA REBOOT"``, the module reboots, and the power-on that follows activates the
new revision (NVM ``firmware_revision``, shown by ``AT+CGMR``, ``AT#CGMR`` and /3/0/3) with State 0 and
Update Result 1.

``AT#LWM2MFOTACFG`` (kept by emulator/lwm2m/host_settings.py) asks for the host's consent: in modes 1 and 3 the host
gets ``#LWM2MFOTARING: 0,"DOWNLOAD"`` before the download (or, for a pushed package, before the
module takes it) and in modes 2 and 3 ``#LWM2MFOTARING: 0,"UPDATE"`` before the update is applied; the
operation waits for ``AT#LWM2MFOTAACK=0,1``, or goes on by itself after one week of module time.
While the module waits for the download consent the object already reads State 1.

The object's state is kept in NVM (key ``lwm2m_fota``) at every change, so a power cycle never leaves a
half state: a download cut by a reboot ends Idle with result 4; a downloaded package stays Downloaded;
an update the host had not yet allowed goes back to Downloaded with result 8; an update under way
completes at the next power-on.

Package format (the emulator's own; ``make_package`` builds one)::

    TELIT-EMU-FW 1\\n
    version=<the new firmware revision>\\n
    sha256=<64 hex digits: SHA-256 of the payload>\\n
    \\n
    <payload bytes>

Header lines may end in CRLF; further ``key=value`` header lines are allowed (``name=`` sets
PkgName /5/0/6) and others are ignored. Another first line gives result 6 (unsupported package
type), as does a header without a usable ``version``; a header cut short, a malformed digest or a
payload whose SHA-256 differs (a truncated or corrupted package) gives result 5.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiocoap
from aiocoap import error as coap_error
from aiocoap import numbers
from aiocoap.optiontypes import BlockOption

from . import events as ev
from .client import EXCHANGE_TIMEOUT



class FotaOwner(Protocol):
    """What the firmware-update object uses of the agent (emulator/lwm2m/agent.py)."""

    clock: Any
    modem: Any
    store: Any
    cfg: dict
    client: Any
    fota: Any
    host_settings: Any

    def emit(self, event: Any) -> None: ...

log = logging.getLogger("emulator.lwm2m.fota")
C = numbers.codes.Code

# State (/5/0/3)
IDLE, DOWNLOADING, DOWNLOADED, UPDATING = 0, 1, 2, 3
# Update Result (/5/0/5)
INITIAL, SUCCESS, NO_FLASH, NO_RAM, CONNECTION_LOST, INTEGRITY, UNSUPPORTED_TYPE, INVALID_URI, \
    UPDATE_FAILED, UNSUPPORTED_PROTOCOL = range(10)

OID, IID = 5, 0
R_PACKAGE, R_URI, R_UPDATE, R_STATE, R_RESULT, R_NAME, R_VERSION, R_PROTOCOLS, R_DELIVERY = 0, 1, 2, 3, 5, 6, 7, 8, 9

NVM_KEY = "lwm2m_fota"

MAGIC = b"TELIT-EMU-FW 1"
MAX_HEADER = 4096
DEFAULT_MAX_PACKAGE = 8 * 1024 * 1024     # the flash set aside for a package (profile: lwm2m.fota_max_package)
ACK_TIMEOUT = 7 * 24 * 3600.0             # an un-acknowledged FOTA operation goes on after one week
APPLY_TIME = 3.0                          # module seconds spent writing the new image before the reboot
REBOOT_DELAY = 0.5                        # from the FOTA REBOOT URC to the reboot
BLOCK_SZX = 6                             # 1024-byte blocks asked for when pulling
SUPPORTED_SCHEMES = ("coap",)
KNOWN_SCHEMES = ("coaps", "coap+tcp", "coaps+tcp", "coap+ws", "coaps+ws", "http", "https", "ftp", "sftp",
                 "tftp", "file")
_VERSION_RE = re.compile(r"[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?")


# ====================================================================== package format
class PackageError(Exception):
    """A package the module refuses; .result is the Update Result to report."""

    def __init__(self, result: int, detail: str):
        super().__init__(detail)
        self.result = result


@dataclass
class Package:
    version: str
    sha256: str
    size: int
    name: str = ""


def _check_version(version: str) -> str:
    if not isinstance(version, str) or not _VERSION_RE.fullmatch(version) or '"' in version:
        raise ValueError(f"unusable firmware version {version!r}: 1-64 printable ASCII characters, no quotes")
    return version


def make_package(version: str, payload: bytes) -> bytes:
    """A firmware package in the emulator's format, carrying ``payload`` to revision ``version``."""
    _check_version(version)
    payload = bytes(payload)
    header = f"TELIT-EMU-FW 1\nversion={version}\nsha256={hashlib.sha256(payload).hexdigest()}\n\n"
    return header.encode("ascii") + payload


def parse_package(data: bytes) -> Package:
    """Check a whole package; raises PackageError with the Update Result to report."""
    data = bytes(data)
    nl = data.find(b"\n")
    if nl < 0:
        if len(data) < len(MAGIC) and MAGIC.startswith(data):
            raise PackageError(INTEGRITY, "package cut inside its header")
        raise PackageError(UNSUPPORTED_TYPE, "not a TELIT-EMU-FW package")
    if data[:nl].rstrip(b"\r") != MAGIC:
        raise PackageError(UNSUPPORTED_TYPE, "not a TELIT-EMU-FW 1 package")
    fields: dict[str, str] = {}
    pos = nl + 1
    while True:
        end = data.find(b"\n", pos)
        if end < 0:
            if len(data) > MAX_HEADER:
                raise PackageError(UNSUPPORTED_TYPE, "header too long")
            raise PackageError(INTEGRITY, "package cut inside its header")
        line = data[pos:end].rstrip(b"\r")
        pos = end + 1
        if not line:
            break
        if pos > MAX_HEADER:
            raise PackageError(UNSUPPORTED_TYPE, "header too long")
        try:
            key, sep, value = line.decode("ascii").partition("=")
        except UnicodeDecodeError:
            raise PackageError(UNSUPPORTED_TYPE, "header is not ASCII") from None
        if not sep:
            raise PackageError(UNSUPPORTED_TYPE, f"bad header line {line!r}")
        fields.setdefault(key.strip().lower(), value.strip())
    try:
        version = _check_version(fields.get("version", ""))
    except ValueError as exc:
        raise PackageError(UNSUPPORTED_TYPE, str(exc)) from None
    digest = fields.get("sha256", "").lower()
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise PackageError(INTEGRITY, "missing or malformed sha256")
    payload = data[pos:]
    if hashlib.sha256(payload).hexdigest() != digest:
        raise PackageError(INTEGRITY, "sha256 of the payload does not match")
    return Package(version, digest, len(payload), fields.get("name", "")[:64])


def classify_uri(uri: str) -> int | None:
    """None for a URI the module can pull from, else the Update Result to report."""
    try:
        parts = urlsplit(uri)
        scheme = parts.scheme.lower()
        host = parts.hostname
        parts.port                      # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return INVALID_URI
    if scheme in SUPPORTED_SCHEMES:
        if not host or any(c.isspace() for c in uri):
            return INVALID_URI
        return None
    if scheme in KNOWN_SCHEMES:
        return UNSUPPORTED_PROTOCOL
    return INVALID_URI


class _Failed(Exception):
    def __init__(self, result: int, detail: str):
        super().__init__(detail)
        self.result = result


# ====================================================================== the object's behaviour
class FirmwareUpdate:
    """One per power-on (Agent._make_fota): /5/0 in the agent's store, its NVM record and its tasks."""

    def __init__(self, agent: FotaOwner):
        self.agent = agent
        self.clock = agent.clock
        self.modem = agent.modem
        self.store = agent.store
        self.pending: asyncio.Future | None = None
        self._task: asyncio.Task | None = None
        self._reboot_timer = None
        self._closed = False
        self.doc: dict[str, Any] = {}
        self._undo_power_off = self.modem.events.subscribe("power_off", self._power_off)
        self._restore()

    # ------------------------------------------------------------------ persistence
    @property
    def state(self) -> int:
        return int(self.doc.get("state", IDLE))

    @property
    def result(self) -> int:
        return int(self.doc.get("result", INITIAL))

    def _restore(self) -> None:
        saved = self.modem.nvm.get(NVM_KEY)
        doc = dict(saved) if isinstance(saved, dict) else {}
        state = doc.get("state", IDLE)
        if state not in (IDLE, DOWNLOADING, DOWNLOADED, UPDATING):
            state = IDLE
        result = doc.get("result", INITIAL)
        if not isinstance(result, int) or not INITIAL <= result <= UNSUPPORTED_PROTOCOL:
            result = INITIAL
        package = doc.get("package") if isinstance(doc.get("package"), dict) else None
        if package is not None and not (isinstance(package.get("version"), str) and package["version"]):
            package = None                             # an unreadable record: no package
        if state == DOWNLOADING:                       # the download was cut by a power cycle
            state, result, package = IDLE, CONNECTION_LOST, None
        elif state == DOWNLOADED and not package:
            state, result = IDLE, UPDATE_FAILED
        elif state == UPDATING:
            if doc.get("commit") and package:          # the new image was written: it boots now
                self.modem.install_firmware(package["version"])
                log.info("firmware %s is active", package["version"])
                state, result, package = IDLE, SUCCESS, None
            elif package:                              # the host had not allowed it yet
                state, result = DOWNLOADED, UPDATE_FAILED
            else:
                state, result = IDLE, UPDATE_FAILED
        self.doc = {"state": state, "result": result, "uri": str(doc.get("uri") or ""),
                    "name": str(doc.get("name") or ""), "version": str(doc.get("version") or ""),
                    "package": package, "commit": False}
        if saved is not None and self.doc != saved:   # a fresh module keeps no record until it is used
            self._save()
        values = {R_URI: self.doc["uri"], R_STATE: state, R_RESULT: result, R_NAME: self.doc["name"],
                  R_VERSION: self.doc["version"], R_PROTOCOLS: {0: 0}, R_DELIVERY: 2}
        for rid, value in values.items():
            self.store.set(OID, IID, rid, value, source="module", notify=False)

    def _save(self) -> None:
        self.modem.nvm.set(NVM_KEY, dict(self.doc))

    def _update(self, *, state: int | None = None, result: int | None = None, **fields: Any) -> None:
        """Change the record, save it, then show the changes in the store (observers notified)."""
        changes = {}
        if state is not None:
            changes[R_STATE] = state
            self.doc["state"] = state
        if result is not None:
            changes[R_RESULT] = result
            self.doc["result"] = result
        for key, rid in (("name", R_NAME), ("version", R_VERSION)):
            if key in fields:
                changes[rid] = fields[key]
        self.doc.update(fields)
        self._save()
        for rid, value in changes.items():
            try:
                if self.store.get(OID, IID, rid) == value:
                    continue
            except Exception:
                pass
            self.store.set(OID, IID, rid, value, source="module")
        if state is not None or result is not None:
            self.agent.emit(ev.FotaState(self.state, self.result))

    # ------------------------------------------------------------------ life cycle
    def _power_off(self) -> None:
        self._closed = True
        self._undo_power_off()
        if self._task and not self._task.done():
            self._task.cancel()
        self._task = None
        if self._reboot_timer:
            self._reboot_timer.cancel()
            self._reboot_timer = None
        self._drop_pending()

    def _drop_pending(self) -> None:
        fut, self.pending = self.pending, None
        if fut is not None and not fut.done():
            fut.cancel()

    def _spawn(self, coro) -> None:
        self._cancel_task()
        self._task = asyncio.ensure_future(coro)

    def _cancel_task(self) -> None:
        task, self._task = self._task, None
        if task and not task.done() and task is not asyncio.current_task():
            task.cancel()
        self._drop_pending()

    @property
    def mode(self) -> int:
        try:
            return int(self.agent.host_settings.fota_mode)
        except (TypeError, ValueError, AttributeError):
            return 0

    @property
    def max_package(self) -> int:
        try:
            return int(self.agent.cfg.get("fota_max_package", DEFAULT_MAX_PACKAGE))
        except (TypeError, ValueError, KeyError):
            return DEFAULT_MAX_PACKAGE

    async def _consent(self, what: str) -> None:
        """#LWM2MFOTARING and the wait for AT#LWM2MFOTAACK (or one week of module time)."""
        fut = asyncio.get_running_loop().create_future()
        self.pending = fut
        self.agent.emit(ev.FotaRing(what))
        try:
            await self.clock.wait_for(fut, ACK_TIMEOUT)
        except asyncio.TimeoutError:
            log.info("no consent from the host for %s within a week: going on", what)
        finally:
            if self.pending is fut:
                self.pending = None

    # ------------------------------------------------------------------ server operations
    def on_write(self, path: tuple, value: Any):
        """A server Write to /5/0/0 (bytes) or /5/0/1 (str); None for 2.04, or an error code."""
        rid = path[2]
        if rid not in (R_PACKAGE, R_URI):
            return C.METHOD_NOT_ALLOWED
        if rid == R_URI and not isinstance(value, str):
            return C.BAD_REQUEST
        if rid == R_PACKAGE:
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not isinstance(value, (bytes, bytearray, memoryview)):
                return C.BAD_REQUEST
            value = bytes(value)
        if self.state == UPDATING:
            return C.METHOD_NOT_ALLOWED
        if not value:                                   # empty package or URI: cancel / reset
            self._cancel_task()
            if rid == R_URI:
                self.store.set(OID, IID, R_URI, "", source="server")
            self._update(state=IDLE, result=INITIAL, package=None, commit=False, uri="" if rid == R_URI
                         else self.doc.get("uri", ""))
            return None
        if self.state != IDLE:
            return C.METHOD_NOT_ALLOWED
        if rid == R_URI:
            uri = value.strip()
            self.store.set(OID, IID, R_URI, value, source="server")
            bad = classify_uri(uri)
            if bad is not None:
                log.info("package URI %r refused (result %d)", uri, bad)
                self._update(state=IDLE, result=bad, uri=value, package=None)
                return None
            self._update(state=DOWNLOADING, result=INITIAL, uri=value, package=None, commit=False)
            self._spawn(self._download(uri=uri))
        else:
            self._update(state=DOWNLOADING, result=INITIAL, package=None, commit=False)
            self._spawn(self._download(data=value))
        return None

    def on_execute(self, path: tuple, args: str):
        """A server Execute on /5/0/2 (Update): only in Downloaded."""
        if path[2] != R_UPDATE:
            return C.METHOD_NOT_ALLOWED
        if self.state != DOWNLOADED or not self.doc.get("package"):
            return C.METHOD_NOT_ALLOWED
        self._update(state=UPDATING, result=INITIAL, commit=False)
        self._spawn(self._apply())
        return None

    # ------------------------------------------------------------------ download
    async def _download(self, uri: str | None = None, data: bytes | None = None) -> None:
        """Pull from uri, or take the pushed data; then check the package."""
        try:
            if self.mode in (1, 3):
                await self._consent("DOWNLOAD")
            if uri is not None:
                data = await self._pull(uri)
            if len(data) > self.max_package:
                raise _Failed(NO_FLASH, f"{len(data)} bytes do not fit")
            try:
                pkg = parse_package(data)
            except PackageError as exc:
                raise _Failed(exc.result, str(exc)) from None
        except _Failed as exc:
            log.info("firmware download failed (result %d): %s", exc.result, exc)
            self._update(state=IDLE, result=exc.result, package=None)
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("firmware download failed")
            self._update(state=IDLE, result=UPDATE_FAILED, package=None)
            return
        log.info("firmware package %s downloaded (%d bytes)", pkg.version, pkg.size)
        self._update(state=DOWNLOADED, result=INITIAL, name=pkg.name or self.modem.profile["identity"]["model"],
                     version=pkg.version, package={"version": pkg.version, "sha256": pkg.sha256, "size": pkg.size})

    async def _pull(self, uri: str) -> bytes:
        client = self.agent.client
        if client is None:
            raise _Failed(CONNECTION_LOST, "the agent has no CoAP context")
        try:
            await client.open()
        except Exception as exc:
            raise _Failed(CONNECTION_LOST, f"no CoAP context: {exc}") from None
        ctx = client.ctx
        if ctx is None:
            raise _Failed(CONNECTION_LOST, "the agent has no CoAP context")
        body = bytearray()
        szx = BLOCK_SZX
        limit = self.max_package
        while True:
            try:
                msg = aiocoap.Message(code=C.GET, uri=uri)
            except (ValueError, coap_error.Error) as exc:
                raise _Failed(INVALID_URI, f"bad URI: {exc}") from None
            size = 2 ** (szx + 4)
            msg.opt.block2 = BlockOption.BlockwiseTuple(len(body) // size, False, szx)
            resp = await self._exchange(ctx, msg)
            if resp.code == C.NOT_FOUND:
                raise _Failed(INVALID_URI, "the server has no such package (4.04)")
            if resp.code != C.CONTENT:
                raise _Failed(CONNECTION_LOST, f"the server answered {resp.code}")
            if resp.opt.size2 is not None and resp.opt.size2 > limit:
                raise _Failed(NO_FLASH, f"package of {resp.opt.size2} bytes does not fit")
            block = resp.opt.block2
            if block is None:                          # the whole package in one answer
                body = bytearray(resp.payload)
                break
            if block.size_exponent > 6 or block.start != len(body):
                raise _Failed(CONNECTION_LOST, f"unexpected block {block}")
            if block.more and len(resp.payload) != block.size:
                raise _Failed(CONNECTION_LOST, f"short block {block}")
            body += resp.payload
            if len(body) > limit:
                raise _Failed(NO_FLASH, f"package over {limit} bytes")
            if not block.more:
                break
            szx = block.size_exponent
        return bytes(body)

    async def _exchange(self, ctx, msg) -> aiocoap.Message:
        try:
            req = ctx.request(msg, handle_blockwise=False)
            return await self.clock.wait_for(req.response, EXCHANGE_TIMEOUT)
        except asyncio.TimeoutError:
            raise _Failed(CONNECTION_LOST, "no answer from the package server") from None
        except coap_error.ResolutionError as exc:
            raise _Failed(INVALID_URI, f"cannot resolve the package host: {exc}") from None
        except (coap_error.Error, OSError) as exc:
            raise _Failed(CONNECTION_LOST, f"download failed: {exc or type(exc).__name__}") from None

    # ------------------------------------------------------------------ update
    async def _apply(self) -> None:
        if self.mode in (2, 3):
            await self._consent("UPDATE")
        await self.clock.sleep(APPLY_TIME)
        self._update(commit=True)
        self.agent.emit(ev.Info("GEN", "FOTA REBOOT"))
        self._reboot_timer = self.clock.call_later(REBOOT_DELAY, self._reboot)

    def _reboot(self) -> None:
        self._reboot_timer = None
        if self._closed or self.agent.fota is not self:
            return
        log.info("rebooting into firmware %s", (self.doc.get("package") or {}).get("version"))
        self.modem.reboot()
