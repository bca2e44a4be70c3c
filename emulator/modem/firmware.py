"""The firmware revision the module runs after a firmware update (FOTA, LwM2M /5).

Kept in NVM section ``firmware_revision``: the revision string (1..64 characters) of the last image a
firmware update installed; absent while the module runs its factory image (the profile's
``identity.revision``). This module is the only code that reads or writes that key: the modem shows it
(``modem.firmware_revision``: +CGMR, #CGMR, /3/0/3) and the FOTA engine installs through
``modem.install_firmware``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .nvm import section_ok

FIRMWARE_REVISION = "firmware_revision"


@dataclass(frozen=True)
class FirmwareRecord:
    """``installed``: the revision a firmware update installed, None for the factory image."""

    installed: str | None = None

    @classmethod
    def load(cls, nvm: Any) -> "FirmwareRecord":
        """The record NVM keeps; the factory value when none is kept or it has the wrong shape."""
        stored = nvm.get(FIRMWARE_REVISION)
        if stored is None or not section_ok(FIRMWARE_REVISION, stored):
            return cls()
        return cls(stored)

    def save(self, nvm: Any) -> None:
        """Keep this record (the factory image: no section)."""
        if self.installed is None:
            nvm.delete(FIRMWARE_REVISION)
        else:
            nvm.set(FIRMWARE_REVISION, self.installed)
