"""Many modems in one process share nothing but the parser: the base of fleets and parallel tests."""
import asyncio

from emulator.clock import ManualClock
from emulator.modem.core import Modem
from emulator.port import MemoryPort


def test_a_hundred_modems_in_one_process(tmp_path):
    async def go():
        clock = ManualClock()
        rigs = []
        for i in range(100):
            port = MemoryPort()
            modem = Modem(port, tmp_path / f"m{i}", clock=clock)
            modem.start()
            rigs.append((modem, port))
        await clock.advance(3)                         # all attach to the network
        for i, (modem, port) in enumerate(rigs):
            port.take()
            port.feed(f"ATE0;+CMEE={i % 3};#LWM2MNEWINST=0,3303,{i}\r".encode())
        await clock.advance(1)
        for i, (modem, port) in enumerate(rigs):
            assert port.take() == b"ATE0;+CMEE=%d;#LWM2MNEWINST=0,3303,%d\r\r\nOK\r\n" % (i % 3, i)
            port.feed(b"AT+CMEE?;#LWM2MEXIST=0,3303,0\r")
        await clock.advance(1)
        for i, (modem, port) in enumerate(rigs):
            out = port.take()
            assert out.startswith(b"\r\n+CMEE: %d\r\n" % (i % 3))
            # each modem has only its own instance: 3303/0 exists on modem 0 alone
            assert out.endswith(b"\r\nOK\r\n") == (i == 0), out
        for modem, _ in rigs:
            modem.close()
    asyncio.new_event_loop().run_until_complete(go())
