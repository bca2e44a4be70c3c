"""The settings the AT profile commands keep, declared once with their profile section.

base: the profile's base section (&F resets it, &Y loads it)
ext:  the extended section (&F1 and &P also cover it)
"""
from __future__ import annotations

from typing import Any

# name: (factory value, section)
DECLARED: dict[str, tuple[Any, str]] = {
    "E": (1, "base"), "V": (1, "base"), "Q": (0, "base"), "X": (1, "base"),
    "&C": (1, "base"), "&D": (2, "base"), "&K": (3, "base"),
    "S0": (0, "base"), "S2": (43, "base"), "S3": (13, "base"), "S4": (10, "base"), "S5": (8, "base"),
    "S7": (50, "base"), "S10": (1, "base"), "S12": (50, "base"), "S25": (5, "base"), "S30": (0, "base"),
    "S38": (255, "base"),
    "+IPR": (115200, "base"),
    "+CMEE": (0, "ext"), "+CREG": (0, "ext"), "+CGREG": (0, "ext"), "+CEREG": (0, "ext"),
}

FACTORY = {k: v for k, (v, _) in DECLARED.items()}
BASE = [k for k, (_, s) in DECLARED.items() if s == "base"]
EXT = [k for k, (_, s) in DECLARED.items() if s == "ext"]


#: #WS46 (radio access: 0 Cat-M1, 1 NB-IoT, 2 both) as the factory sets it; the network reads it
WS46_FACTORY = (0,)


def held(nvm, name: str, factory: tuple) -> list:
    """The values a setting command (emulator/commands/settings.py) holds now: what NVM keeps under
    ``setting:<name>`` when it has the factory values' shape, else the factory values."""
    stored = nvm.get(f"setting:{name}")
    if not isinstance(stored, list) or len(stored) != len(factory) \
            or any(type(v) is not type(f) for v, f in zip(stored, factory)):
        return list(factory)            # never set, or a stored value of another shape
    return list(stored)


def hold(nvm, name: str, values: list) -> None:
    """Keep ``values`` as what setting command ``name`` holds (NVM ``setting:<name>``; this module is
    the only code that reads or writes those keys)."""
    nvm.set(f"setting:{name}", list(values))


class Settings:
    """Current values (volatile); profiles in NVM are snapshots of them."""

    def __init__(self):
        self.values: dict[str, Any] = dict(FACTORY)

    def get(self, name: str) -> Any:
        return self.values[name]

    def set(self, name: str, value: Any) -> None:
        if name not in DECLARED:
            raise KeyError(name)
        self.values[name] = value

    def snapshot(self) -> dict[str, Any]:
        return dict(self.values)

    def load(self, stored: dict[str, Any] | None, sections: tuple[str, ...]) -> None:
        for name, (factory, section) in DECLARED.items():
            if section in sections:
                v = (stored or {}).get(name, factory)
                self.values[name] = v if isinstance(v, type(factory)) else factory

    def factory(self, sections: tuple[str, ...]) -> None:
        self.load(None, sections)
