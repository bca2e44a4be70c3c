"""The common configuration commands of host init sequences, over the real PTY."""
OK = b"\r\nOK\r\n"


def test_common_init_settings(host):
    assert host.cmd("AT+CMEE=2") == OK
    assert host.cmd("AT#SELINT?") == b"\r\n#SELINT: 2\r\n" + OK
    assert host.cmd("AT#SELINT=2") == OK
    assert host.cmd("AT#SELINT=3") == b"\r\n+CME ERROR: operation not supported\r\n"
    assert host.cmd("AT#QSS=2") == OK
    assert host.cmd("AT#QSS?") == b"\r\n#QSS: 2,1\r\n" + OK
    assert host.cmd("AT+CSCS=?") == b'\r\n+CSCS: ("GSM","IRA","8859-1","PCCP437","UCS2")\r\n' + OK
    assert host.cmd('AT+CSCS="UCS2"') == OK
    assert host.cmd("AT+CSCS?") == b'\r\n+CSCS: "UCS2"\r\n' + OK
    assert host.cmd('AT+CSCS="KLINGON"') == b"\r\n+CME ERROR: operation not supported\r\n"
    assert host.cmd("AT+CGEREP=2") == OK
    assert host.cmd("AT+CGEREP?") == b"\r\n+CGEREP: 2,0\r\n" + OK
    assert host.cmd("AT#SIMDET?") == b"\r\n#SIMDET: 2,1\r\n" + OK


def test_ws46_modes_and_the_access_technology(host):
    assert host.cmd("AT+WS46=?") == b"\r\n+WS46: (12,22,25,28-31)\r\n" + OK
    assert host.cmd("AT#WS46?") == b"\r\n#WS46: 0\r\n" + OK
    assert host.cmd("AT#WS46=1") == OK                      # NB-IoT: +COPS/+CEREG report AcT 9
    host.wait_network()
    assert host.cmd("AT+COPS?").endswith(b",9\r\n" + OK)
    assert host.cmd("AT#WS46?") == b"\r\n#WS46: 1\r\n" + OK
