"""Command flows of public host programs written for these modules, replayed over the real PTY.

Each test sends what the host program sends, in its order, and checks the answers the way that
program parses them (exact string compares, fixed character positions, atof).
"""
import re
import time
import uuid

import pytest

from emulator.testing.host import EmulatorProcess

pytestmark = pytest.mark.leshan
OK = b"\r\nOK\r\n"


def lines(answer: bytes) -> list[str]:
    """The information lines of an answer, as a line-oriented host parser splits them."""
    return [l for l in re.split(r"\r\n|\n", answer.decode()) if l and l not in ("OK", "ERROR")]


def test_me310_library_freefall_demo_flow(tmp_path, leshan):
    """Telit's Arduino ME310 library 'freefall' sketch: network checks, LwM2M enable, GNSS on through
    /33211/0/0/0, $GPSCFG priorities, polling #LWM2MR on /6/0/3 until the radius is under 20 m."""
    ep = f"host-{uuid.uuid4().hex[:8]}"
    with EmulatorProcess(tmp_path / "s", "--lwm2m-server", leshan.coap_uri, "--time-scale", "4") as emu, \
            emu.open() as h:
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"').endswith(OK)
        assert h.cmd("AT#REBOOT") == OK
        assert h.cmd("AT") == OK
        assert h.cmd("AT+CMEE=2") == OK
        assert h.cmd("AT+WS46=28") == OK
        model = lines(h.cmd("AT+CGMM"))[0]
        assert model[9] == "W"                           # the sketch's test for a -WW module
        assert h.cmd("AT+WS46=12") == OK
        assert lines(h.cmd("AT+CPIN?")) == ["+CPIN: READY"]
        assert lines(h.cmd("AT+WS46?")) == ["+WS46: 12"]
        for _ in range(400):                              # "if +CREG != 0,1 and != 0,5: retry"
            creg = lines(h.cmd("AT+CREG?"))[0]
            if creg in ("+CREG: 0,1", "+CREG: 0,5"):
                break
            time.sleep(0.05)                              # the sketch waits 3 s between reads
        else:
            raise AssertionError(creg)
        assert h.cmd("AT#LWM2MENA=1,1") == OK
        h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r]*\r\n', timeout=60)
        assert h.cmd("AT#LWM2MW=0,33211,0,0,0,1") == OK    # "turn on the GPS"
        assert h.cmd("AT$GPSCFG?").startswith(b"\r\n$GPSCFG: ")
        assert h.cmd("AT$GPSCFG=3,0") == OK
        resp = lines(h.cmd("AT#LWM2MR=0,6,0,3,0"))[0]
        f = float(resp[9:17])                             # the sketch copies characters 9..16 and atof()s them
        assert 0.0 < f < 20.0
        assert h.cmd("AT$GPSCFG=3,1") == OK
        assert leshan.read_value(ep, "6/0/3") == f          # the server sees the same fix
        assert h.cmd("AT#LWM2MW=0,33211,0,0,0,0") == OK    # "turn off the GPS"
        assert lines(h.cmd("AT#LWM2MR=0,6,0,3,0")) == ["#LWM2MR: 0.000000"]
        assert h.cmd("AT#LWM2MENA=0") == OK
        h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n')
        leshan.wait_gone(ep, timeout=30)


def test_psoc_modem_connect_flow(tmp_path, leshan):
    """A PSoC 6 host: checks '#SGACT?' for "1,1" else activates, '#LWM2MENA?' for "1" else enables,
    '#LWM2MMON?' for its object else adds it (substring matches on the whole answer)."""
    ep = f"host-{uuid.uuid4().hex[:8]}"
    with EmulatorProcess(tmp_path / "s", "--lwm2m-server", leshan.coap_uri, "--time-scale", "4") as emu, \
            emu.open() as h:
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"').endswith(OK)
        assert h.cmd("AT#REBOOT") == OK
        h.wait_network()
        if b"1,1" not in h.cmd("AT#SGACT?"):
            assert h.cmd("AT#SGACT=1,1").endswith(OK)
        assert b"1,1" in h.cmd("AT#SGACT?")
        if b"1" not in h.cmd("AT#LWM2MENA?").replace(b"LWM2M", b""):
            assert h.cmd("AT#LWM2MENA=1").endswith(OK)
        if b"33000" not in h.cmd("AT#LWM2MMON?"):
            assert h.cmd("AT#LWM2MMON=1,33000").endswith(OK)
        assert b'"33000"' in h.cmd("AT#LWM2MMON?")
        h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r]*\r\n', timeout=60)
        leshan.wait_client(ep, timeout=30)
