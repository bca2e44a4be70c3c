"""Firmware update (/5/0): the package format and the in-process rules here; the end-to-end cases
(case_*: the emulator over its real PTY, a real Leshan server writing and executing /5, and a real
aiocoap file server (Block2) on 127.0.0.1 holding the packages) run from the ETS module,
test_ets_lwm2m_1_0_1.py, under the firmware-update cases' names."""
import asyncio
import socket
import threading
import time
import uuid

import aiocoap
import aiocoap.resource
import pytest
from aiocoap import numbers

from emulator.clock import ManualClock
from emulator.lwm2m.fota import PackageError, classify_uri, make_package, parse_package
from emulator.modem.core import Modem
from emulator.port import MemoryPort
from emulator.testing.host import EmulatorProcess, Timeout
from emulator.testing.leshan import free_port

OK = b"\r\nOK\r\n"
NOT_ALLOWED = b"\r\n+CME ERROR: operation not allowed\r\n"
FOTA_REBOOT = rb'#LWM2MINFO: "GEN","FOTA REBOOT"\r\n'
PAYLOAD = bytes(range(256)) * 12                 # 3 KiB: several 1 KiB blocks either way


# ============================================================================ the package format
def test_package_format_round_trip_and_failures():
    pkg = make_package("M0B.660099", PAYLOAD)
    assert pkg.startswith(b"TELIT-EMU-FW 1\nversion=M0B.660099\nsha256=")
    info = parse_package(pkg)
    assert (info.version, info.size) == ("M0B.660099", len(PAYLOAD))
    crlf = pkg.replace(b"\n", b"\r\n", 4)       # header lines may end in CRLF
    assert parse_package(crlf).version == "M0B.660099"

    def result(data):
        with pytest.raises(PackageError) as exc:
            parse_package(data)
        return exc.value.result
    assert result(b"\x7fELF....") == 6                              # not our package
    assert result(pkg.replace(b"TELIT-EMU-FW 1", b"TELIT-EMU-FW 2")) == 6
    assert result(pkg[:-1]) == 5                                   # truncated payload
    assert result(pkg[:30]) == 5                                   # cut inside the header
    assert result(pkg[:-10] + bytes(10)) == 5                      # corrupted payload
    assert result(pkg.replace(b"version=M0B.660099\n", b"")) == 6  # no version
    with pytest.raises(ValueError):
        make_package("", b"x")
    assert classify_uri("coap://127.0.0.1:5683/fw/a") is None
    assert classify_uri("http://example.com/fw") == 9
    assert classify_uri("coaps://example.com/fw") == 9
    assert classify_uri("not a uri") == 7
    assert classify_uri("coap:///nohost") == 7


# ============================================================================ in process, on the stepped clock
WEEK = 7 * 24 * 3600


class Rig:
    """A real Modem (AT engine, NVM, agent) on the in-memory port and the stepped clock; server
    operations enter through the agent's hooks, as the CoAP site calls them."""

    def __init__(self, state_dir):
        self.port, self.clock = MemoryPort(), ManualClock()
        self.modem = Modem(self.port, state_dir, clock=self.clock)

    @property
    def agent(self):
        return self.modem.agent

    def fota(self) -> tuple[int, int]:
        store = self.agent.store
        return store.get(5, 0, 3), store.get(5, 0, 5)

    async def at(self, line: str, dt: float = 0.0) -> bytes:
        self.port.feed(line.encode() + b"\r")
        await self.clock.advance(dt)
        return self.port.take()

    async def advance(self, dt: float) -> bytes:
        await self.clock.advance(dt)
        return self.port.take()


def _run(coro):
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


