"""Fleet mode: identities, the scenario steps fleets run, the control socket, and whole fleets
registering with a real Leshan demo server (`telit-emu fleet` as a user runs it)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import serial

from emulator.fleet.identity import IdentityError, IdentityPlan, iccid, imei, luhn_digit, luhn_valid, shard_slice
from emulator.fleet.port import LineTap
from emulator.scenarios.format import ScenarioError, parse


# ---------------------------------------------------------------------------- identities
def test_luhn_matches_the_3gpp_example_and_counts_up():
    assert luhn_digit("49015420323751") == "8"            # TS 23.003 Annex B example IMEI
    assert luhn_valid("490154203237518") and not luhn_valid("490154203237519")
    assert imei("490154203237518", 0) == "490154203237518"
    numbers = [imei("490154203237518", i) for i in range(1000)]
    assert len(set(numbers)) == 1000 and all(luhn_valid(n) and len(n) == 15 for n in numbers)
    assert [n[:14] for n in numbers[:3]] == ["49015420323751", "49015420323752", "49015420323753"]
    cards = [iccid("89882390000100000002", i) for i in range(100)]
    assert all(luhn_valid(c) and len(c) == 20 for c in cards) and len(set(cards)) == 100


def test_identity_overflow_and_bad_bases_are_errors():
    with pytest.raises(IdentityError):
        imei("999999999999994", 1)
    with pytest.raises(IdentityError):
        IdentityPlan(imei_base="12345").validate(1)
    with pytest.raises(IdentityError):
        IdentityPlan(imsi_base="00101999999999x").validate(1)


def test_shards_are_disjoint_and_cover_the_fleet():
    for count, shards in ((10, 3), (10_000, 7), (5, 8)):
        seen = [i for k in range(shards) for i in shard_slice(count, k, shards)]
        assert seen == list(range(count))
    with pytest.raises(IdentityError):
        shard_slice(10, 3, 3)
    plan = IdentityPlan(endpoint_prefix="ep-")
    assert plan.identity(41).endpoint == "ep-41"
    assert IdentityPlan().identity(41).endpoint == IdentityPlan().identity(41).imei


# ---------------------------------------------------------------------------- scenario steps
def test_scenario_errors_name_the_line():
    text = '[scenario]\nname = "x"\n\n[[step]]\nat = 0\nsend = "AT"\n\n[[step]]\nafter = 1\nsned = "AT"\n'
    with pytest.raises(ScenarioError, match=r"f\.toml:10: unknown key 'sned'"):
        parse(text, "f.toml")
    with pytest.raises(ScenarioError, match=r":3: unknown key 'sed'"):
        parse('[scenario]\nname = "x"\nsed = 1\n', "g.toml")
    with pytest.raises(ScenarioError, match=r":6: unknown fault 'server.unreachabl'"):
        parse('[scenario]\nname = "x"\n\n[[step]]\nat = 0\nfault = "server.unreachabl"\n', "h.toml")
    with pytest.raises(ScenarioError, match="repeat"):
        parse('[[step]]\nat = 0\nsend = "AT"\nrepeat = { every = 0, times = 2 }\n', "i.toml")


def test_scenario_parses_steps():
    sc = parse('[scenario]\nname = "n"\nseed = 3\n[[step]]\nat = 2\nsend = "AT"\nexpect = "^OK$"\n'
               'within = 4\nrepeat = { every = 60, times = 3 }\n[[step]]\nafter = 5\nwait = 1\n')
    a, b = sc.steps
    assert (sc.name, sc.seed, a.at, a.send, a.within, a.every, a.times) == ("n", 3, 2.0, "AT", 4.0, 60.0, 3)
    assert a.expect.search("OK") and b.after == 5.0 and b.wait == 1.0


def test_line_tap_cuts_lines_across_writes():
    tap, got = LineTap(), []
    tap.listen(got.append)
    for chunk in (b"AT+CG", b"SN\r", b"\r\n3549", b"38100000002\r\n\r\nOK\r", b"\n", b"\r\n>>>"):
        tap.write(chunk)
    assert got == ["AT+CGSN", "354938100000002", "OK", ">>>"]


# ---------------------------------------------------------------------------- whole fleets, real Leshan
def _fleet(tmp_path: Path, *args: str) -> subprocess.Popen:
    err = open(tmp_path / "fleet.stderr", "ab")
    return subprocess.Popen([sys.executable, "-m", "emulator", "fleet", *args], stdout=subprocess.PIPE,
                            stderr=err, text=True, start_new_session=True)


def _ctl(sock: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emulator", "ctl", "--control", str(sock), *args],
                          capture_output=True, text=True, timeout=60)


def _wait_registered(leshan, prefix: str, n: int, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    eps: list[str] = []
    while time.monotonic() < deadline:
        eps = [c["endpoint"] for c in leshan.clients() if c["endpoint"].startswith(prefix)]
        if len(eps) >= n:
            return eps
        time.sleep(0.5)
    raise AssertionError(f"{len(eps)} of {n} registered with Leshan")


def _stop(proc: subprocess.Popen, tmp_path: Path) -> str:
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(90)
    return (tmp_path / "fleet.stderr").read_text()


@pytest.mark.leshan
def test_fleet_registers_every_modem_and_answers_at_by_index(leshan, tmp_path):
    n, prefix = 300, f"fl-{uuid.uuid4().hex[:6]}-"
    sock, out = tmp_path / "c.sock", tmp_path / "out.json"
    proc = _fleet(tmp_path, "--count", str(n), "--lwm2m-server", leshan.coap_uri, "--burst", "--ephemeral",
                  "--endpoint-prefix", prefix, "--control", str(sock), "--json", str(out), "--progress", "1")
    try:
        assert proc.stdout.readline().strip() == f"control: {sock}"
        assert (sock.stat().st_mode & 0o777) == 0o600
        eps = _wait_registered(leshan, prefix, n, 120)
        assert sorted(eps) == sorted(f"{prefix}{i}" for i in range(n))
        deadline = time.monotonic() + 30          # the modems see their 2.01 just after Leshan lists them
        while True:
            status = json.loads(_ctl(sock, "--json", "status").stdout)
            if status["registered"] == n or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status["registered"] == n and status["count"] == n, status
        ans = _ctl(sock, "at", "--modem", "7", "AT+CGSN")
        assert ans.returncode == 0 and ans.stdout.split() == [imei(IdentityPlan.imei_base, 7), "OK"]
        ans = _ctl(sock, "at", "--modem", "299", "AT#LWM2MSTAT")
        assert ans.stdout.split("\n")[:2] == ['#LWM2MGETSTAT: 1,"ACTIVE"', "OK"], ans.stdout
        bad = _ctl(sock, "at", "--modem", "300", "AT")
        assert bad.returncode == 1 and "no modem 300" in bad.stderr
    finally:
        err = _stop(proc, tmp_path)
    assert proc.returncode == 0, err
    summary = json.loads(out.read_text())
    for key in ("count", "registered", "failed", "registration_p50_ms", "registration_p99_ms", "updates",
                "notifications", "rss_kb_per_modem", "cpu_s", "failures"):
        assert key in summary, key
    assert (summary["count"], summary["registered"], summary["failed"]) == (n, n, 0)
    assert summary["registration_p50_ms"] <= summary["registration_p99_ms"]
    assert "Traceback" not in err, err
    assert "fleet:" in err and "registered" in err                # live progress on stderr
    deadline = time.monotonic() + 30                               # the stop deregistered them
    while time.monotonic() < deadline and any(c["endpoint"].startswith(prefix) for c in leshan.clients()):
        time.sleep(0.5)
    assert not any(c["endpoint"].startswith(prefix) for c in leshan.clients())


@pytest.mark.leshan
def test_fleet_in_two_processes_gives_disjoint_identities(leshan, tmp_path):
    n, prefix = 120, f"fp-{uuid.uuid4().hex[:6]}-"
    out = tmp_path / "out.json"
    proc = _fleet(tmp_path, "--count", str(n), "--lwm2m-server", leshan.coap_uri, "--ramp", "200",
                  "--endpoint-prefix", prefix, "--processes", "2", "--json", str(out),
                  "--control", str(tmp_path / "p.sock"))
    try:
        proc.stdout.readline()
        eps = _wait_registered(leshan, prefix, n, 120)
        assert len(set(eps)) == n
        # index 100 lives in the second process: the parent's control socket routes to it
        ans = _ctl(tmp_path / "p.sock", "at", "--modem", "100", "AT+CGSN")
        assert ans.stdout.split() == [imei(IdentityPlan.imei_base, 100), "OK"], ans
    finally:
        err = _stop(proc, tmp_path)
    summary = json.loads(out.read_text())
    assert summary["processes"] == 2 and summary["count"] == n and summary["registered"] == n, err
    assert sorted(summary["endpoints"]) == sorted(f"{prefix}{i}" for i in range(n))


@pytest.mark.leshan
def test_fleet_behaviours_pty_and_a_failing_expectation(leshan, tmp_path):
    prefix = f"fb-{uuid.uuid4().hex[:6]}-"
    churn = tmp_path / "churn.toml"
    # at = 0 of a behaviour is its modem's registration: a disable then deregisters (it would not if the
    # behaviour started before the REGISTERED URC)
    churn.write_text('[scenario]\nname = "churn"\n\n[[step]]\nat = 0\nsend = "AT#LWM2MENA=0"\n'
                     'expect = \'LWM2M-TLT:"DEREGISTERED"\'\nwithin = 10\n\n[[step]]\nafter = 1\n'
                     'send = "AT#LWM2MENA=1"\nexpect = \'LWM2M-TLT:"REGISTERED"\'\nwithin = 10\n')
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[step]]\nat = 0\nsend = "AT+CGSN"\nexpect = "^NEVER$"\nwithin = 2\n')
    # faults and server-side checks in a behaviour: each modem its own fault layer
    faulty = tmp_path / "faulty.toml"
    faulty.write_text('[scenario]\nseed = 4\n[[step]]\nat = 0\nfault = "network.signal"\nrssi = 5\n'
                      '[[step]]\nafter = 0\nsend = "AT+CSQ"\nexpect = "^\\\\+CSQ: 5,"\n'
                      '[[step]]\nafter = 0\nsend = "AT#LWM2MNEWINST=0,3303,0"\n'
                      'expect_server = { method = "POST", path = "^/rd/" }\n')
    out = tmp_path / "out.json"
    proc = _fleet(tmp_path, "--count", "21", "--lwm2m-server", leshan.coap_uri, "--burst", "--ephemeral",
                  "--endpoint-prefix", prefix, "--ptys", "1", "--behaviour", f"{churn}:0.5",
                  "--behaviour", f"{wrong}:0.25", "--behaviour", f"{faulty}:0.25", "--json", str(out),
                  "--duration", "12")
    try:
        first = proc.stdout.readline().split()
        assert first[:2] == ["modem", "0"] and first[2] == "port" and first[4:] == ["endpoint", f"{prefix}0"]
        with serial.Serial(first[3], 115200, timeout=5) as port:   # a host program on modem 0
            port.write(b"ATE0\r")
            assert port.read_until(b"OK\r\n").endswith(b"OK\r\n")
            port.write(b"AT#LWM2MENA=1\r")
            assert port.read_until(b"OK\r\n").endswith(b"OK\r\n")
        proc.wait(60)
    finally:
        if proc.poll() is None:
            _stop(proc, tmp_path)
    summary = json.loads(out.read_text())
    # modems 1..20 enabled by the fleet: 10 churn and come back, 5 run the failing expectation, 5 run
    # faults and a server-side check that hold
    assert summary["failures"].get("expect") == 5, summary
    assert summary["registered"] >= 20, summary


def test_client_sockets_never_share_a_port():
    """aiocoap sets SO_REUSEPORT; with port 0 Linux can then give two clients one port and split the
    server's answers between them (a fleet lost a few 2.01s that way). Every client has its own port."""
    import asyncio

    import aiocoap.resource

    from emulator.clock import RealClock
    from emulator.lwm2m.client import CoapClient

    async def go():
        clients = [CoapClient(RealClock(), aiocoap.resource.Site()) for _ in range(400)]
        ports = []
        for c in clients:
            await c.open("coap://127.0.0.1:5683")
            for ri in c.ctx.request_interfaces:
                sock = ri.token_interface.message_interface.transport.get_extra_info("socket")
                assert sock.getsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_REUSEPORT) == 0
                ports.append(sock.getsockname()[1])
        for c in clients:
            await c.close()
        return ports
    ports = asyncio.new_event_loop().run_until_complete(go())
    assert len(ports) == 400 and len(set(ports)) == 400


