"""Non-volatile memory: one JSON document written atomically (temp file, fsync, rename).

A kill -9 at any moment leaves either the old or the new file. A file that is unreadable, not ours
or of another version is reported (log + `problem`) and replaced by factory defaults.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("emulator.nvm")

MAGIC = "telit-emu-nvm"
VERSION = 1


class NVM:
    def __init__(self, path: Path | None):
        """``path`` None: an ephemeral NVM that lives in memory only (fleets with ``--ephemeral``)."""
        self.path = Path(path) if path is not None else None
        self.problem: str | None = None
        self.data: dict[str, Any] = self._load()

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
                return data
            except (ValueError, UnicodeDecodeError) as exc:
                self.problem = f"NVM file {self.path} is corrupt or foreign ({exc}); factory defaults used"
        log.warning("%s", self.problem)
        try:
            os.replace(self.path, self.path.with_suffix(".corrupt"))
        except OSError:
            pass
        return {}

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self.save()

    def update(self, **items: Any) -> None:
        self.data.update(items)
        self.save()

    def delete(self, key: str) -> None:
        if key in self.data:
            del self.data[key]
            self.save()

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        blob = json.dumps({"magic": MAGIC, "version": VERSION, "data": self.data},
                          indent=1, sort_keys=True).encode()
        with open(tmp, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        try:
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError:
            pass