def test_unacknowledged_operations_go_on_after_a_week(tmp_path):
    rig = Rig(tmp_path)

    async def go():
        rig.modem.start()
        assert await rig.at("ATE0;+CMEE=2;#LWM2MFOTACFG=0,3") == b"ATE0;+CMEE=2;#LWM2MFOTACFG=0,3\r\r\nOK\r\n"
        assert rig.agent.server_write((5, 0, 0), make_package("M0B.800001", PAYLOAD)) is None
        assert rig.fota() == (1, 0)
        assert await rig.advance(0.1) == b'\r\n#LWM2MFOTARING: 0,"DOWNLOAD"\r\n'
        assert await rig.advance(WEEK - 1) == b""
        assert rig.fota() == (1, 0)                       # still waiting for the host
        await rig.advance(2)
        assert rig.fota() == (2, 0)
        assert rig.agent.server_write((5, 0, 1), "coap://127.0.0.1/fw") is not None   # busy: 4.05
        assert rig.agent.server_execute((5, 0, 2), "") is None
        assert await rig.advance(0.1) == b'\r\n#LWM2MFOTARING: 0,"UPDATE"\r\n'
        assert rig.fota() == (3, 0)
        assert await rig.advance(WEEK - 1) == b""
        out = await rig.advance(WEEK)
        assert out == b'\r\n#LWM2MINFO: "GEN","FOTA REBOOT"\r\n'      # the reboot itself prints nothing
        assert rig.fota() == (0, 1)                       # the power-on after the reboot: success
        assert await rig.at("AT#CGMR") == b"AT#CGMR\r\r\n#CGMR: M0B.800001\r\n\r\nOK\r\n"   # echo is on again
    _run(go())


def test_power_cycles_never_leave_a_half_state(tmp_path):
    rig = Rig(tmp_path)

    async def go():
        rig.modem.start()
        await rig.at("ATE0;#LWM2MFOTACFG=0,1")
        # a download cut by a reboot: Idle, connection lost
        rig.agent.server_write((5, 0, 0), make_package("M0B.800002", PAYLOAD))
        await rig.advance(1)
        assert rig.fota() == (1, 0) and rig.agent.fota.pending is not None
        rig.modem.reboot()
        assert rig.fota() == (0, 4)
        assert rig.agent.fota.pending is None
        assert await rig.at("AT#LWM2MFOTAACK=0,1") == b"AT#LWM2MFOTAACK=0,1\r\r\nERROR\r\n"   # nothing to ACK
        # a downloaded package survives a reboot; an update the host has not allowed goes back to it
        await rig.at("ATE0;#LWM2MFOTACFG=0,2")
        rig.agent.server_write((5, 0, 0), make_package("M0B.800003", PAYLOAD))
        await rig.advance(1)
        assert rig.fota() == (2, 0)
        rig.modem.reboot()
        assert rig.fota() == (2, 0)
        assert rig.agent.server_execute((5, 0, 2), "") is None
        await rig.advance(1)
        assert rig.fota() == (3, 0) and rig.agent.fota.pending is not None
        rig.modem.reboot()
        assert rig.fota() == (2, 8)                       # update failed, package still there
        factory = rig.modem.profile["identity"]["revision"]
        assert await rig.at("ATE0;#CGMR") == f"ATE0;#CGMR\r\r\n#CGMR: {factory}\r\n\r\nOK\r\n".encode()
        # the host allows it now: the module reboots into the new firmware
        assert rig.agent.server_execute((5, 0, 2), "") is None
        assert await rig.advance(1) == b'\r\n#LWM2MFOTARING: 0,"UPDATE"\r\n'
        assert await rig.at("AT#LWM2MFOTAACK=0,1") == b"\r\nOK\r\n"
        assert await rig.advance(10) == b'\r\n#LWM2MINFO: "GEN","FOTA REBOOT"\r\n'
        assert rig.fota() == (0, 1)
        assert rig.modem.nvm.get("firmware_revision") == "M0B.800003"
        # an empty package resets the result
        assert rig.agent.server_write((5, 0, 0), b"") is None
        assert rig.fota() == (0, 0)
    _run(go())