def test_shard_index_comes_from_job_completion_index(tmp_path):
    """A Kubernetes Indexed Job pod runs the slice of its JOB_COMPLETION_INDEX."""
    out = tmp_path / "s.json"
    proc = subprocess.run([sys.executable, "-m", "emulator", "fleet", "--count", "10", "--shard-count", "2",
                           "--lwm2m-server", "coap://127.0.0.1:9", "--endpoint-prefix", "k",
                           "--duration", "0.5", "--progress", "0", "--json", str(out)],
                          env={**os.environ, "JOB_COMPLETION_INDEX": "1"}, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(out.read_text())
    assert summary["shard"] == {"index": 1, "count": 2, "first": 5, "stop": 10}
    assert summary["endpoints"] == ["k5", "k6", "k7", "k8", "k9"]
    assert "Traceback" not in proc.stderr


def test_fleet_refuses_bad_arguments(tmp_path):
    for args, words in ((["--count", "0"], "--count"), (["--count", "5", "--imei-base", "12"], "IMEI"),
                        (["--count", "5", "--behaviour", str(tmp_path / "none.toml")], "cannot read")):
        proc = subprocess.run([sys.executable, "-m", "emulator", "fleet", "--lwm2m-server",
                               "coap://127.0.0.1:5683", *args], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and words in proc.stderr, (args, proc.stderr)
    proc = subprocess.run([sys.executable, "-m", "emulator", "fleet", "--count", "1", "--lwm2m-server",
                           "coap://127.0.0.1:99999"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "lwm2m-server" in proc.stderr


def test_fleet_options_are_never_abbreviated_and_paths_are_checked_first(tmp_path):
    """`--proc 2` would reach every child again (a fork without end): only whole option names."""
    def fleet(*args):
        return subprocess.run([sys.executable, "-m", "emulator", "fleet", "--count", "2", "--lwm2m-server",
                               "coap://127.0.0.1:9", "--duration", "1", "--progress", "0", *args],
                              capture_output=True, text=True, timeout=60)
    r = fleet("--proc", "2")
    assert r.returncode == 2 and "unrecognized arguments: --proc" in r.stderr
    r = fleet("--json", str(tmp_path / "nodir" / "out.json"))
    assert r.returncode == 2 and "no folder" in r.stderr
    r = fleet("--processes", "2", "--control", str(tmp_path / "nodir" / "c.sock"))
    assert r.returncode == 2 and "cannot open control socket" in r.stderr and "Traceback" not in r.stderr
    r = fleet("--shard-count", "3")
    assert r.returncode == 2 and "--shard-count" in r.stderr


def test_a_live_control_socket_is_never_taken_over(tmp_path):
    sock = tmp_path / "c.sock"
    first = _fleet(tmp_path, "--count", "2", "--lwm2m-server", "coap://127.0.0.1:9", "--control", str(sock),
                   "--ptys", "1", "--progress", "0")
    try:
        assert first.stdout.readline().strip() == f"control: {sock}"
        assert first.stdout.readline().startswith("modem 0 port ")
        second = subprocess.run([sys.executable, "-m", "emulator", "fleet", "--count", "1", "--lwm2m-server",
                                 "coap://127.0.0.1:9", "--control", str(sock), "--duration", "1"],
                                capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and "already listens" in second.stderr
        status = json.loads(_ctl(sock, "--json", "status").stdout)
        assert status["count"] == 2                                  # still the first fleet
        pty = _ctl(sock, "at", "--modem", "0", "AT")                 # modem 0 belongs to its PTY host
        assert pty.returncode == 1 and "has a PTY" in pty.stderr
        ok = _ctl(sock, "at", "--modem", "1", "ATE0")
        assert ok.returncode == 0 and ok.stdout.split() == ["OK"]
        from emulator.control import request
        assert request(sock, {"verb": "at", "modem": True, "line": "AT"})["ok"] is False
    finally:
        _stop(first, tmp_path)
    assert not sock.exists()
