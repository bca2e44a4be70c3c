"""Unit tests of the line engine on the in-memory port and the stepped clock."""
import asyncio

import pytest

from emulator.clock import ManualClock
from emulator.modem.core import Modem
from emulator.port import MemoryPort


@pytest.fixture
def rig(tmp_path):
    port, clock = MemoryPort(), ManualClock()
    modem = Modem(port, tmp_path, clock=clock)

    async def send(data: bytes, dt: float = 0.0) -> bytes:
        port.feed(data)
        await clock.advance(dt)
        return port.take()
    return modem, port, clock, send


def run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_urc_waits_for_the_end_of_a_response(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        await send(b"ATE0\r")
        assert await send(b'AT#M2MWRITE="/XML/x.xml",4\r') == b"\r\n>>>"
        modem.urc("+CEREG: 1")                   # arrives in the middle of the data phase
        assert await send(b"ab") == b""
        assert await send(b"cd") == b"\r\nOK\r\n\r\n+CEREG: 1\r\n"
        modem.urc("+CEREG: 5")                   # idle: written at once
        assert port.take() == b"\r\n+CEREG: 5\r\n"
    run(go())


def test_registration_follows_the_clock(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        await send(b"ATE0;+CEREG=1\r")
        await clock.advance(1.9)
        assert port.take() == b""
        await clock.advance(0.2)
        assert port.take() == b"\r\n+CEREG: 1\r\n"
        assert await send(b"AT+CFUN=4\r") == b"\r\nOK\r\n\r\n+CEREG: 0\r\n"
    run(go())


def test_data_phase_times_out_on_the_modem_clock(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        await send(b"ATE0\r")
        assert await send(b'AT#M2MWRITE="/XML/y.xml",10\r') == b"\r\n>>>"
        # the limit runs from the prompt (5 s + 10 bytes at 9600 baud): bytes do not extend it
        assert await send(b"abc", dt=2) == b""
        assert await send(b"de", dt=2.9) == b""
        assert await send(b"f", dt=0.2) == b"\r\nERROR\r\n"
        assert await send(b"AT\r") == b"\r\nOK\r\n"
        assert not (modem.fs.xml_dir() / "y.xml").exists()
    run(go())


def test_lf_after_cr_is_not_payload(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        await send(b"ATE0\r")
        assert await send(b'AT#M2MWRITE="/XML/z.xml",3\r\nxyz') == b"\r\n>>>\r\nOK\r\n"
        assert modem.fs.read("/XML/z.xml") == b"xyz"
    run(go())


def test_sim_absent_answers_cme_10(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        modem.sim.set_present(False)
        await send(b"ATE0;+CMEE=1\r")
        assert await send(b"AT+CIMI\r") == b"\r\n+CME ERROR: 10\r\n"
        assert await send(b"AT+CPIN?\r") == b"\r\n+CME ERROR: 10\r\n"
        await send(b"AT+CMEE=2\r")
        assert await send(b"AT#SGACT=1,1\r") == b"\r\n+CME ERROR: SIM not inserted\r\n"
    run(go())


def test_settings_changed_by_a_line_apply_to_the_next_one_in_the_same_write(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        assert await send(b"ATE0\rAT\r") == b"ATE0\r\r\nOK\r\n\r\nOK\r\n"           # the 2nd AT: no echo
        # '@' ends lines from now on, and frames the answers too (the OK of ATS3=64 already)
        assert await send(b"ATS3=64\rAT@") == b"@\nOK@\n@\nOK@\n"
    run(go())


def test_repeat_of_an_over_long_line_runs_nothing(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        await send(b"ATE0\r")
        assert await send(b"AT+CMEE=2" + b" " * 400 + b"\r") == b"\r\nERROR\r\n"
        assert await send(b"A/") == b"\r\nERROR\r\n"
        assert await send(b"AT+CMEE?\r") == b"\r\n+CMEE: 0\r\n\r\nOK\r\n"
    run(go())


def test_non_ascii_digits_are_parameter_errors(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        await send(b"ATE0;+CMEE=2\r")
        assert await send(b"AT+CMEE=\xb2\r") == b"\r\n+CME ERROR: operation not supported\r\n"
        assert await send(b"AT#LWM2MEXIST=0,\xb3\r") == b"\r\n+CME ERROR: Invalid args\r\n"
    run(go())


def test_crlf_terminated_lines_echo_the_lf_before_the_answer(rig):
    modem, port, clock, send = rig

    async def go():
        modem.start()
        assert await send(b"AT\r\n") == b"AT\r\n\r\nOK\r\n"
        assert await send(b"AT+CGMI\r\nAT\r\n") == b"AT+CGMI\r\n\r\nTelit\r\n\r\nOK\r\nAT\r\n\r\nOK\r\n"
        # an <LF> that comes later, on its own, is echoed when it arrives and starts no line
        assert await send(b"AT\r") == b"AT\r\r\nOK\r\n"
        assert await send(b"\n") == b"\n"
    run(go())