# ============================================================================ a CoAP file server
class FileServer:
    """aiocoap server on 127.0.0.1 in its own thread: GET /fw/<name> -> the file (Block2 by aiocoap).

    `gate` (a threading.Event) holds the first block of every download until it is set; `requests`
    lists (name, block number) of every GET that arrived."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, int]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.port = free_port("udp")
        self.loop = asyncio.new_event_loop()
        self._ctx = None
        started = threading.Event()
        self._error = None

        def run():
            asyncio.set_event_loop(self.loop)
            try:
                self._ctx = self.loop.run_until_complete(aiocoap.Context.create_server_context(
                    _Files(self), bind=("127.0.0.1", self.port)))
            except Exception as exc:                    # pragma: no cover - reported below
                self._error = exc
                started.set()
                return
            started.set()
            self.loop.run_forever()
            self.loop.run_until_complete(self._ctx.shutdown())

        self.thread = threading.Thread(target=run, name="coap-file-server", daemon=True)
        self.thread.start()
        started.wait(30)
        if self._error:
            raise self._error

    def uri(self, name: str) -> str:
        return f"coap://127.0.0.1:{self.port}/fw/{name}"

    def blocks(self, name: str) -> list[int]:
        return [n for f, n in list(self.requests) if f == name]

    def close(self):
        self.gate.set()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class _Files(aiocoap.resource.Resource):
    def __init__(self, server: FileServer):
        super().__init__()
        self.server = server

    async def needs_blockwise_assembly(self, request):
        path = request.opt.uri_path
        block = request.opt.block2.block_number if request.opt.block2 else 0
        if len(path) == 2 and path[0] == "fw":
            self.server.requests.append((path[1], block))
        return True

    async def render(self, request):
        path = request.opt.uri_path
        if request.code != numbers.codes.Code.GET:
            return aiocoap.Message(code=numbers.codes.Code.METHOD_NOT_ALLOWED)
        data = self.server.files.get(path[1]) if len(path) == 2 and path[0] == "fw" else None
        if data is None:
            return aiocoap.Message(code=numbers.codes.Code.NOT_FOUND)
        await asyncio.get_running_loop().run_in_executor(None, self.server.gate.wait, 60)
        return aiocoap.Message(code=numbers.codes.Code.CONTENT, payload=data)


@pytest.fixture
def files():
    srv = FileServer()
    yield srv
    srv.close()


# ============================================================================ the module and Leshan


def _enable(h, leshan, ep, old_reg: str | None = None) -> dict:
    """AT#LWM2MENA=1 and wait until Leshan holds a (new) registration of ep."""
    assert h.cmd("AT#LWM2MENA=1") == OK
    h.wait_for(rb'LWM2M-TLT:"REGISTERED",SSID=123,"[^"]*"\r\n', timeout=30)
    return leshan.wait_client(ep, timeout=30, predicate=lambda r: r.get("registrationId") != old_reg)


@pytest.fixture
def module(tmp_path, leshan):
    """make(scale) -> (emulator, host, endpoint): aimed at Leshan, echo off, +CMEE=2, agent enabled."""
    made = []

    def make(scale: float = 4, fota_mode: int = 0):
        ep = f"emu-fota-{uuid.uuid4().hex[:8]}"
        emu = EmulatorProcess(tmp_path / f"s{len(made)}", "--lwm2m-server", leshan.coap_uri,
                              "--time-scale", str(scale))
        h = emu.open()
        made.append((emu, h))
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"') == OK
        assert h.cmd(f"AT#LWM2MFOTACFG=0,{fota_mode}") == OK
        assert h.cmd("AT#REBOOT") == OK
        assert h.cmd("ATE0") == OK
        h.echo = False
        assert h.cmd("AT+CMEE=2") == OK
        h.wait_network()
        reg = _enable(h, leshan, ep)
        h.reg = reg["registrationId"]
        return emu, h, ep

    yield make
    for emu, h in made:
        h.close()
        emu.kill()


def _await_reboot(h, timeout: float = 60.0) -> None:
    """The module rebooted once the echo is back (E1 after power-up); then ATE0 and +CMEE=2 again."""
    deadline = time.monotonic() + timeout
    while True:
        if time.monotonic() > deadline:
            raise AssertionError(f"no reboot seen; got {bytes(h.buf)!r}")
        h.write(b"AT\r")
        try:
            ans = h.read_final(timeout=3)
        except Timeout:              # the line was lost in the power cycle: ask again
            h.buf.clear()
            continue
        if b"AT\r\r\nOK\r\n" in ans:
            break
    h.echo = True
    assert h.cmd("ATE0") == OK
    h.echo = False
    assert h.cmd("AT+CMEE=2") == OK
    h.wait_network()


