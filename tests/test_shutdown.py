"""Issue 8 §1: stopping the emulator (SIGTERM, SIGINT) while the agent is registered prints no
traceback and deregisters from the server within the shutdown budget."""
import signal
import uuid

import pytest

from emulator.testing.host import EmulatorProcess

pytestmark = pytest.mark.leshan
OK = b"\r\nOK\r\n"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stop_while_registered_deregisters_without_traceback(tmp_path, leshan, sig):
    ep = f"emu-{uuid.uuid4().hex[:10]}"
    emu = EmulatorProcess(tmp_path / "s", "--lwm2m-server", leshan.coap_uri, "--time-scale", "4")
    events = leshan.events(ep)
    try:
        h = emu.open()
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"') == OK
        assert h.cmd("AT#REBOOT") == OK                     # the endpoint name takes effect at boot
        h.wait_network()
        assert h.cmd("AT#LWM2MENA=1") == OK
        h.wait_for(rb'LWM2M-TLT:"REGISTERED"')
        leshan.wait_client(ep, timeout=30)
        h.close()
        emu.proc.send_signal(sig)
        assert emu.proc.wait(10) == 0
        events.wait_event("DEREGISTRATION", timeout=10)        # it said goodbye before leaving
        assert leshan.client(ep) is None
        err = emu.stderr_text()
        assert "Traceback" not in err and "Task was destroyed" not in err and "Error" not in err, err
    finally:
        events.close()
        emu.kill()


def test_modem_aclose_in_process_deregisters_without_errors(tmp_path, leshan, caplog):
    """The library way: ``await modem.aclose()`` (what telit-emu does on a signal) with the agent
    registered: Leshan sees the Deregister, asyncio reports no error (no destroyed pending task,
    no InvalidStateError from aiocoap's transport)."""
    import asyncio
    import logging

    from emulator.clock import RealClock
    from emulator.modem.core import Modem
    from emulator.modem.profile import Profile
    from emulator.port import MemoryPort

    caplog.set_level(logging.WARNING)
    imei = "35" + uuid.uuid4().int.__str__()[:13]
    events = leshan.events(imei)

    async def go():
        port = MemoryPort()
        modem = Modem(port, tmp_path / "m", clock=RealClock(10), lwm2m_server=f"{leshan.coap_uri}|0",
                      profile=Profile({"identity": {"imei": imei}}))
        registered = asyncio.Event()
        modem.events.subscribe("lwm2m", lambda event, **kw: event == "registered" and registered.set())
        modem.start()
        port.feed(b"AT#LWM2MENA=1\r")
        await asyncio.wait_for(registered.wait(), 30)
        await modem.aclose()

    try:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(go())
        loop.run_until_complete(asyncio.sleep(0.2))      # whatever aiocoap still had to say
        loop.close()
        events.wait_event("DEREGISTRATION", timeout=10)
        problems = [r.getMessage() for r in caplog.records if r.name.startswith("asyncio") or r.levelno >= logging.ERROR]
        assert not problems, problems
    finally:
        events.close()
