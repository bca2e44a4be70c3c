"""Non-volatile memory: one JSON document written atomically (temp file, fsync, rename).

A kill -9 at any moment leaves either the old or the new file; temp files such a kill leaves behind
are removed at the next boot. A file that is unreadable, not ours or of another version is reported
(log + `problem`) and replaced by factory defaults. A readable file whose sections have the wrong
shape keeps its good sections: each bad one is reported (once, in `problem`) and dropped, so the
module uses that section's factory value.

The file holds the #LWM2MINJKEYS secret key (like the module's NVM), so it is created 0600 and its
directory is kept 0700.

A write that fails (disk full, permissions) leaves the in-memory copy as it was: a value that was
not saved is never saved later by a write of another section.

Writes re-encode only the section that changed; the other sections' JSON text is cached, so the cost
of one write is the file's size in bytes (bounded: see MAX_BYTES) plus one fsync.
"""
from __future__ import annotations

import json
import logging
import os
import stat
import re
from pathlib import Path
from typing import Any, Callable

log = logging.getLogger("emulator.nvm")

MAGIC = "telit-emu-nvm"
VERSION = 1
FILE_MODE = 0o600
DIR_MODE = 0o700
MAX_BYTES = 256 * 1024        # the emulated NVM's size: a write that would exceed it fails (NvmFull)


class PowerLost(OSError):
    """The supply went while something was being written (a scenario's power cut): nothing was written,
    and the module says nothing more (it is off)."""


class NvmFull(OSError):
    """The NVM has no room for this write (the module answers 'memory full')."""


def default_state_dir() -> Path:
    """Where a module keeps its NVM and file system unless told otherwise:
    ``$XDG_DATA_HOME/telit-emu/default`` (``~/.local/share/telit-emu/default``)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "telit-emu" / "default"


def secure_dir(path: Path) -> None:
    """Create `path` (and parents) if needed and make it 0700, even when it already existed, unless it
    is a shared folder (sticky bit, e.g. /tmp, or owned by another user): that one is left as it is,
    with a warning, and only the files the emulator writes in it are private."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    try:
        st = os.stat(path)
        if st.st_mode & stat.S_ISVTX or st.st_uid != os.getuid():
            if st.st_mode & 0o077:
                log.warning("%s is a shared folder (mode %o): left as it is; the state files in it "
                            "are private", path, stat.S_IMODE(st.st_mode))
            return
        if (st.st_mode & 0o777) != DIR_MODE:
            os.chmod(path, DIR_MODE)
    except OSError as exc:
        log.warning("cannot make %s private: %s", path, exc)


