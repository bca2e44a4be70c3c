"""#CBC and #ADC (issue 8, section 3), and the Device object's supply resources that follow them.

Over the real PTY for the commands; the battery's path into /3/0/7, /3/0/9 and /3/0/20 is checked
with a raw LwM2M peer (emulator/testing/raw_server.py) playing the registered server, and the
scenario setters (modem.power.set_battery) with an in-process Modem on the real clock.
"""
from __future__ import annotations

import asyncio

from emulator.modem.core import Modem
from emulator.modem.profile import Profile
from emulator.port import MemoryPort
from emulator.testing.host import EmulatorProcess
from emulator.testing.raw_server import RawServer

OK = b"\r\nOK\r\n"
NOT_SUPPORTED = b"\r\n+CME ERROR: operation not supported\r\n"

PROFILE = """
[battery]
voltage_mv = 4012
level = 57
charger = 1
[adc.inputs]
1 = 1234
2 = 250
"""


def test_cbc_and_adc_from_the_default_profile(host):
    h = host
    assert h.cmd("AT+CMEE=2") == OK
    assert h.cmd("AT#CBC") == b"\r\n#CBC: 0,380\r\n" + OK             # no charger, 3.80 V in 10 mV units
    assert h.cmd("AT#CBC?") == b"\r\n#CBC: 0,380\r\n" + OK
    assert h.cmd("AT#CBC=?") == OK
    assert h.cmd("AT#CBC=1") == b"\r\nERROR\r\n"                      # no set form
    assert h.cmd("AT#ADC=1,2") == b"\r\n#ADC: 0\r\n" + OK
    assert h.cmd("AT#ADC=1,2,0") == b"\r\n#ADC: 0\r\n" + OK
    assert h.cmd("AT#ADC=?") == b"\r\n#ADC: (1),(2),(0)\r\n" + OK
    assert h.cmd("AT#ADC?") == b"\r\n#ADC: 0\r\n" + OK
    assert h.cmd("AT#ADC") == b"\r\n#ADC: 0\r\n" + OK
    for bad in ("AT#ADC=2,2", "AT#ADC=1,1", "AT#ADC=1,2,1", "AT#ADC=0,2", "AT#ADC=1", "AT#ADC=,2"):
        assert h.cmd(bad) == NOT_SUPPORTED, bad


def test_cbc_and_adc_follow_the_profile(tmp_path):
    prof = tmp_path / "p.toml"
    prof.write_text(PROFILE)
    with EmulatorProcess(tmp_path / "s", "--profile", str(prof)) as emu, emu.open() as h:
        assert h.cmd("ATE0") == OK
        h.echo = False
        assert h.cmd("AT#CBC") == b"\r\n#CBC: 1,401\r\n" + OK
        assert h.cmd("AT#ADC=2,2") == b"\r\n#ADC: 250\r\n" + OK
        assert h.cmd("AT#ADC?") == b"\r\n#ADC: 1234\r\n#ADC: 250\r\n" + OK
        assert h.cmd("AT#ADC=?") == b"\r\n#ADC: (1,2),(2),(0)\r\n" + OK


def test_device_object_follows_the_battery_until_the_host_sets_it(tmp_path):
    prof = tmp_path / "p.toml"
    prof.write_text(PROFILE)
    with RawServer() as srv:
        args = ("--profile", str(prof), "--lwm2m-server", srv.uri, "--time-scale", "4")
        emu = EmulatorProcess(tmp_path / "s", *args)
        h = emu.open()
        try:
            assert h.cmd("ATE0") == OK
            h.echo = False
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1") == OK
            h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r]*\r\n', timeout=30)
            assert srv.request("GET", "/3/0/9")[:2] == ("2.05", b"57")
            assert srv.request("GET", "/3/0/7/0")[:2] == ("2.05", b"4012")
            assert srv.request("GET", "/3/0/20")[:2] == ("2.05", b"1")           # charging
            assert h.cmd("AT#LWM2MGET=0,3,0,9,0") == b"\r\n#LWM2MGET: 57\r\n" + OK
            # host control wins (guide 3.1.9), and keeps winning after a restart
            assert h.cmd("AT#LWM2MSET=0,3,0,9,0,42") == OK
            assert srv.request("GET", "/3/0/9")[:2] == ("2.05", b"42")
            h.close()
            emu.kill()
            emu = EmulatorProcess(tmp_path / "s", *args)
            h = emu.open()
            assert h.cmd("ATE0") == OK
            h.echo = False
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1") == OK
            h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r]*\r\n', timeout=30)
            srv.wait("register", count=2)
            assert srv.request("GET", "/3/0/9")[:2] == ("2.05", b"42")
            assert srv.request("GET", "/3/0/7/0")[:2] == ("2.05", b"4012")      # not set: still the battery
        finally:
            h.close()
            emu.kill()


def test_battery_changes_notify_observers_until_the_host_takes_over(tmp_path):
    async def go(srv):
        loop = asyncio.get_running_loop()
        port = MemoryPort()
        modem = Modem(port, tmp_path / "m", profile=Profile({"network": {"attach_delay": 0.05}}),
                      lwm2m_server=srv.uri)
        modem.start()
        try:
            await asyncio.sleep(0.2)                         # attach (0.05 s on the real clock)
            port.feed(b"AT#LWM2MENA=1\r")
            await loop.run_in_executor(None, srv.wait_register)
            obs = await loop.run_in_executor(None, srv.observe, "/3/0/9")
            assert obs.answers[0][:2] == ("2.05", b"100")
            modem.power.set_battery(level=55, voltage_mv=3650)
            note = await loop.run_in_executor(None, obs.wait, 2, 10)
            assert note[:2] == ("2.05", b"55")
            assert modem.agent.store.get(3, 0, 7, 0) == 3650
            port.feed(b"AT#LWM2MSET=0,3,0,9,0,12\r")
            note = await loop.run_in_executor(None, obs.wait, 3, 10)
            assert note[:2] == ("2.05", b"12")
            modem.power.set_battery(level=99)                # the host's value stays
            code, payload, _ = await loop.run_in_executor(None, srv.request, "GET", "/3/0/9")
            assert (code, payload) == ("2.05", b"12") and len(obs.answers) == 3
            port.take()
            port.feed(b"AT#CBC\r")
            await asyncio.sleep(0.1)
            assert b"#CBC: 0,365\r\n" in port.take()
        finally:
            modem.close()
            await asyncio.sleep(0.1)
    with RawServer() as srv:
        asyncio.new_event_loop().run_until_complete(go(srv))
