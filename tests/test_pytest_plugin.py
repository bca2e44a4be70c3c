"""The pytest plugin host projects use: its fixtures give a module on a real PTY."""
import pytest
import serial


def test_telit_port_fixture(telit_port):
    assert telit_port.cmd("AT") == b"\r\nOK\r\n"


@pytest.mark.telit_emu("--clean-output")
def test_marker_passes_arguments(telit_module):
    with serial.Serial(telit_module.port, 115200, timeout=2) as s:
        s.write(b"ATE0;#LWM2MMON=1,3;#LWM2MMON=1,4\r")
        s.read_until(b"OK\r\n")
        s.write(b"AT#LWM2MMON?\r")
        assert s.read_until(b"OK\r\n") == b'\r\n#LWM2MMON: "3"\r\n#LWM2MMON: "4"\r\n\r\nOK\r\n'
