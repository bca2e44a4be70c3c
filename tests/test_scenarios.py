"""Issue 11: fault scenarios on the module clock, against a real Leshan (and its bootstrap server)."""
from __future__ import annotations

import asyncio
import os
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


def test_fault_through_control_socket_while_host_talks_to_pty(tmp_path):
    """network.detach / attach and sim.remove through `telit-emu ctl`-style requests while a pyserial
    host keeps using the PTY: the host sees the module leave and rejoin the network."""
    import os
    import stat
    from emulator.testing.host import EmulatorProcess
    with EmulatorProcess(tmp_path / "s") as emu, emu.open() as h:
        assert stat.S_IMODE(os.stat(emu.control_path).st_mode) == 0o600
        h.wait_network()
        assert h.cmd("AT+CEREG=1").endswith(b"OK\r\n")
        assert emu.fault("network.detach") == {}
        h.wait_for(rb"\+CEREG: 2\r\n")
        assert b"+CEREG: 1,2" in h.cmd("AT+CEREG?")
        emu.clear("network.detach")
        h.wait_for(rb"\+CEREG: 1\r\n")
        assert emu.fault("network.signal", rssi=3) == {"rssi": 3}
        assert b"+CSQ: 3," in h.cmd("AT+CSQ")
        with pytest.raises(RuntimeError, match="unknown fault"):
            emu.fault("network.explode")
        with pytest.raises(RuntimeError, match="not stepped"):
            emu.advance(5)
        proc = subprocess.run([sys.executable, "-m", "emulator", "ctl", "--state-dir", str(emu.state_dir),
                               "fault", "sim.remove"], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
        h.wait_for(rb"\+CEREG: 0\r\n")                 # the SIM is gone: not registered, not searching
        assert h.cmd("AT+CMEE=1;+CPIN?").endswith(b"+CME ERROR: 10\r\n")


def test_manual_clock_advances_through_control(tmp_path):
    from emulator.testing.host import EmulatorProcess
    with EmulatorProcess(tmp_path / "s", "--manual-clock") as emu, emu.open() as h:
        assert b"+CEREG: 0,2" in h.cmd("AT+CEREG?")          # attach delay not over: time stands still
        assert emu.advance(5) == 5.0
        assert b"+CEREG: 0,1" in h.cmd("AT+CEREG?")


def test_explicit_control_path_that_cannot_be_used_fails_loudly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "emulator", "--state-dir", str(tmp_path / "s"), "--control",
                           str(tmp_path / "no" / "such" / "dir" / "c.sock")], capture_output=True, text=True,
                          timeout=30)
    assert proc.returncode == 2 and "control socket" in proc.stderr


def test_recorded_trace_replays_and_an_edited_module_line_is_named(leshan, tmp_path):
    rec = tmp_path / "r.trace"
    assert _run(load(LIB["signal_fades"]), server=leshan.coap_uri, record=str(rec))[0]
    from emulator.scenarios.replay import replay
    out: list[str] = []
    assert asyncio.run(replay(str(rec), server=leshan.coap_uri, out=out.append)) == 0, out
    lines = rec.read_text().splitlines()
    n = next(i for i, l in enumerate(lines) if "module->host" in l and "+CSQ: 2," in l)
    lines[n] = lines[n].replace("+CSQ: 2,", "+CSQ: 9,")
    edited = tmp_path / "e.trace"
    edited.write_text("\n".join(lines) + "\n")
    out.clear()
    assert asyncio.run(replay(str(edited), server=leshan.coap_uri, out=out.append)) == 1
    assert out[-1].startswith(f"{edited}:{n + 1}: the module's answer differs at byte "), out


def test_host_and_module_only_capture_replays(tmp_path):
    cap = tmp_path / "cap.log"
    cap.write_text("2026-01-01T10:00:00.000 host->module b'ATE0\\r'\n"
                   "2026-01-01T10:00:00.010 module->host b'ATE0\\r\\r\\nOK\\r\\n'\n"
                   "2026-01-01T10:00:01.000 host->module b'AT+CGMI\\r'\n"
                   "2026-01-01T10:00:01.010 module->host b'\\r\\nTelit\\r\\n\\r\\nOK\\r\\n'\n")
    from emulator.scenarios.replay import replay
    out: list[str] = []
    assert asyncio.run(replay(str(cap), out=out.append)) == 0, out
    masked = tmp_path / "m.log"
    masked.write_text("0.000 host->module masked b'AT#LWM2MINJKEYS***\\r'\n")
    assert asyncio.run(replay(str(masked), out=out.append)) == 2
    assert "give --secret" in out[-1]


async def _rig(tmp_path, **layer_kw):
    """An in-process modem on a stepped clock with a fault layer, attached to the network: (clock, port,
    modem, layer, lines), lines collecting what the module writes."""
    from emulator.fleet.port import LinePort
    from emulator.modem.core import Modem
    from emulator.scenarios.faults import FaultLayer
    from emulator.scenarios.stepped import SteppedClock
    clock = SteppedClock()
    port = LinePort()
    modem = Modem(port, tmp_path / "s", clock=clock)
    layer = FaultLayer(modem, 1, **layer_kw)
    lines: list[str] = []
    port.tap.listen(lines.append)
    modem.start()
    await clock.advance(3)
    return clock, port, modem, layer, lines


