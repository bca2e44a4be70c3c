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


def _leshan_available() -> str | None:
    import shutil
    missing = [t for t in ("java", "mvn") if shutil.which(t) is None]
    return ", ".join(missing) or None


@pytest.fixture(scope="session")
def leshan_available():
    """Java and Maven are there (in CI they must be: a missing one fails, never skips)."""
    missing = _leshan_available()
    if missing:
        if IN_CI:
            pytest.fail(f"Leshan tests must run in CI but {missing} is missing")
        pytest.skip(f"Leshan needs {missing}")


@pytest.fixture(scope="session")
def leshan(leshan_available):
    """One real Eclipse Leshan demo server for the session (fetched with mvn on first use)."""
    from emulator.testing.leshan import LeshanServer
    server = LeshanServer()
    server.start()
    yield server
    server.stop()
