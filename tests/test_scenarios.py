"""Issue 11: fault scenarios on the module clock, against a real Leshan (and its bootstrap server)."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import time

import pytest

from emulator.scenarios.format import ScenarioError, parse
from emulator.scenarios.runner import library, missing_needs, run_scenario
from emulator.scenarios.format import load

LIB = library()


@pytest.fixture(scope="module")
def bootstrap_server(leshan_available):
    from emulator.testing.leshan import LeshanBootstrapServer
    bs = LeshanBootstrapServer()
    bs.start()
    yield bs
    bs.stop()


def _run(scenario, **kw):
    lines: list[str] = []
    ok = asyncio.run(run_scenario(scenario, out=lines.append, **kw))
    return ok, lines


def test_library_has_at_least_12_scenarios_each_with_its_field_problem():
    assert len(LIB) >= 12
    for name, path in LIB.items():
        sc = load(path)
        assert sc.description.endswith("."), name


def test_whole_library_passes_stepped_against_leshan(leshan, bootstrap_server):
    t0 = time.monotonic()
    failures = {}
    for name, path in LIB.items():
        sc = load(path)
        server = leshan.coaps_uri if "coaps" in sc.needs else leshan.coap_uri
        ok, lines = _run(sc, server=server, bootstrap=bootstrap_server.coap_uri, stepped=True)
        if not ok:
            failures[name] = lines
    wall = time.monotonic() - t0
    print(f"library ({len(LIB)} scenarios) --stepped wall time: {wall:.1f} s")
    assert not failures, failures
    assert wall < 60


def test_wrong_expect_fails_naming_the_step(leshan):
    text = LIB["signal_fades"].read_text().replace("'^\\+CSQ: 2,'", "'^\\+CSQ: 3,'")
    sc = parse(text, "wrong.toml")
    ok, lines = _run(sc, server=leshan.coap_uri)
    assert not ok
    lines_of = text.splitlines()
    wrong = next(n for n, raw in enumerate(lines_of, 1) if "CSQ: 3" in raw)
    header = max(n for n, raw in enumerate(lines_of[:wrong], 1) if raw.strip() == "[[step]]")
    assert lines[-1].startswith(f"FAILED at line {header} (send AT+CSQ, expect /^\\+CSQ: 3,/)"), lines
    assert "no line matched" in lines[-1]


def test_lossy_scenario_twice_same_seed_byte_identical_traces(leshan, tmp_path):
    sc = load(LIB["lossy_link_registers"])
    a, b = tmp_path / "a.trace", tmp_path / "b.trace"
    assert _run(sc, server=leshan.coap_uri, record=str(a))[0]
    assert _run(sc, server=leshan.coap_uri, record=str(b))[0]
    ta, tb = a.read_bytes(), b.read_bytes()
    assert b"coap up lost" in ta          # the loss did happen, and was retransmitted through
    assert ta == tb


def test_missing_needs_are_named():
    sc = load(LIB["bootstrap_server_down"])
    assert missing_needs(sc, "coap://127.0.0.1:5683", None) == ["bootstrap (give --bootstrap-server URI)"]
    proc = subprocess.run([sys.executable, "-m", "emulator", "scenario", "run", "dtls_handshake_failure"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "coaps" in proc.stderr


def test_unknown_fault_and_parameter_name_the_line():
    with pytest.raises(ScenarioError, match=r":3: unknown fault 'link.lose'"):
        parse('[[step]]\nat = 0\nfault = "link.lose"\n')
    with pytest.raises(ScenarioError, match=r":4: unknown key 'rat'"):
        parse('[[step]]\nat = 0\nfault = "link.loss"\nrat = 0.3\n')
    with pytest.raises(ScenarioError, match=r":3: link.loss: rate must be within"):
        parse('[[step]]\nat = 0\nfault = "link.loss"\nrate = 3\n')


def test_scenario_list_cli():
    proc = subprocess.run([sys.executable, "-m", "emulator", "scenario", "list"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) >= 12 and "server_down_at_boot:" in proc.stdout
