"""Every #LWM2M command's set, read and test forms and documented errors, over the real PTY.

These need no server: the agent stays disabled (or fails to reach anything) here; the commands
that need a registered agent are exercised against Leshan in test_lwm2m_leshan.py.
"""
import json

import pytest

from emulator.testing.host import EmulatorProcess

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
NOT_ALLOWED = b"\r\n+CME ERROR: operation not allowed\r\n"
NOT_SUPPORTED = b"\r\n+CME ERROR: operation not supported\r\n"


@pytest.fixture
def h(host):
    assert host.cmd("AT+CMEE=2") == OK
    return host


TEST_FORMS = {
    "#LWM2MSTAT": OK,
    "#LWM2MMON": b"\r\n#LWM2MMON: (0,1),(1-65535)\r\n" + OK,
    "#LWM2MENA": b"\r\n#LWM2MENA: (0,1),(1-6),(0,1),(1-100),(1-100)\r\n" + OK,
    "#LWM2MACK": b"\r\n#LWM2MACK: (1)\r\n" + OK,
    "#LWM2MR": b"\r\n#LWM2MR: (0-4),(0-65535),(0-65535),(0-65535),(0-65535)\r\n" + OK,
    "#LWM2ME": b"\r\n#LWM2ME: (0-4),(0-65535),(0-65535),(0-65535),(0-65535)\r\n" + OK,
    "#LWM2MW": b"\r\n#LWM2MW: (0-4),(0-65535),(0-65535),(0-65535),(0-65535)\r\n" + OK,
    "#LWM2MSTS": OK,
    "#LWM2MSET": b"\r\n#LWM2MSET: (0-3)\r\n" + OK,
    "#LWM2MNEWINST": b"\r\n#LWM2MNEWINST: (0),(7-65534),(0-65534)\r\n" + OK,
    "#LWM2MGET": b"\r\n#LWM2MGET: (0-3),(0-65535),(0-65535),(0-65535),(0-65535)\r\n" + OK,
    "#LWM2MFOTACFG": b"\r\n#LWM2MFOTACFG: (0-4),(0-3)\r\n" + OK,
    "#LWM2MFOTAACK": b"\r\n#LWM2MFOTAACK: (0-4),(1)\r\n" + OK,
    "#LWM2MINJKEYS": OK,
    "#LWM2MNFYACKURI": b"\r\n#LWM2MNFYACKURI: (0-4),(0-2),(0-65535),(0-65535),(0-65535)\r\n" + OK,
    "#LWM2MNFYACKENA": b"\r\n#LWM2MNFYACKENA: (0-4),(0-2)\r\n" + OK,
    "#LWM2MEXIST": b"\r\n#LWM2MEXIST: (0-2),(0-65535),(0-65535),(0-65535),(0-65535)\r\n" + OK,
}

READ_FORMS = {
    "#LWM2MSTAT": NOT_SUPPORTED.replace(b"+CME ERROR: operation not supported", b"ERROR"),
    "#LWM2MACK": ERROR, "#LWM2MFOTAACK": ERROR,
    "#LWM2MENA": b"\r\n#LWM2MENA: 0\r\n" + OK, "#LWM2MMON": OK,
    "#LWM2MR": OK, "#LWM2ME": OK, "#LWM2MW": OK, "#LWM2MSTS": OK, "#LWM2MSET": OK, "#LWM2MNEWINST": OK,
    "#LWM2MGET": OK, "#LWM2MFOTACFG": OK, "#LWM2MINJKEYS": OK, "#LWM2MNFYACKURI": OK,
    "#LWM2MNFYACKENA": OK, "#LWM2MEXIST": OK,
}


def test_all_17_commands_test_and_read_forms(h):
    assert len(TEST_FORMS) == 17
    for name, expected in TEST_FORMS.items():
        assert h.cmd(f"AT{name}=?") == expected, name
    for name, expected in READ_FORMS.items():
        assert h.cmd(f"AT{name}?") == expected, name


def test_stat_before_any_enable(h):
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 0,"DIS"\r\n' + OK


