"""Issue 8 §1: a service that fails at power-on says why, once, and the module then behaves as a
module whose service failed -- never half-started. Here: the LwM2M agent with broken built-in models."""
import asyncio
import logging

import pytest

import emulator.resources
from emulator.clock import ManualClock
from emulator.lwm2m import models
from emulator.modem.core import Modem
from emulator.port import MemoryPort


@pytest.fixture
def broken_models(tmp_path, monkeypatch):
    """The package's built-in models replaced by a folder whose model file is not XML."""
    bad = tmp_path / "objects"
    bad.mkdir()
    (bad / "3.xml").write_text("<LWM2M><Object ObjectType='MODefinition'><Name>cut")
    models.clear_model_cache()
    monkeypatch.setattr(emulator.resources, "builtin_models_root", lambda: bad)
    yield bad
    models.clear_model_cache()


def _run(coro):
    return asyncio.new_event_loop().run_until_complete(coro)


def test_agent_that_cannot_start_is_reported_once_and_disabled(tmp_path, broken_models, caplog, monkeypatch):
    caplog.set_level(logging.WARNING)

    async def go():
        clock = ManualClock()
        port = MemoryPort()
        modem = Modem(port, tmp_path / "m", clock=clock)
        modem.start()
        await clock.advance(3)
        port.take()

        async def at(line: str) -> bytes:
            port.feed(line.encode() + b"\r")
            await clock.advance(1)
            return port.take()

        failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
        assert len(failures) == 1, [r.getMessage() for r in failures]
        text = failures[0].getMessage()
        assert "LwM2M agent failed at power-on" in text and "3.xml" in text, text

        assert modem.agent.failure and modem.agent.store is None and modem.agent.client is None
        assert (await at("ATE0")).endswith(b"OK\r\n")
        assert await at("AT") == b"\r\nOK\r\n"                 # the module itself runs
        assert await at("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 0,"DIS"\r\n\r\nOK\r\n'
        for cmd in ("AT#LWM2MNEWINST=0,3303,0", "AT#LWM2MR=0,3,0,0,0", "AT#LWM2MMON=1,3303",
                    "AT#LWM2MACK=1", "AT#LWM2MEXIST=0,3,0"):
            assert await at(cmd) == b"\r\nERROR\r\n", cmd
        out = await at("AT#LWM2MENA=1")
        assert out.startswith(b"\r\nOK\r\n"), out
        out += await at("AT")
        assert b'LWM2M-TLT:"CLIENT_DISABLED"' in out, out
        assert await at("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 0,"DIS"\r\n\r\nOK\r\n'
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1   # said once

        # the package repaired: the next boot starts the agent
        monkeypatch.undo()
        models.clear_model_cache()
        modem.reboot()
        assert modem.agent.failure is None and modem.agent.store is not None
        assert (await at("AT#LWM2MNEWINST=0,3303,0")).endswith(b"\r\nOK\r\n")
        modem.close()
    _run(go())