def test_every_fault_applies_and_clears_on_a_modem_without_server(tmp_path):
    """Each catalogue fault with its defaults, on an in-process modem (stepped clock): no exception,
    the module still answers AT, lasting ones clear."""
    from emulator.scenarios.faults import CATALOGUE, FaultError

    async def main():
        clock, port, modem, layer, lines = await _rig(tmp_path)
        for name, fault in CATALOGUE.items():
            if name == "server.request":
                with pytest.raises(FaultError, match="no server session"):
                    layer.apply(name)
                continue
            layer.apply(name)
            await clock.advance(3)
            if fault.lasting:
                layer.clear(name)
            lines.clear()
            port.feed(b"AT\r")
            await clock.advance(0.1)
            assert "OK" in lines, (name, lines)
        modem.close()
    asyncio.run(main())


def test_live_scenario_refuses_send_steps(tmp_path):
    f = tmp_path / "live.toml"
    f.write_text('[[step]]\nat = 0\nsend = "AT"\n')
    proc = subprocess.run([sys.executable, "-m", "emulator", "--state-dir", str(tmp_path / "s"), "--scenario",
                           str(f)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "refused" in proc.stderr and "lines 1" in proc.stderr


def test_live_scenario_runs_faults_while_the_host_drives_the_port(tmp_path):
    from emulator.testing.host import EmulatorProcess
    f = tmp_path / "live.toml"
    f.write_text('[scenario]\nseed = 3\n[[step]]\nat = 5\nfault = "network.detach"\nexpect = "^\\\\+CEREG: 2"\n'
                 '[[step]]\nafter = 5\nclear = "network.detach"\n')
    with EmulatorProcess(tmp_path / "s", "--scenario", str(f), "--time-scale", "5") as emu, emu.open() as h:
        assert h.cmd("AT+CEREG=1").endswith(b"OK\r\n")
        h.wait_for(rb"\+CEREG: 2\r\n", timeout=10)
        h.wait_for(rb"\+CEREG: 1\r\n", timeout=10)
        deadline = time.monotonic() + 10
        while "done: every expectation held" not in emu.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "scenario: done: every expectation held" in emu.stderr_text(), emu.stderr_text()


def test_stepped_clock_waits_for_a_real_peer_that_answers_late(tmp_path):
    """The server holds its answer to Register for 0.3 s of real time: with --stepped the module's
    clock does not move on meanwhile (no retransmission, no timeout), the exchange completes."""
    import threading
    from emulator.testing.raw_server import RawServer
    sc = parse('[scenario]\nseed = 1\n[[step]]\nat = 3\nsend = "AT#LWM2MENA=1"\n'
               'expect = \'LWM2M-TLT:"REGISTERED"\'\nwithin = 300\n', "late.toml")
    rec = tmp_path / "late.trace"
    with RawServer() as srv:
        srv.hold("register")

        def release():
            srv.wait("register", timeout=30)
            time.sleep(0.3)
            srv.release("register")
        t = threading.Thread(target=release, daemon=True)
        t.start()
        ok, lines = _run(sc, server=srv.uri, record=str(rec))
        t.join(5)
    assert ok, lines
    text = rec.read_text()
    assert text.count("coap up CON POST /rd?") == 1, text      # never retransmitted


def test_power_cut_during_an_m2mwrite_payload(tmp_path):
    """power.cut point=m2mwrite: the supply goes once the >>> prompt is out; the file is not written (an
    older file of that name keeps its content), the rest of the payload gets no answer, and after the
    power comes back the module answers AT again."""

    async def main():
        clock, port, modem, layer, lines = await _rig(tmp_path)
        port.feed(b'AT#M2MWRITE="/XML/a.xml",3\r')
        await clock.advance(0.1)
        port.feed(b"old")
        await clock.advance(0.1)
        assert modem.fs.read("/XML/a.xml") == b"old"
        layer.apply("power.cut", point="m2mwrite", off=2.0)
        lines.clear()
        port.feed(b'AT#M2MWRITE="/XML/a.xml",6\r')
        await clock.advance(0.1)
        assert ">>>" in lines and not modem.powered            # prompt out, then the supply went
        lines.clear()
        port.feed(b"newnew")
        await clock.advance(0.5)
        assert lines == []                                     # the payload reached a dead module
        await clock.advance(2)
        assert modem.powered and modem.fs.read("/XML/a.xml") == b"old"
        port.feed(b"AT\r")
        await clock.advance(0.1)
        assert "OK" in lines, lines
        modem.close()
    asyncio.run(main())


def test_live_scenario_checks_what_the_server_received(tmp_path):
    """--scenario with a real host: expect_server watches what left the module at the seam."""
    from emulator.testing.host import EmulatorProcess
    from emulator.testing.raw_server import RawServer
    f = tmp_path / "live.toml"
    f.write_text('[scenario]\nseed = 1\n[[step]]\nat = 0\nexpect_server = { method = "POST", path = "^/rd" }\n'
                 'within = 60\n')
    with RawServer() as srv, EmulatorProcess(tmp_path / "s", "--scenario", str(f), "--lwm2m-server", srv.uri) as emu, \
            emu.open() as h:
        h.wait_network()
        assert h.cmd("AT#LWM2MENA=1").endswith(b"OK\r\n")
        h.wait_for(rb'LWM2M-TLT:"REGISTERED"', timeout=30)
        deadline = time.monotonic() + 10
        while "scenario: done" not in emu.stderr_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "scenario: done: every expectation held" in emu.stderr_text(), emu.stderr_text()


def test_fault_layer_review_cases(tmp_path):
    """A module without power says nothing; a reordered datagram stays in its flow and is sent once; an
    armed power cut and a pending NVM corruption can be cleared; non-finite numbers are refused; fault
    lines keep spaces and newlines of their values in the trace."""
    import math

    from emulator.scenarios.faults import FaultError
    from emulator.scenarios.trace import _fault_params

    async def main():
        notes: list[str] = []
        clock, port, modem, layer, lines = await _rig(tmp_path, note=notes.append)
        # no power: no echo, no answer; the supply back: answers again
        layer.apply("power.cut", off=5.0)
        port.feed(b"AT\r")
        await clock.advance(1)
        assert lines == [] and not modem.powered
        await clock.advance(5)
        port.feed(b"AT\r")
        await clock.advance(0.1)
        assert "OK" in lines
        # reorder: a held upward datagram never comes back downward, and clearing sends it once
        layer.apply("link.reorder", rate=1.0)
        released = []
        layer._release = lambda direction, data, peer: released.append((direction, data, peer))
        assert layer._faults("up", b"UP-1", ("srvA", 5683)) == []            # held
        assert layer._faults("down", b"DOWN-1", ("srvB", 5683)) == []        # held, another flow
        assert released == []
        assert layer._faults("up", b"UP-2", ("srvA", 5683)) == [(0.0, b"UP-2")]
        assert released == [("up", b"UP-1", ("srvA", 5683))]                 # its own way
        layer.clear("link.reorder")
        assert released[1:] == [("down", b"DOWN-1", ("srvB", 5683))]
        await clock.advance(5)                                               # no second copy later
        assert len(released) == 2
        del layer._release
        # an armed cut, cleared, never strikes; a pending NVM corruption, cleared, never happens
        layer.apply("power.cut", point="nvm_write", off=1.0)
        layer.clear("power.cut")
        layer.apply("nvm.corrupt")
        layer.clear("nvm.corrupt")
        lines.clear()
        port.feed(b'AT+CGDCONT=2,"IP","apn2"\r')
        await clock.advance(0.1)
        assert "OK" in lines and modem.powered
        modem.reboot()
        await clock.advance(3)
        assert modem.nvm.problem is None and modem.nvm.get("cgdcont") is not None
        # numbers must be finite
        for name, params in (("clock.jump", {"seconds": math.nan}), ("power.cut", {"off": math.inf})):
            with pytest.raises(FaultError):
                layer.apply(name, **params)
        # a value with spaces and a newline stays one parameter in the trace
        notes.clear()
        with pytest.raises(FaultError):          # no server session: not traced as applied
            layer.apply("server.request", path="/3/0", payload="a b\nc")
        assert notes == []
        layer.apply("power.battery", level=50)
        line = notes[-1]
        assert "\n" not in line and line.startswith("fault power.battery ")
        assert _fault_params(line[len("fault power.battery"):])["level"] == 50
        assert _fault_params(' payload="a b\\nc" rate=0.3') == {"payload": "a b\nc", "rate": 0.3}
        modem.close()
    asyncio.run(main())
    with pytest.raises(ScenarioError, match="finite|number"):
        parse('[[step]]\nat = nan\nsend = "AT"\n', "n.toml")
    with pytest.raises(ScenarioError):
        parse('[[step]]\nat = 0\nsend = "AT"\nwithin = inf\n', "n.toml")


def test_replay_of_a_broken_file_cannot_run(tmp_path):
    for n, text in enumerate((b"0.0 host->module b'\\x'\n", b"\xff\xfe\x00", b'1.0 fault link.loss rate\n')):
        f = tmp_path / f"bad{n}.trace"
        f.write_bytes(text)
        r = subprocess.run([sys.executable, "-m", "emulator", "replay", str(f)], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, (text, r.stderr)


def test_the_trace_file_is_private_and_never_followed_through_a_link(tmp_path):
    from emulator.scenarios.trace import Trace
    loose = tmp_path / "loose.trace"
    loose.write_text("old")
    os.chmod(loose, 0o644)
    Trace(loose, lambda: 0.0).fh.close()
    assert (loose.stat().st_mode & 0o777) == 0o600
    target = tmp_path / "target"
    target.write_text("keep")
    (tmp_path / "link.trace").symlink_to(target)
    with pytest.raises(OSError):
        Trace(tmp_path / "link.trace", lambda: 0.0)
    assert target.read_text() == "keep"