def _read(leshan, ep, rid):
    return leshan.read_value(ep, f"5/0/{rid}", timeout=10)


def _wait_value(leshan, ep, path, expected, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = leshan.read_value(ep, path, timeout=10)
        if value == expected:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} is {value!r}, expected {expected!r}")
        time.sleep(0.1)


def _wait_fota(leshan, ep, state, result, timeout=30.0):
    _wait_value(leshan, ep, "5/0/3", state, timeout)
    assert _read(leshan, ep, 5) == result


def _write_uri(leshan, ep, uri):
    res = leshan.write(ep, "5/0/1", uri, "string", format="TEXT", timeout=10)
    assert res["success"], res


def _push(leshan, ep, package):
    res = leshan.write(ep, "5/0/0", package, "opaque", format="OPAQUE", timeout=20)
    assert res["success"], res


def _update_and_check(h, leshan, ep, version):
    """Execute /5/0/2, see the FOTA reboot, bring the agent back, check the new version everywhere."""
    res = leshan.execute(ep, "5/0/2", timeout=10)
    assert res["success"], res
    h.wait_for(FOTA_REBOOT, timeout=30)
    _await_reboot(h)
    assert h.cmd("AT+CGMR") == f"\r\n{version}\r\n".encode() + OK
    assert h.cmd("AT#CGMR") == f"\r\n#CGMR: {version}\r\n".encode() + OK
    _enable(h, leshan, ep, old_reg=h.reg)                # the agent is disabled after a reboot
    assert leshan.read_value(ep, "3/0/3", timeout=10) == version
    assert _read(leshan, ep, 3) == 0
    assert _read(leshan, ep, 5) == 1                     # success
    assert _read(leshan, ep, 7) == version


# ============================================================================ scenarios
@pytest.mark.leshan
def case_pull_download_update_reboot(module, leshan, files):
    emu, h, ep = module()
    assert (_read(leshan, ep, 3), _read(leshan, ep, 5), _read(leshan, ep, 9)) == (0, 0, 2)
    files.files["a.bin"] = make_package("M0B.700001", PAYLOAD)
    files.gate.clear()                                   # hold the download: Downloading is visible
    _write_uri(leshan, ep, files.uri("a.bin"))
    _wait_value(leshan, ep, "5/0/3", 1)
    assert _read(leshan, ep, 1) == files.uri("a.bin")
    files.gate.set()
    _wait_fota(leshan, ep, 2, 0)
    assert len(files.blocks("a.bin")) >= 3               # Block2: the package came in pieces
    assert _read(leshan, ep, 7) == "M0B.700001"
    _update_and_check(h, leshan, ep, "M0B.700001")


@pytest.mark.leshan
def case_push_blockwise_update_reboot(module, leshan):
    emu, h, ep = module()
    package = make_package("M0B.700002", PAYLOAD)
    assert len(package) > 2048
    _push(leshan, ep, package)
    _wait_fota(leshan, ep, 2, 0)
    _update_and_check(h, leshan, ep, "M0B.700002")


@pytest.mark.leshan
def case_bad_packages_and_forbidden_operations(module, leshan, files):
    emu, h, ep = module()
    res = leshan.execute(ep, "5/0/2", timeout=10)        # Update in Idle: not allowed
    assert not res["success"] and "METHOD_NOT_ALLOWED" in str(res.get("status")), res
    good = make_package("M0B.700003", PAYLOAD)

    corrupt = bytearray(good)
    corrupt[-100] ^= 0xFF
    _push(leshan, ep, bytes(corrupt))
    _wait_fota(leshan, ep, 0, 5)                         # integrity check failure, back to Idle

    _push(leshan, ep, b"MZ" + bytes(3000))
    _wait_fota(leshan, ep, 0, 6)                         # unsupported package type

    files.files["cut.bin"] = good[:1500]                 # a truncated package, pulled
    _write_uri(leshan, ep, files.uri("cut.bin"))
    _wait_fota(leshan, ep, 0, 5)

    # an empty URI cancels a download under way
    files.files["slow.bin"] = good
    files.gate.clear()
    _write_uri(leshan, ep, files.uri("slow.bin"))
    _wait_value(leshan, ep, "5/0/3", 1)
    res = leshan.write(ep, "5/0/1", files.uri("cut.bin"), "string", format="TEXT", timeout=10)
    assert not res["success"], res                       # no second download while one is under way
    _write_uri(leshan, ep, "")
    _wait_fota(leshan, ep, 0, 0)
    files.gate.set()
    # the module stays Idle; an update still is not allowed, and the firmware did not change
    assert _read(leshan, ep, 3) == 0
    assert not leshan.execute(ep, "5/0/2", timeout=10)["success"]
    assert b"M0B.700003" not in h.cmd("AT#CGMR")