def test_exist_examples_of_the_guide(host):
    # the guide's example session, byte for byte (echo on, +CMEE=0 at power-up)
    assert host.cmd("AT#LWM2MEXIST=0,33211,0,0,0", raw=True) == b"AT#LWM2MEXIST=0,33211,0,0,0\r" + OK
    assert host.cmd("AT#LWM2MEXIST=0,11,1", raw=True) == b"AT#LWM2MEXIST=0,11,1\r" + OK
    assert host.cmd("AT#LWM2MEXIST=0,33211,10,0,0", raw=True) == b"AT#LWM2MEXIST=0,33211,10,0,0\r" + ERROR
    assert host.cmd("AT+CMEE=2", raw=True) == b"AT+CMEE=2\r" + OK
    assert host.cmd("AT#LWM2MEXIST=0,33211,10,0,0") == b"\r\n+CME ERROR: Invalid URI\r\n"
    assert host.cmd("AT#LWM2MEXIST=3") == b"\r\n+CME ERROR: Invalid agent\r\n"
    assert host.cmd("AT#LWM2MEXIST=0") == OK
    assert host.cmd("AT#LWM2MEXIST=0,3303") == OK               # defined object, no instance yet
    assert host.cmd("AT#LWM2MEXIST=0,3,0,9") == OK
    assert host.cmd("AT#LWM2MEXIST=0,3,0,999") == b"\r\n+CME ERROR: Invalid URI\r\n"
    assert host.cmd("AT#LWM2MEXIST=0,abc") == b"\r\n+CME ERROR: Invalid args\r\n"
    assert host.cmd("AT+CMEE=1") == OK
    assert host.cmd("AT#LWM2MEXIST=0,33211,10") == b"\r\n+CME ERROR: 4\r\n"


def test_monitor_list_limit_and_lf_joined_listing(h):
    for oid in (4, 3, 3303, 3311, 26251, 33211):
        assert h.cmd(f"AT#LWM2MMON=1,{oid}") == OK
    assert h.cmd("AT#LWM2MMON=1,7") == NOT_ALLOWED                # a 7th object does not fit
    assert h.cmd("AT#LWM2MMON=1,0") == NOT_SUPPORTED              # security object: out of range
    # the firmware joins the lines with a bare <LF> (guide 2.2.2.3)
    assert h.cmd("AT#LWM2MMON?") == (b'\r\n#LWM2MMON: "4"\n#LWM2MMON: "3"\n#LWM2MMON: "3303"\n'
                                     b'#LWM2MMON: "3311"\n#LWM2MMON: "26251"\n#LWM2MMON: "33211"\r\n' + OK)
    assert h.cmd("AT#LWM2MMON=0,3303") == OK
    assert h.cmd("AT#LWM2MMON=0,3303") == NOT_ALLOWED
    assert h.cmd("AT#LWM2MMON=1,7") == OK
    assert h.cmd("AT#REBOOT") == OK
    assert h.cmd("AT#LWM2MMON?") == OK                            # volatile


def test_notify_ack_lists(h):
    assert h.cmd("AT#LWM2MNFYACKURI=0,2") == OK
    for rid in (9, 8, 7, 6, 20, 17):
        assert h.cmd(f"AT#LWM2MNFYACKURI=0,1,3,0,{rid}") == OK
    assert h.cmd("AT#LWM2MNFYACKURI=0,1,3,0,13") == NOT_ALLOWED
    assert h.cmd("AT#LWM2MNFYACKURI=0,0,3,0,6") == OK
    assert h.cmd("AT#LWM2MNFYACKURI=0,2") == (
        b'\r\n#LWM2MNFYACKURI: "/3/0/9"\n#LWM2MNFYACKURI: "/3/0/8"\n#LWM2MNFYACKURI: "/3/0/7"\n'
        b'#LWM2MNFYACKURI: "/3/0/20"\n#LWM2MNFYACKURI: "/3/0/17"\r\n' + OK)
    assert h.cmd("AT#LWM2MNFYACKURI=0,1") == NOT_SUPPORTED
    assert h.cmd("AT#LWM2MNFYACKENA=0,2") == b"\r\nLWM2MNFYACKENA: 0,0\r\n" + OK
    assert h.cmd("AT#LWM2MNFYACKENA=0,1") == OK
    assert h.cmd("AT#LWM2MNFYACKENA=0,2") == b"\r\nLWM2MNFYACKENA: 0,1\r\n" + OK
    assert h.cmd("AT#LWM2MNFYACKENA=0,3") == NOT_SUPPORTED
    assert h.cmd("AT#REBOOT") == OK
    assert h.cmd("AT#LWM2MNFYACKURI=0,2") == OK
    assert h.cmd("AT#LWM2MNFYACKENA=0,2") == b"\r\nLWM2MNFYACKENA: 0,0\r\n" + OK


