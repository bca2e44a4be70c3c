"""The module's file system as far as host software sees it: the /XML/ folder of custom object models."""
from __future__ import annotations

import os
import re
from pathlib import Path

FOLDERS = ("XML",)
_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
CAPACITY = 1024 * 1024     # bytes the emulated file system offers


class FsError(Exception):
    pass


class FileSystem:
    def __init__(self, root: Path):
        self.root = Path(root)
        for folder in FOLDERS:
            (self.root / folder).mkdir(parents=True, exist_ok=True)

    def resolve(self, module_path: str) -> Path:
        """'/XML/name.xml' (or 'XML/name.xml') -> host path; FsError for anything else."""
        parts = [p for p in module_path.strip().split("/") if p]
        if len(parts) != 2 or parts[0].upper() not in FOLDERS or not _NAME.match(parts[1]) \
                or parts[1] in (".", ".."):
            raise FsError(module_path)
        return self.root / parts[0].upper() / parts[1]

    def folder(self, module_path: str) -> Path:
        parts = [p for p in module_path.strip().split("/") if p]
        if len(parts) != 1 or parts[0].upper() not in FOLDERS:
            raise FsError(module_path)
        return self.root / parts[0].upper()

    def used(self) -> int:
        return sum(f.stat().st_size for folder in FOLDERS for f in (self.root / folder).iterdir() if f.is_file())

    def free(self) -> int:
        return max(0, CAPACITY - self.used())

    def write(self, module_path: str, data: bytes) -> None:
        path = self.resolve(module_path)
        old = path.stat().st_size if path.exists() else 0
        if len(data) - old > self.free():
            raise FsError("no space")
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

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
