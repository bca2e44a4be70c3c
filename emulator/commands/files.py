"""The module file system for custom object models: #M2MWRITE #M2MREAD #M2MLIST #M2MDEL."""
from __future__ import annotations

from ..at.errors import AtError
from ..at.registry import Family, Int, Str
from ..modem.fs import FsError

family = Family()

MAX_FILE = 64 * 1024
DATA_TIME_BASE = 5.0          # s: the data phase's time limit, from the prompt, is this ...
DATA_BAUD = 9600              # ... plus the payload's time at this rate (10 bits a byte): 64 KiB -> 73 s


def data_time_limit(size: int) -> float:
    """Seconds (module clock) from the >>> prompt within which all `size` bytes must come; then the
    command ends with ERROR and the port is back in command mode."""
    return DATA_TIME_BASE + size * 10 / DATA_BAUD

UNABLE_TO_OPEN = 1102
NO_SPACE = 20
PROMPT = b"\r\n>>>"

m2mwrite = family.command("#M2MWRITE", Str("file", max_len=128, optional=False),
                          Int("size", (1, MAX_FILE), optional=False),
                          test_answer=f'#M2MWRITE: "",(1-{MAX_FILE})')


@m2mwrite.set
async def _(ctx, name, size):
    fs = ctx.modem.fs
    try:
        fs.resolve(name)
    except FsError:
        raise AtError(UNABLE_TO_OPEN) from None
    ctx.write_raw(PROMPT)
    # the data phase starts: scenarios may cut the power in the middle of the payload
    ctx.modem.events.emit("m2mwrite", file=name, size=size)
    data = await ctx.read_raw(size, data_time_limit(size))
    try:
        fs.write(name, data)
    except FsError:
        raise AtError(NO_SPACE) from None


m2mread = family.command("#M2MREAD", Str("file", max_len=128, optional=False), test_answer="")


@m2mread.set
def _(ctx, name):
    try:
        data = ctx.modem.fs.read(name)
    except FsError:
        raise AtError(UNABLE_TO_OPEN) from None
    # the content follows a prompt line, byte for byte
    ctx.write_raw(PROMPT + data)


m2mdel = family.command("#M2MDEL", Str("file", max_len=128, optional=False), test_answer="")


@m2mdel.set
def _(ctx, name):
    try:
        ctx.modem.fs.delete(name)
    except FsError:
        raise AtError(UNABLE_TO_OPEN) from None


m2mlist = family.command("#M2MLIST", Str("folder", max_len=128), test_answer="")


def _listing(ctx, folder):
    fs = ctx.modem.fs
    try:
        entries = fs.listing(folder)
    except FsError:
        raise AtError(UNABLE_TO_OPEN) from None
    lines = [f'#M2MLIST: "{name}",{size}' for name, size in entries]
    lines.append(f"#M2MLIST: free bytes: {fs.free()}")
    return lines


@m2mlist.set
def _(ctx, folder):
    return _listing(ctx, folder or "/XML/")


@m2mlist.exec
def _(ctx):
    return _listing(ctx, "/XML/")
