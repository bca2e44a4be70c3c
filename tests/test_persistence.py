"""Non-volatile memory: what survives a kill -9, a restart, a corrupt file."""
import json

from emulator.testing.host import EmulatorProcess

OK = b"\r\nOK\r\n"


def test_settings_survive_kill_9(tmp_path):
    state = tmp_path / "state"
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd('AT+CGDCONT=1,"IP","persist.apn"') == OK      # "Auto": saved at once
        assert h.cmd("AT+CMEE=2;&W") == OK                           # profile: saved by &W
        assert h.cmd("AT+CEREG=1") == OK                             # not saved: lost
        emu.proc.kill()                                              # SIGKILL, no clean-up
        emu.proc.wait()
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CGDCONT?") == b'\r\n+CGDCONT: 1,"IP","persist.apn","",0,0\r\n' + OK
        assert h.cmd("AT+CMEE?") == b"\r\n+CMEE: 2\r\n" + OK
        assert h.cmd("AT+CEREG?").startswith(b"\r\n+CEREG: 0,")


def test_profiles_f_y_p_z(tmp_path):
    state = tmp_path / "state"
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CMEE=2;&W1") == OK
        assert h.cmd("AT+CMEE=0") == OK
        assert h.cmd("ATZ1") == OK
        assert h.cmd("AT+CMEE?") == b"\r\n+CMEE: 2\r\n" + OK
        assert h.cmd("AT&F1") == OK
        assert h.cmd("AT+CMEE?") == b"\r\n+CMEE: 0\r\n" + OK
        assert h.cmd("AT&P1") == OK                 # boot from full profile 1
        emu.proc.kill()
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CMEE?") == b"\r\n+CMEE: 2\r\n" + OK
        assert h.cmd("AT&Y1") == OK                 # base section only: +CMEE (extended) at factory
        emu.proc.kill()
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CMEE?") == b"\r\n+CMEE: 0\r\n" + OK


def test_reboot_keeps_nvm_and_answers(tmp_path):
    with EmulatorProcess(tmp_path / "s") as emu, emu.open() as h:
        assert h.cmd('AT+CGDCONT=2,"IP","second"') == OK
        assert h.cmd("AT+CMEE=2") == OK
        assert h.cmd("AT#REBOOT") == OK
        assert h.cmd("AT+CMEE?") == b"\r\n+CMEE: 0\r\n" + OK      # volatile setting gone
        assert b'2,"IP","second"' in h.cmd("AT+CGDCONT?")


def test_corrupt_or_foreign_nvm_is_replaced(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    for junk in (b"\x00\xff garbage", json.dumps({"magic": "someone-else", "data": {}}).encode(), b"{"):
        (state / "nvm.json").write_bytes(junk)
        with EmulatorProcess(state) as emu, emu.open() as h:
            assert h.cmd("AT") == OK
            assert h.cmd("AT+CGDCONT?") == b'\r\n+CGDCONT: 1,"IPV4V6","","",0,0\r\n' + OK
            assert h.cmd('AT+CGDCONT=1,"IP","fresh"') == OK
            emu.proc.terminate()
            emu.proc.wait(10)
            assert "corrupt or foreign" in emu.stderr_text()
        doc = json.loads((state / "nvm.json").read_text())
        assert doc["data"]["cgdcont"]["1"] == ["IP", "fresh"]
