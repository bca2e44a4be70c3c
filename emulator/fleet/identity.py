"""Consecutive module identities for fleets: IMEI and ICCID with valid Luhn check digits, IMSI.

Bases are full numbers as printed by a module (an IMEI of 15 digits, an ICCID of 19 or 20 digits,
check digit included; an IMSI of 15 digits). Modem ``index`` gets ``base + index`` in the digits before
the check digit, with a fresh check digit (3GPP TS 23.003 section 6.2 for the IMEI's Luhn digit,
ITU-T E.118 for the ICCID's). A number that would need more digits than its base is an error.
"""
from __future__ import annotations

from dataclasses import dataclass


class IdentityError(ValueError):
    pass


def luhn_digit(body: str) -> str:
    """The Luhn check digit for a string of decimal digits."""
    total = 0
    for pos, ch in enumerate(reversed(body)):
        d = int(ch)
        if pos % 2 == 0:              # the digit left of the check digit is doubled
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_digit(number[:-1]) == number[-1]


def _offset(body: str, index: int, what: str) -> str:
    if not body.isdigit():
        raise IdentityError(f"{what} base must be decimal digits: {body!r}")
    value = int(body) + index
    out = str(value).rjust(len(body), "0")
    if len(out) > len(body):
        raise IdentityError(f"{what} base {body} + {index} overflows {len(body)} digits")
    return out


def imei(base: str, index: int) -> str:
    """The IMEI of modem ``index``: 14 digits (TAC + serial) counted up from ``base``, plus Luhn."""
    if len(base) not in (14, 15):
        raise IdentityError(f"IMEI base must have 14 or 15 digits: {base!r}")
    body = _offset(base[:14], index, "IMEI")
    return body + luhn_digit(body)


def iccid(base: str, index: int) -> str:
    """The ICCID of modem ``index``: ``base`` (19 or 20 digits with its check digit) counted up."""
    if len(base) not in (19, 20):
        raise IdentityError(f"ICCID base must have 19 or 20 digits: {base!r}")
    body = _offset(base[:-1], index, "ICCID")
    return body + luhn_digit(body)


def imsi(base: str, index: int) -> str:
    """The IMSI of modem ``index``: ``base`` (MCC + MNC + MSIN, 6 to 15 digits) counted up."""
    if not 6 <= len(base) <= 15:
        raise IdentityError(f"IMSI base must have 6 to 15 digits: {base!r}")
    return _offset(base, index, "IMSI")


@dataclass(frozen=True)
class Identity:
    """What makes one fleet modem distinct: its index in the whole fleet and its numbers."""
    index: int
    imei: str
    imsi: str
    iccid: str
    endpoint: str


@dataclass(frozen=True)
class IdentityPlan:
    """How indexes map to identities (the same plan in every process and shard of a fleet)."""
    imei_base: str = "354938100000002"
    imsi_base: str = "001010100000000"
    iccid_base: str = "89882390000100000002"
    endpoint_prefix: str | None = None

    def validate(self, count: int) -> None:
        """IdentityError when a base is malformed or the last index would overflow it."""
        for fn, base in ((imei, self.imei_base), (imsi, self.imsi_base), (iccid, self.iccid_base)):
            fn(base, 0)
            fn(base, max(0, count - 1))

    def identity(self, index: int) -> Identity:
        number = imei(self.imei_base, index)
        ep = f"{self.endpoint_prefix}{index}" if self.endpoint_prefix is not None else number
        return Identity(index, number, imsi(self.imsi_base, index), iccid(self.iccid_base, index), ep)


def shard_slice(count: int, shard_index: int, shard_count: int) -> range:
    """The global indexes of shard ``shard_index`` of ``shard_count``: contiguous, disjoint, covering."""
    if shard_count < 1 or not 0 <= shard_index < shard_count:
        raise IdentityError(f"shard {shard_index} of {shard_count} does not exist")
    return range(count * shard_index // shard_count, count * (shard_index + 1) // shard_count)
