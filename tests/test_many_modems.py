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


def test_models_are_parsed_once_per_process_and_shared(tmp_path, monkeypatch):
    """Issue 10 item 7: the built-in DDF models are parsed once for all modems of a process and
    shared read-only; a model a host put in one modem's /XML/ is that modem's alone."""
    from emulator.lwm2m import models
    from emulator.resources import builtin_model_files

    parsed = []
    real = models.parse_models

    def counting(data):
        parsed.append(data)
        return real(data)

    monkeypatch.setattr(models, "parse_models", counting)
    models.clear_model_cache()
    builtin_count = len(builtin_model_files())
    own = (models.builtin_objects_dir() / "3303.xml").read_text().replace(
        "<ObjectID>3303</ObjectID>", "<ObjectID>32999</ObjectID>")

    async def go():
        clock = ManualClock()
        fleet = []
        for i in range(100):
            modem = Modem(MemoryPort(), tmp_path / f"m{i}", clock=clock)
            if i == 7:                                  # the host uploaded a model to this one
                modem.fs.xml_dir().mkdir(parents=True, exist_ok=True)
                (modem.fs.xml_dir() / "own.xml").write_text(own)
            modem.start()
            fleet.append(modem)
        await clock.advance(1)
        try:
            assert len(parsed) == builtin_count + 1, len(parsed)
            first = fleet[0].agent.models
            for modem in fleet:
                assert modem.agent.failure is None
                assert modem.agent.models[3] is first[3]        # the very same (frozen) model
                assert (32999 in modem.agent.models) == (modem is fleet[7])
            fleet[7].reboot()                             # the host model is read again at each boot
            assert len(parsed) == builtin_count + 2
        finally:
            for modem in fleet:
                modem.close()
    asyncio.new_event_loop().run_until_complete(go())
