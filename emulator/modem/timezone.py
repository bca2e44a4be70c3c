"""The module's time zone: the one record behind +CCLK's ``zz`` field and LwM2M /3/0/14 (UTC Offset).

Kept in NVM section ``tz_quarters``: the offset from UTC in quarter hours, an int in -96..96 (shape
checked by emulator/modem/nvm.py). This module is the only code that reads or writes that key; the
modem holds the current record as ``modem.timezone`` (:class:`emulator.modem.core.Modem`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .nvm import section_ok

TZ_QUARTERS = "tz_quarters"


@dataclass(frozen=True)
class TimeZone:
    """``quarters``: offset from UTC in quarter hours (+CCLK ``zz``, 3GPP TS 27.007 8.15); 0 at the
    factory."""

    quarters: int = 0

    @property
    def minutes(self) -> int:
        return self.quarters * 15

    @property
    def utc_offset(self) -> str:
        """As LwM2M /3/0/14 shows it: ``+HH:MM`` / ``-HH:MM``."""
        sign = "+" if self.minutes >= 0 else "-"
        return f"{sign}{abs(self.minutes) // 60:02d}:{abs(self.minutes) % 60:02d}"

    @classmethod
    def load(cls, nvm: Any) -> "TimeZone":
        """The record NVM keeps; the factory value when none is kept or it has the wrong shape."""
        stored = nvm.get(TZ_QUARTERS)
        if stored is None or not section_ok(TZ_QUARTERS, stored):
            return cls()
        return cls(int(stored))

    def save(self, nvm: Any) -> None:
        """Keep this record (raises :class:`emulator.modem.nvm.NvmFull` / OSError when NVM cannot)."""
        nvm.set(TZ_QUARTERS, int(self.quarters))
