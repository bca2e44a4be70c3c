"""pytest fixtures for host-software CI: an emulated module on a real PTY, per test.

Installed with the package (entry point ``pytest11``), so a host project's tests can simply ask for:

    def test_my_driver_talks_to_the_module(telit_port):
        my_driver = MyDriver(telit_port.path)          # open the PTY like a real UART
        ...

``telit_module`` is the emulator process (``.port`` is the PTY path, ``.stderr_text()`` its log,
``.fault("network.detach")`` / ``.fault("link.loss", rate=0.3)`` / ``.clear(name)`` apply and end faults
of the catalogue through its control socket, ``.control({...})`` sends any control request);
``telit_port`` is a pyserial-based host helper already opened on it (``.cmd("AT")`` ...).
Options: ``--telit-emu-args="--time-scale 10 --lwm2m-server coap://127.0.0.1:5683"`` adds emulator
arguments to every module started.
"""
from __future__ import annotations

import shlex

import pytest

from .host import EmulatorProcess


def pytest_addoption(parser):
    group = parser.getgroup("telit-emu", "Telit LwM2M modem emulator")
    group.addoption("--telit-emu-args", default="", help="extra telit-emu arguments for each emulated module")


@pytest.fixture
def telit_module(request, tmp_path):
    """A fresh emulated module (own NVM and file system) for one test."""
    args = shlex.split(request.config.getoption("--telit-emu-args") or "")
    marker = request.node.get_closest_marker("telit_emu")
    if marker:
        args += list(marker.args)
    with EmulatorProcess(tmp_path / "telit-module", *args) as proc:
        yield proc


@pytest.fixture
def telit_port(telit_module):
    """The module's port, opened with pyserial; echo is on, as after power-up."""
    host = telit_module.open()
    host.path = telit_module.port
    yield host
    host.close()


def pytest_configure(config):
    config.addinivalue_line("markers", "telit_emu(*args): extra telit-emu arguments for this test's module")
