"""The module's file system as far as host software sees it: the /XML/ folder of custom object models.

Every file the module holds is one #M2MLIST shows: names starting with '.' are refused, and the temp
files of writes cut by a kill -9 (and any other hidden file) are removed at boot, so `free bytes` is
always CAPACITY minus the sizes the listing shows. Folders are 0700, files 0600.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from .nvm import FILE_MODE, secure_dir

log = logging.getLogger("emulator.fs")

FOLDERS = ("XML",)
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
CAPACITY = 1024 * 1024     # bytes the emulated file system offers


class FsError(Exception):
    pass


class FileSystem:
    def __init__(self, root: Path):
        self.root = Path(root)
        secure_dir(self.root)
        for folder in FOLDERS:
            path = self.root / folder
            secure_dir(path)
            for f in path.iterdir():
                if f.name.startswith(".") and (f.is_file() or f.is_symlink()):
                    log.warning("removing hidden file %s (a write cut short, or not the module's)", f)
                    try:
                        f.unlink()
                    except OSError:
                        pass
                elif f.is_file():
                    try:
                        if (f.stat().st_mode & 0o777) != FILE_MODE:
                            os.chmod(f, FILE_MODE)
                    except OSError:
                        pass

    def resolve(self, module_path: str) -> Path:
        """'/XML/name.xml' (or 'XML/name.xml') -> host path; FsError for anything else."""
        parts = [p for p in module_path.strip().split("/") if p]
        if len(parts) != 2 or parts[0].upper() not in FOLDERS or not _NAME.match(parts[1]) \
                or parts[1].startswith("."):        # hidden names: #M2MLIST would not show them
            raise FsError(module_path)
        return self.root / parts[0].upper() / parts[1]

    def folder(self, module_path: str) -> Path:
        parts = [p for p in module_path.strip().split("/") if p]
        if len(parts) != 1 or parts[0].upper() not in FOLDERS:
            raise FsError(module_path)
        return self.root / parts[0].upper()

    def used(self) -> int:
        """Bytes taken: the sum of the sizes #M2MLIST shows."""
        return sum(size for folder in FOLDERS for _, size in self.listing(folder))

    def free(self) -> int:
        return max(0, CAPACITY - self.used())

    def write(self, module_path: str, data: bytes) -> None:
        path = self.resolve(module_path)
        old = path.stat().st_size if path.exists() else 0
        if len(data) - old > self.free():
            raise FsError("no space")
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
        try:
            with open(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise FsError("write failed") from None

    def read(self, module_path: str) -> bytes:
        path = self.resolve(module_path)
        if not path.is_file():
            raise FsError("not found")
        return path.read_bytes()

    def delete(self, module_path: str) -> None:
        path = self.resolve(module_path)
        if not path.is_file():
            raise FsError("not found")
        path.unlink()

    def listing(self, module_path: str) -> list[tuple[str, int]]:
        folder = self.folder(module_path)
        return sorted((f.name, f.stat().st_size) for f in folder.iterdir()
                      if f.is_file() and not f.name.startswith("."))

    def xml_dir(self) -> Path:
        return self.root / "XML"