def test_clean_output_uses_crlf_between_lines(tmp_path):
    with EmulatorProcess(tmp_path / "s", "--clean-output") as emu, emu.open() as h:
        assert h.cmd("AT#LWM2MMON=1,3;#LWM2MMON=1,4") == OK
        assert h.cmd("AT#LWM2MMON?") == b'\r\n#LWM2MMON: "3"\r\n#LWM2MMON: "4"\r\n' + OK


def test_read_write_execute_need_a_working_agent(h):
    assert h.cmd("AT#LWM2MR=0,3,0,0,0") == NOT_ALLOWED
    assert h.cmd("AT#LWM2MW=0,3,0,15,0,UTC") == NOT_ALLOWED
    assert h.cmd("AT#LWM2ME=0,3,0,4,0") == NOT_ALLOWED
    assert h.cmd("AT#LWM2MR=0,3,0") == NOT_SUPPORTED               # missing parameters
    assert h.cmd("AT#LWM2MR=0,70000,0,0,0") == NOT_SUPPORTED       # out of range


def test_set_and_get_whitelist(h):
    assert h.cmd("AT#LWM2MSET=0,3,0,9,0,87") == OK
    assert h.cmd("AT#LWM2MGET=0,3,0,9,0") == b"\r\n#LWM2MGET: 87\r\n" + OK
    assert h.cmd("AT#LWM2MSET=0,3,0,9,0,250") == OK                # the range is the host's business
    assert h.cmd("AT#LWM2MSET=0,3,0,9,0,2147483648") == NOT_SUPPORTED
    assert h.cmd("AT#LWM2MSET=0,3,0,9,0,-2147483648") == OK
    assert h.cmd('AT#LWM2MSET=2,3,0,17,0,"Smart meter"') == OK
    assert h.cmd("AT#LWM2MGET=2,3,0,17,0") == b"\r\n#LWM2MGET: Smart meter\r\n" + OK
    assert h.cmd("AT#LWM2MSET=1,3,0,9,0,1.5") == NOT_ALLOWED       # type does not match the resource
    assert h.cmd("AT#LWM2MSET=0,3,0,0,0,1") == NOT_ALLOWED         # not whitelisted
    assert h.cmd("AT#LWM2MSET=0,3,0,7,0,4200") == OK               # multiple resource, instance 0
    assert h.cmd("AT#LWM2MGET=0,3,0,7,0") == b"\r\n#LWM2MGET: 4200\r\n" + OK
    assert h.cmd("AT#LWM2MSET=4,3,0,9,0,1") == NOT_SUPPORTED
    # read-only resources of a host-made instance are whitelisted; writable ones are not
    assert h.cmd("AT#LWM2MNEWINST=0,3303,0") == OK
    assert h.cmd("AT#LWM2MNEWINST=0,3303,0") == NOT_ALLOWED
    assert h.cmd("AT#LWM2MSET=1,3303,0,5700,0,-12.250000") == OK
    assert h.cmd("AT#LWM2MGET=1,3303,0,5700,0") == b"\r\n#LWM2MGET: -12.250000\r\n" + OK
    assert h.cmd("AT#LWM2MSET=2,3303,0,5701,0,Cel") == OK          # 5701 Sensor Units is read-only
    assert h.cmd("AT#LWM2MSET=2,3303,0,5750,0,x") == NOT_ALLOWED   # 5750 Application Type is RW
    assert h.cmd("AT#LWM2MNEWINST=0,3311,2") == OK
    assert h.cmd("AT#LWM2MSET=3,3311,2,5706,0,FF00A0") == NOT_ALLOWED
    assert h.cmd("AT#LWM2MNEWINST=0,6,0") == NOT_SUPPORTED          # objects below 7
    assert h.cmd("AT#LWM2MNEWINST=0,65000,0") == NOT_ALLOWED        # no model loaded for it
    assert h.cmd("AT#LWM2MEXIST=0,3303,0,5700") == OK


