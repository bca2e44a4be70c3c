"""Each component's typed NVM record (issue 10, item 5): the records keep the JSON shapes the NVM file
had before (existing files still load), a value of the wrong shape gives the factory value, and
+CCLK and /3/0/14 read and write the module's one time-zone record."""
from __future__ import annotations

import asyncio

from emulator.lwm2m.agent import EnableParams, ResumeRecord
from emulator.lwm2m.bootstrap import BootstrapRecord, ProvisionedServer
from emulator.lwm2m.host_settings import HostSettings, ServerSetting
from emulator.modem.core import Modem
from emulator.modem.firmware import FirmwareRecord
from emulator.modem.nvm import NVM
from emulator.modem.timezone import TimeZone
from emulator.port import MemoryPort

DM1 = {"bs": "coap://127.0.0.1:5783", "uri": "coap://127.0.0.1:5683", "ssid": 99, "lifetime": 60,
       "binding": "U", "identity": "", "key": ""}
DM2 = {"bs": "coap://127.0.0.1:5783", "uri": "coaps://127.0.0.1:5684", "ssid": 102, "lifetime": 300,
       "binding": "UQ", "identity": "6964", "key": "0102"}


def test_records_keep_the_on_disk_shapes(tmp_path):
    path = tmp_path / "nvm.json"
    nvm = NVM(path)
    TimeZone(-10).save(nvm)
    FirmwareRecord("M0B.800003").save(nvm)
    ServerSetting("coap://10.0.0.1:5683", True).save(nvm)
    BootstrapRecord.from_records([DM1, DM2]).save(nvm)
    ResumeRecord(EnableParams(2, 1, 7, 9)).save(nvm)
    assert nvm.data == {"tz_quarters": -10, "firmware_revision": "M0B.800003",
                        "lwm2m_server": ["coap://10.0.0.1:5683", 1],
                        "lwm2m_bootstrapped": {**DM1, "more": [DM2]},
                        "lwm2m_resume": [2, 1, 7, 9]}
    again = NVM(path)                                   # read back from the file, shapes checked
    assert again.problem is None
    assert TimeZone.load(again) == TimeZone(-10) and TimeZone(-10).utc_offset == "-02:30"
    assert FirmwareRecord.load(again).installed == "M0B.800003"
    assert ServerSetting.load(again) == ServerSetting("coap://10.0.0.1:5683", True)
    boot = BootstrapRecord.load(again)
    assert boot.bs == DM1["bs"] and [s.ssid for s in boot.servers] == [99, 102]
    assert boot.servers[1] == ProvisionedServer("coaps://127.0.0.1:5684", 102, 300, "UQ", "6964", "0102")
    assert ResumeRecord.load(again).params == EnableParams(2, 1, 7, 9)
    FirmwareRecord().save(again)                        # back to the factory image: no section
    ServerSetting.clear(again)
    BootstrapRecord.clear(again)
    ResumeRecord.clear(again)
    assert again.data == {"tz_quarters": -10}


def test_a_record_of_the_wrong_shape_gives_the_factory_value():
    nvm = NVM(None)
    nvm.data.update({"tz_quarters": "+8", "firmware_revision": 7, "lwm2m_server": ["", 3],
                     "lwm2m_bootstrapped": {"uri": "http://x", "ssid": 1},
                     "lwm2m_resume": [1, 0], "lwm2m_server_pending": ["coap://h:1", 5]})
    assert TimeZone.load(nvm) == TimeZone(0)
    assert FirmwareRecord.load(nvm) == FirmwareRecord()
    assert ServerSetting.load(nvm) is None
    assert BootstrapRecord.load(nvm) is None
    assert ResumeRecord.load(nvm) is None
    settings = HostSettings(nvm)
    assert settings.apply_pending_server() is False     # a bad pending entry is dropped, not applied
    assert "lwm2m_server_pending" not in nvm.data and nvm.data["lwm2m_server"] == ["", 3]
    nvm.data["lwm2m_bootstrapped"] = {**DM1, "more": [{"uri": 5}, DM2]}
    assert [s.ssid for s in BootstrapRecord.load(nvm).servers] == [99, 102]   # a bad extra one left out


def test_cclk_and_utc_offset_share_the_modems_time_zone(tmp_path):
    async def go():
        port = MemoryPort()
        modem = Modem(port, tmp_path / "m")
        modem.start()

        async def at(line: bytes) -> bytes:
            port.take()
            port.feed(line + b"\r")
            out = b""
            for _ in range(500):                      # bounded: at most 5 s
                out += port.take()
                if out.endswith(b"OK\r\n") or b"ERROR" in out:
                    return out
                await asyncio.sleep(0.01)
            raise AssertionError(f"no answer to {line!r}: {out!r}")

        try:
            device = modem.agent.objects[3]
            assert (await at(b'AT+CCLK="26/11/30,10:00:00+08"')).endswith(b"OK\r\n")
            assert modem.timezone == TimeZone(8) and device.utc_offset() == "+02:00"
            assert modem.agent.store.get(3, 0, 14) == "+02:00"
            assert device.clock_write(14, "-03:45") is True          # a server's write of /3/0/14
            assert b'-15"' in await at(b"AT+CCLK?")
            assert modem.nvm.get("tz_quarters") == -15
            modem.reboot()
            assert modem.timezone.quarters == -15 and modem.agent.objects[3].utc_offset() == "-03:45"
        finally:
            await modem.aclose()
    asyncio.run(go())
