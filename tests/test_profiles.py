"""Module profiles (TOML) shipped in tools/profiles/ load and change what the module reports."""
from pathlib import Path

from emulator.testing.host import EmulatorProcess

PROFILES = Path(__file__).resolve().parents[1] / "tools" / "profiles"
OK = b"\r\nOK\r\n"


def test_ne910c1_profile(tmp_path):
    with EmulatorProcess(tmp_path / "s", "--profile", str(PROFILES / "ne910c1-e1.toml"), "--time-scale", "20") \
            as emu, emu.open() as h:
        assert h.cmd("AT+CGMM") == b"\r\nNE910C1-E1\r\n" + OK
        assert h.cmd("AT+CEREG=2") == OK
        h.wait_for(rb'\+CEREG: 5,"3AD6","490A66",9\r\n', timeout=30)


def test_pin_locked_sim(tmp_path):
    with EmulatorProcess(tmp_path / "s", "--profile", str(PROFILES / "ml865c1-pin-locked.toml")) as emu, \
            emu.open() as h:
        assert h.cmd("AT+CMEE=2") == OK
        assert h.cmd("AT+CPIN?") == b"\r\n+CPIN: SIM PIN\r\n" + OK
        assert h.cmd("AT+CIMI") == b"\r\n+CME ERROR: SIM PIN required\r\n"
        assert h.cmd('AT+CPIN="0000"') == b"\r\n+CME ERROR: incorrect password\r\n"
        assert h.cmd('AT+CPIN="1234"') == OK
        assert h.cmd("AT+CPIN?") == b"\r\n+CPIN: READY\r\n" + OK
        assert h.cmd("AT+CIMI") == b"\r\n001010123456789\r\n" + OK


def test_bad_profile_is_refused(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[identity\nmodel=")
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "emulator", "--profile", str(bad), "--state-dir", str(tmp_path / "s")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot read profile" in r.stderr


def test_derived_profile_equals_a_merged_one_and_shares_untouched_sections():
    """Fleets build one profile per modem with Profile.derived: the same data as merging the
    overrides into the base, the untouched sections shared with the base, the base unchanged."""
    from emulator.modem.profile import Profile
    base = Profile({"network": {"operator": "X"}, "identity": {"model": "NE910C1-E1"}})
    over = {"identity": {"imei": "354938100000019", "serial": "354938100000019"},
            "sim": {"imsi": "001010000000019"}, "lwm2m": {"endpoint": "ep-19", "servers": {"10": ["coap://127.0.0.1:1", 0]}}}
    want = Profile({"network": {"operator": "X"}, "identity": {"model": "NE910C1-E1", **over["identity"]},
                    "sim": over["sim"], "lwm2m": over["lwm2m"]})
    got = Profile.derived(base, over)
    assert got.data == want.data
    assert got["network"] is base["network"] and got["gnss"] is base["gnss"]
    assert got["identity"] is not base["identity"] and base["identity"]["imei"] == "354938100000001"
    assert base["lwm2m"]["endpoint"] == "" and "10" in base["lwm2m"]["servers"] and "11" in got["lwm2m"]["servers"]
