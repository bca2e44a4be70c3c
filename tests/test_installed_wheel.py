"""Issue 8 §1: the package installs like any Python package, and works from the install alone.

A wheel built from the checkout (``pip wheel``, setuptools' own backend) is installed into a fresh
virtualenv outside the checkout (no editable install). From a folder that is not the checkout:
``telit-emu`` prints its ``port:`` line, answers ``OK`` to ``AT`` and registers with Leshan; and a
small host project runs pytest with the installed plugin's ``telit_module`` / ``telit_port``
fixtures, starting its Leshan server with the installed launcher (emulator/testing/leshan.py, whose
Java sources are package data). The sdist carries the same data. pip's cache keeps this fast.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tarfile
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest

from emulator.testing.host import AtHost

pytestmark = pytest.mark.leshan
ROOT = Path(__file__).resolve().parents[1]
OK = b"\r\nOK\r\n"
DATA = ["emulator/grammar/at.lark", "emulator/objects/3.xml", "emulator/objects/3303.xml", "emulator/py.typed",
        "emulator/testing/java/TelitEmuLeshanClient.java", "emulator/testing/java/TelitEmuLeshanBsServer.java"]


def _clean_env(**extra: str) -> dict:
    """The environment of a user's shell: nothing pointing into the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.update(extra)
    return env


def _run(cmd, *, cwd: Path, timeout: float = 600) -> str:
    res = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_clean_env(), capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"{cmd} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv bin dir, a folder outside the checkout) with the wheel installed."""
    base = tmp_path_factory.mktemp("installed-wheel")
    assert ROOT not in base.parents
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, ROOT], cwd=base)
    wheels = list(dist.glob("telit_lwm2m_emulator-*.whl"))
    assert len(wheels) == 1, wheels
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    missing = [n for n in DATA if n not in names]
    assert not missing, f"the wheel lacks {missing}"
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base)
    py = venv / "bin" / "python"
    # the checkout's pip installs into the fresh venv (faster than bootstrapping a pip in it)
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", f"{wheels[0]}[test]"], cwd=base)
    work = base / "elsewhere"
    work.mkdir()
    where = _run([py, "-c", "import emulator, sys; print(emulator.__file__)"], cwd=work).strip()
    assert Path(where).is_relative_to(venv), where          # the installed copy, not the checkout
    return py, venv / "bin", work


def test_sdist_carries_the_package_data(tmp_path):
    out = tmp_path / "sdist"
    _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; "
                                "print(b.build_sdist(sys.argv[1]))", out], cwd=ROOT)
    (sdist,) = out.glob("*.tar.gz")
    names = {n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n}
    for wanted in ("grammar/at.lark", "objects/3.xml", "objects/__init__.py", "grammar/__init__.py",
                   "emulator/py.typed", "emulator/testing/java/TelitEmuLeshanClient.java", "pyproject.toml"):
        assert wanted in names, wanted


def test_python_m_emulator_from_the_install(installed):
    py, _bin, work = installed
    assert "telit-emu" in _run([py, "-m", "emulator", "--help"], cwd=work)


def test_telit_emu_from_the_install_answers_and_registers(installed, leshan, tmp_path):
    _py, bindir, work = installed
    ep = f"wheel-{uuid.uuid4().hex[:10]}"
    stderr = tmp_path / "telit-emu.stderr"
    with open(stderr, "wb") as err:
        proc = subprocess.Popen([bindir / "telit-emu", "--state-dir", tmp_path / "state", "--time-scale", "4",
                                 "--lwm2m-server", leshan.coap_uri], cwd=work, env=_clean_env(),
                                stdout=subprocess.PIPE, stderr=err)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("port: "), (line, stderr.read_text())
        with AtHost(line.split(": ", 1)[1].strip()) as h:
            assert h.cmd("AT") == OK
            assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"').endswith(OK)
            assert h.cmd("AT#REBOOT").endswith(OK)
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1").endswith(OK)
            h.wait_for(rb'LWM2M-TLT:"REGISTERED"', timeout=30)
        assert leshan.wait_client(ep, timeout=30)["endpoint"] == ep
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        leshan.wait_gone(ep, timeout=10)
        text = stderr.read_text()
        assert "Traceback" not in text and "failed" not in text, text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()


HOST_TEST = '''
"""A host project's CI: its own code talks to the emulated module through the installed plugin."""
import uuid

import pytest

from emulator.testing.leshan import LeshanServer

OK = b"\\r\\nOK\\r\\n"


@pytest.fixture(scope="module")
def server():
    srv = LeshanServer()
    srv.start()
    yield srv
    srv.stop()


def test_module_answers(telit_port, telit_module):
    assert telit_module.port == telit_port.path
    assert telit_port.cmd("AT") == OK


def test_module_registers_with_my_server(telit_port, server):
    ep = "host-" + uuid.uuid4().hex[:8]
    for line in (f'AT#LWM2MSTS=0,999,"{server.coap_uri}",0', f'AT#LWM2MINJKEYS=0,1,"{ep}"', "AT#REBOOT"):
        assert telit_port.cmd(line).endswith(OK), line
    telit_port.wait_network()
    assert telit_port.cmd("AT#LWM2MENA=1").endswith(OK)
    telit_port.wait_for(b'LWM2M-TLT:"REGISTERED"', timeout=30)
    assert server.wait_client(ep, timeout=30)["endpoint"] == ep
'''


def test_host_project_uses_the_installed_plugin(installed, leshan_available, tmp_path):
    py, _bin, _work = installed
    project = tmp_path / "host-project"
    (project / "tests").mkdir(parents=True)
    (project / "tests" / "test_my_device.py").write_text(textwrap.dedent(HOST_TEST))
    out = _run([py, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--telit-emu-args=--time-scale 4",
                "tests"], cwd=project, timeout=300)
    assert "2 passed" in out, out


def test_every_package_of_the_tree_is_declared():
    """pyproject lists the packages by hand (it maps grammar/ and objects/ in): a new subpackage
    must be added there, or the wheel would lack it."""
    import tomllib
    declared = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "emulator").rglob("__init__.py")}
    assert found <= declared, found - declared