def test_injkeys_rules(h):
    assert h.cmd('AT#LWM2MINJKEYS=0,1,"my-ep","id1","secret"') == OK
    assert h.cmd("AT#LWM2MINJKEYS=0,1,my-ep,id1,secret") == OK     # quotes are optional
    assert h.cmd('AT#LWM2MINJKEYS=0,1,"my-ep","id1"') == NOT_SUPPORTED   # identity without key
    assert h.cmd('AT#LWM2MINJKEYS=0,1,"' + "e" * 64 + '"') == OK
    assert h.cmd('AT#LWM2MINJKEYS=0,1,"' + "e" * 65 + '"') == NOT_SUPPORTED
    assert h.cmd("AT#LWM2MINJKEYS=0,3") == OK
    assert h.cmd("AT#LWM2MINJKEYS=0,2") == OK
    assert h.cmd("AT#LWM2MINJKEYS=0,0") == OK
    assert h.cmd("AT#LWM2MINJKEYS=0,4") == NOT_SUPPORTED


def test_sts_entries(h):
    assert h.cmd('AT#LWM2MSTS=0,999,"coap://127.0.0.1:5999",0') == OK
    assert h.cmd("AT#LWM2MSTS=0,999,coaps://example.invalid") == OK
    assert h.cmd('AT#LWM2MSTS=0,999,"http://nope"') == NOT_SUPPORTED
    assert h.cmd("AT#LWM2MSTS=0,999") == NOT_SUPPORTED
    for entry in (10, 11, 12, 20):
        assert h.cmd(f"AT#LWM2MSTS=0,{entry}") == OK
    assert h.cmd("AT#LWM2MSTS=0,13") == NOT_SUPPORTED
    assert h.cmd("AT#LWM2MSTS=3") == NOT_SUPPORTED
    assert h.cmd("AT#LWM2MSTS=0") == OK                             # back to the factory server


def test_fota_config_and_ack(h):
    assert h.cmd("AT#LWM2MFOTACFG=0,3") == OK
    assert h.cmd("AT#LWM2MFOTACFG=0,4") == NOT_SUPPORTED
    assert h.cmd("AT#LWM2MFOTAACK=0,1") == NOT_ALLOWED              # nothing waits for an ACK
    assert h.cmd("AT#LWM2MACK=1") == NOT_ALLOWED


def test_auto_settings_survive_restart(tmp_path):
    state = tmp_path / "s"
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CMEE=2") == OK
        assert h.cmd("AT#LWM2MNEWINST=0,3303,4") == OK
        assert h.cmd("AT#LWM2MSET=1,3303,4,5700,0,21.5") == OK
        assert h.cmd("AT#LWM2MSET=0,3,0,9,0,42") == OK
        assert h.cmd("AT#LWM2MFOTACFG=0,2") == OK
        assert h.cmd("AT#LWM2MMON=1,3303") == OK
        emu.proc.kill()
        emu.proc.wait()
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CMEE=2") == OK
        assert h.cmd("AT#LWM2MEXIST=0,3303,4") == OK
        assert h.cmd("AT#LWM2MGET=1,3303,4,5700,0") == b"\r\n#LWM2MGET: 21.500000\r\n" + OK
        assert h.cmd("AT#LWM2MGET=0,3,0,9,0") == b"\r\n#LWM2MGET: 42\r\n" + OK
        assert h.cmd("AT#LWM2MMON?") == OK
        nvm = emu.state_dir.joinpath("nvm.json").read_text()
        assert json.loads(nvm)["data"]["lwm2m_fota_mode"] == 2 and nvm.count('"lwm2m_fota_mode"') == 1
