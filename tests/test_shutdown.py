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