@pytest.mark.leshan
def case_unreachable_invalid_and_unsupported_uris(module, leshan, files):
    emu, h, ep = module(scale=20)
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)     # swallows every request
    hole.bind(("127.0.0.1", 0))
    try:
        t0 = time.monotonic()
        _write_uri(leshan, ep, f"coap://127.0.0.1:{hole.getsockname()[1]}/fw/x.bin")
        assert _read(leshan, ep, 3) == 1
        # 93 s of module time without an answer: 4.65 s here at --time-scale 20
        _wait_fota(leshan, ep, 0, 4, timeout=60)
        assert time.monotonic() - t0 < 60
    finally:
        hole.close()
    _write_uri(leshan, ep, files.uri("missing.bin"))             # 4.04 from the file server
    _wait_fota(leshan, ep, 0, 7)
    _write_uri(leshan, ep, "http://127.0.0.1/fw.bin")
    _wait_fota(leshan, ep, 0, 9)
    _write_uri(leshan, ep, "no uri at all")
    _wait_fota(leshan, ep, 0, 7)
    _write_uri(leshan, ep, "")                                   # reset
    _wait_fota(leshan, ep, 0, 0)


@pytest.mark.leshan
def case_fotacfg_mode_3_waits_for_the_host(module, leshan, files):
    emu, h, ep = module(fota_mode=3)
    assert h.cmd("AT#LWM2MFOTAACK=0,1") == NOT_ALLOWED          # nothing to acknowledge
    files.files["b.bin"] = make_package("M0B.700005", PAYLOAD)
    _write_uri(leshan, ep, files.uri("b.bin"))
    h.wait_for(rb'#LWM2MFOTARING: 0,"DOWNLOAD"\r\n', timeout=30)
    assert _read(leshan, ep, 3) == 1
    time.sleep(1.0)                                              # 4 s of module time: still nothing
    assert files.blocks("b.bin") == []
    assert _read(leshan, ep, 3) == 1
    assert h.cmd("AT#LWM2MFOTAACK=0,1") == OK
    _wait_fota(leshan, ep, 2, 0)
    assert files.blocks("b.bin")
    assert h.cmd("AT#LWM2MFOTAACK=0,1") == NOT_ALLOWED

    res = leshan.execute(ep, "5/0/2", timeout=10)
    assert res["success"], res
    h.wait_for(rb'#LWM2MFOTARING: 0,"UPDATE"\r\n', timeout=30)
    time.sleep(1.0)                                              # no reboot without the host's ACK
    assert _read(leshan, ep, 3) == 3
    answer = h.cmd("AT#CGMR")
    assert b"FOTA REBOOT" not in answer and b"M0B.700005" not in answer
    assert h.cmd("AT#LWM2MFOTAACK=0,1") == OK
    h.wait_for(FOTA_REBOOT, timeout=30)
    _await_reboot(h)
    assert h.cmd("AT#CGMR") == b"\r\n#CGMR: M0B.700005\r\n" + OK
    _enable(h, leshan, ep, old_reg=h.reg)
    assert leshan.read_value(ep, "3/0/3", timeout=10) == "M0B.700005"
    assert (_read(leshan, ep, 3), _read(leshan, ep, 5)) == (0, 1)