def remove_stale_temps(folder: Path, pattern: re.Pattern) -> list[str]:
    """Delete temp files a killed process left in `folder` (names matching `pattern`, whose
    group 'pid', if any, is not a live process other than this one). Returns the names removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = pattern.fullmatch(name)
        if not m:
            continue
        pid = m.groupdict().get("pid")
        if pid and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# ------------------------------------------------------------------ section shapes
def _int(v, lo=-(2 ** 31), hi=2 ** 31 - 1) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _str(v, max_len=4096) -> bool:
    return isinstance(v, str) and len(v) <= max_len


def _list_of(v, item: Callable[[Any], bool], max_len=100_000) -> bool:
    return isinstance(v, list) and len(v) <= max_len and all(item(x) for x in v)


def _server_entry(v) -> bool:
    return isinstance(v, list) and len(v) == 2 and _str(v[0], 255) and v[0] != "" and _int(v[1], 0, 1)


def _profile(v) -> bool:
    if not isinstance(v, dict):
        return False
    for name, x in v.items():
        hi = 255 if name.startswith("S") else 4_000_000
        if not _int(x, 0, hi):
            return False
    return True


def _store_value(v) -> bool:
    return isinstance(v, list) and len(v) == 4 and all(_int(x, 0, 65535) for x in v[:3])


def _scalar(v) -> bool:
    return _int(v) or _str(v)


# Each section has one owner, the only module that reads or writes it (tests/test_architecture.py):
# startup/profiles modem/core.py, cgdcont modem/radio.py, cops_* commands/network.py, gpscfg
# commands/gnss.py, tz_quarters modem/timezone.py, firmware_revision modem/firmware.py, setting:*
# modem/settings.py, lwm2m_server/_pending/_keys/_fota_mode lwm2m/host_settings.py,
# lwm2m_bootstrapped lwm2m/bootstrap.py, lwm2m_resume lwm2m/agent.py, lwm2m_store lwm2m/store.py,
# lwm2m_fota lwm2m/fota.py.
SHAPES: dict[str, Callable[[Any], bool]] = {
    "startup": lambda v: isinstance(v, dict) and _int(v.get("profile", 0), 0, 1)
    and isinstance(v.get("full", True), bool),
    "profiles": lambda v: isinstance(v, dict) and all(k in ("0", "1") and _profile(p) for k, p in v.items()),
    "cgdcont": lambda v: isinstance(v, dict) and all(
        re.fullmatch(r"[1-6]", k) and isinstance(e, list) and len(e) == 2 and _str(e[0], 16) and _str(e[1], 128)
        for k, e in v.items()),
    "cops_mode": lambda v: _int(v, 0, 4),
    "cops_format": lambda v: _int(v, 0, 2),
    "tz_quarters": lambda v: _int(v, -96, 96),
    "gpscfg": lambda v: _list_of(v, _int, 4) and len(v) == 4,
    "firmware_revision": lambda v: _str(v, 64) and v != "",
    "lwm2m_server": _server_entry,
    "lwm2m_server_pending": lambda v: v == "factory" or _server_entry(v),
    "lwm2m_keys": lambda v: isinstance(v, dict) and all(k in ("ep", "identity", "key") and _str(x, 64)
                                                       for k, x in v.items()),
    "lwm2m_bootstrapped": lambda v: isinstance(v, dict) and _str(v.get("uri"), 255)
    and re.match(r"coaps?://", v["uri"]) is not None and _int(v.get("ssid"), 0, 65535)
    and _str(v.get("bs", ""), 255),
    "lwm2m_resume": lambda v: _list_of(v, _int, 4) and len(v) == 4,
    "lwm2m_store": lambda v: isinstance(v, dict)
    and _list_of(v.get("instances", []), lambda e: _list_of(e, lambda x: _int(x, 0, 65535), 2) and len(e) == 2)
    and _list_of(v.get("values", []), _store_value),
    "lwm2m_fota": lambda v: isinstance(v, dict),
    "lwm2m_fota_mode": lambda v: _int(v, 0, 3),
}


def section_ok(key: str, value: Any) -> bool:
    """Whether `value` has the shape the readers of section `key` expect (unknown sections: JSON)."""
    check = SHAPES.get(key)
    if check is None and key.startswith("setting:"):
        check = lambda v: _list_of(v, _scalar, 16) and len(v) > 0     # noqa: E731
    if check is None:
        return True
    try:
        return bool(check(value))
    except Exception:       # a validator must never take the boot down
        return False


def _encode(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class NVM:
    def __init__(self, path: Path | None, *, max_bytes: int = MAX_BYTES):
        """``path`` None: an ephemeral NVM that lives in memory only (fleets with ``--ephemeral``);
        its size bound still holds."""
        self.path = Path(path) if path is not None else None
        self.max_bytes = max_bytes
        self.problem: str | None = None
        if self.path is not None:
            secure_dir(self.path.parent)
            remove_stale_temps(self.path.parent, re.compile(rf"\.{re.escape(self.path.name)}\.(?P<pid>\d+)\.tmp"))
        self.data: dict[str, Any] = self._load()
        self._encoded: dict[str, str] = {}
        if self.path is not None and self.path.exists():
            try:
                if (os.stat(self.path).st_mode & 0o777) != FILE_MODE:
                    os.chmod(self.path, FILE_MODE)
            except OSError as exc:
                log.warning("cannot make %s private: %s", self.path, exc)

    def _load(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self.problem = f"cannot read {self.path}: {exc}"
        else:
            try:
                doc = json.loads(raw.decode("utf-8"))
                if not isinstance(doc, dict) or doc.get("magic") != MAGIC:
                    raise ValueError("not an emulator NVM file")
                if doc.get("version") != VERSION:
                    raise ValueError(f"unsupported NVM version {doc.get('version')!r}")
                data = doc.get("data")
                if not isinstance(data, dict):
                    raise ValueError("no data section")
            except (ValueError, UnicodeDecodeError, RecursionError) as exc:
                self.problem = f"NVM file {self.path} is corrupt or foreign ({exc}); factory defaults used"
            else:
                bad = sorted(k for k, v in data.items() if not section_ok(k, v))
                if bad:
                    self.problem = (f"NVM file {self.path}: section(s) {', '.join(bad)} of the wrong shape "
                                    "replaced by factory values; the rest is kept")
                    log.warning("%s", self.problem)
                    for k in bad:
                        del data[k]
                return data
        log.warning("%s", self.problem)
        try:
            os.replace(self.path, self.path.with_suffix(".corrupt"))
            os.chmod(self.path.with_suffix(".corrupt"), FILE_MODE)
        except OSError:
            pass
        return {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._commit({key: value}, ())

    def update(self, **items: Any) -> None:
        self._commit(items, ())

    def delete(self, key: str) -> None:
        if key in self.data:
            self._commit({}, (key,))

    def _commit(self, items: dict[str, Any], removed: tuple[str, ...]) -> None:
        """Write the NVM with `items` set and `removed` gone; only once it is on disk does the
        in-memory copy change (a failed write raises and changes nothing)."""
        encoded = {k: _encode(v) for k, v in items.items()}
        sections = {k: self._text(k) for k in self.data if k not in removed and k not in encoded}
        sections.update(encoded)
        self._write(sections)
        for k in removed:
            self.data.pop(k, None)
            self._encoded.pop(k, None)
        self.data.update(items)
        self._encoded.update(encoded)

    def _text(self, key: str) -> str:
        text = self._encoded.get(key)
        if text is None:
            text = self._encoded[key] = _encode(self.data[key])
        return text

    def save(self) -> None:
        """Write the whole NVM as it is in memory (sections changed in place are re-encoded)."""
        self._encoded.clear()
        self._commit({}, ())

    def size(self, items: dict[str, Any] | None = None) -> int:
        """Bytes the file takes (with `items` changed, if given)."""
        items = items or {}
        sections = {k: self._text(k) for k in self.data if k not in items}
        sections.update({k: _encode(v) for k, v in items.items()})
        return len(self._blob(sections))

    @staticmethod
    def _blob(sections: dict[str, str]) -> bytes:
        body = ",\n".join(f"{json.dumps(k)}:{sections[k]}" for k in sorted(sections))
        return (f'{{"magic":"{MAGIC}","version":{VERSION},"data":{{\n{body}\n}}}}\n').encode()

    def _write(self, sections: dict[str, str]) -> None:
        blob = self._blob(sections)
        if len(blob) > self.max_bytes:
            raise NvmFull(f"NVM full: {len(blob)} bytes > {self.max_bytes}")
        if self.path is None:
            return
        secure_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            with open(fd, "wb", closefd=True) as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
