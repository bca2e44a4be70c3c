import os

import pytest

from emulator.testing.host import EmulatorProcess

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture
def emu(tmp_path):
    """A fresh emulator process with its own state dir."""
    with EmulatorProcess(tmp_path / "state") as proc:
        yield proc


@pytest.fixture
def host(emu):
    h = emu.open()
    yield h
    h.close()
