"""The AT line engine over the real PTY, driven with pyserial as a host program would."""
import os
import time

from emulator.testing.host import AtHost, EmulatorProcess

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def test_first_at_answers_ok_byte_exact(host):
    host.write(b"AT\r")
    assert host.read_exactly(len(b"AT\r\r\nOK\r\n")) == b"AT\r\r\nOK\r\n"


def test_realistic_host_init_sequence(tmp_path):
    with EmulatorProcess(tmp_path / "s", "--time-scale", "20") as emu, emu.open() as h:
        assert h.cmd("AT", raw=True) == b"AT\r\r\nOK\r\n"
        assert h.cmd("ATE0", raw=True) == b"ATE0\r\r\nOK\r\n"
        h.echo = False
        assert h.cmd("AT", raw=True) == OK
        assert h.cmd("AT+CMEE=2") == OK
        assert h.cmd("AT+CGMI") == b"\r\nTelit\r\n" + OK
        assert h.cmd("AT+CGMM") == b"\r\nME910C1-WW\r\n" + OK
        assert h.cmd("AT+GMM") == b"\r\nME910C1-WW\r\n" + OK
        assert h.cmd("AT#CGMR") == b"\r\n#CGMR: M0B.600004\r\n" + OK
        assert h.cmd("AT+CGMR") == b"\r\nM0B.600004\r\n" + OK
        assert h.cmd("AT+CGSN") == b"\r\n354938100000001\r\n" + OK
        assert h.cmd("AT+CIMI") == b"\r\n001010123456789\r\n" + OK
        assert h.cmd("AT#CCID") == b"\r\n#CCID: 89882390000012345678\r\n" + OK
        assert h.cmd("AT+ICCID") == b"\r\n+ICCID: 89882390000012345678\r\n" + OK
        assert h.cmd("AT+CPIN?") == b"\r\n+CPIN: READY\r\n" + OK
        assert h.cmd("AT+CEREG=2") == OK
        # registration completes after the attach delay (0.1 s at this time scale)
        h.wait_for(rb'\r\n\+CEREG: 1,"3AD6","490A66",8\r\n', timeout=10)
        assert h.cmd("AT+CEREG?") == b'\r\n+CEREG: 2,1,"3AD6","490A66",8\r\n' + OK
        assert h.cmd("AT+CGREG?") == b"\r\n+CGREG: 0,1\r\n" + OK
        assert h.cmd('AT+CGDCONT=1,"IP","internet.emu"') == OK
        assert h.cmd("AT+CGDCONT?") == b'\r\n+CGDCONT: 1,"IP","internet.emu","",0,0\r\n' + OK
        assert h.cmd("AT+COPS?") == b'\r\n+COPS: 0,0,"Emulated Net",8\r\n' + OK
        assert h.cmd("AT+CGATT?") == b"\r\n+CGATT: 1\r\n" + OK
        assert h.cmd("AT#SGACT=1,1") == b"\r\n#SGACT: 10.81.0.2\r\n" + OK
        assert h.cmd("AT#SGACT=1,1") == b"\r\n+CME ERROR: context already activated\r\n"
        assert h.cmd("AT#SGACT?") == b"\r\n#SGACT: 1,1\r\n" + OK
        assert h.cmd("AT+CGPADDR=1") == b'\r\n+CGPADDR: 1,"10.81.0.2"\r\n' + OK
        assert h.cmd("AT+WS46?") == b"\r\n+WS46: 28\r\n" + OK
        assert h.cmd("ATE1") == OK
        h.echo = True
        assert h.cmd("AT+CSQ", raw=True) == b"AT+CSQ\r\r\n+CSQ: 18,99\r\n" + OK


def test_chains_and_error_stops_chain(host):
    assert host.cmd("AT+CGMI;+CGMM") == b"\r\nTelit\r\n\r\nME910C1-WW\r\n" + OK
    # the failing command ends the line: +CGMM after it never runs
    assert host.cmd("AT+CGMI;+NOSUCH;+CGMM") == b"\r\nTelit\r\n" + ERROR
    assert host.cmd("ATE1V1Q0") == OK
    assert host.cmd("at+cgmi") == b"\r\nTelit\r\n" + OK           # names are case-insensitive
    assert host.cmd("AT + C G M I") == b"\r\nTelit\r\n" + OK       # spaces ignored outside strings
    assert host.cmd("AT+CMEE=1;+CFUN=7") == b"\r\n+CME ERROR: 4\r\n"
    assert host.cmd("AT+CMEE=2;+CFUN=7") == b"\r\n+CME ERROR: operation not supported\r\n"
    assert host.cmd("AT+CMEE=0;+CFUN=7") == ERROR


def test_repeat_prefix(host):
    assert host.cmd("AT+CGMI") == b"\r\nTelit\r\n" + OK
    host.write(b"A/")
    # A/ runs at once, without a terminator, and is echoed as typed
    assert host.read_exactly(2) == b"A/"
    assert host.read_final() == b"\r\nTelit\r\n" + OK


def test_line_limit(host):
    line = "AT" + "+CGMI;" * 66               # 398 characters: runs
    assert len(line) <= 400
    assert host.cmd(line[:-1]).count(b"Telit") == 66
    long_line = "AT+CGMI;" + "+CGMI;" * 70    # over 400: nothing runs
    assert len(long_line) > 400
    assert host.cmd(long_line) == ERROR


def test_numeric_and_quiet_modes(host):
    host.verbose = False
    assert host.cmd("ATV0") == b"0\r"
    assert host.cmd("AT+CGMI") == b"Telit\r\n0\r"
    assert host.cmd("AT+NOSUCH") == b"4\r"
    assert host.cmd("AT+CMEE=1;+CFUN=9") == b"+CME ERROR: 4\r\n"
    host.write(b"ATV1\r")
    assert host.read_exactly(len(b"ATV1\r\r\nOK\r\n")) == b"ATV1\r\r\nOK\r\n"
    host.verbose = True
    host.write(b"ATQ1\r")
    assert host.read_exactly(5) == b"ATQ1\r"
    host.write(b"AT+CGMI\r")
    assert host.read_exactly(len(b"AT+CGMI\r\r\nTelit\r\n")) == b"AT+CGMI\r\r\nTelit\r\n"
    assert host.cmd("ATQ0") == OK


def test_test_forms(host):
    assert host.cmd("AT+CMEE=?") == b"\r\n+CMEE: (0-2)\r\n" + OK
    assert host.cmd("AT+CEREG=?") == b"\r\n+CEREG: (0-2)\r\n" + OK
    assert host.cmd("AT+CFUN=?") == b"\r\n+CFUN: (0,1,4,5),(0,1)\r\n" + OK
    assert host.cmd("AT#SGACT=?") == b"\r\n#SGACT: (1-6),(0,1)\r\n" + OK
    assert host.cmd("AT+CGMI=?") == OK
    assert host.cmd("AT+NOSUCH=?") == ERROR


def test_s_registers_and_backspace(host):
    assert host.cmd("ATS3?") == b"\r\n013\r\n" + OK
    assert host.cmd("ATS5?") == b"\r\n008\r\n" + OK
    # typing with corrections: backspace (S5) removes the previous character
    host.write(b"AT+CGMX\x08I\r")
    assert host.read_exactly(len(b"AT+CGMX\x08I\r")) == b"AT+CGMX\x08I\r"
    assert host.read_final() == b"\r\nTelit\r\n" + OK


def test_command_split_across_writes(host):
    for piece in (b"A", b"T+C", b"GMI"):
        host.write(piece)
        time.sleep(0.05)
    host.write(b"\r")
    assert host.read_final() == b"AT+CGMI\r\r\nTelit\r\n" + OK


def test_bare_crlf_is_ignored(host):
    host.write(b"\r\n")
    assert host.read_exactly(2) == b"\r\n"          # echoed, no result code
    assert host.cmd("AT") == OK


def test_m2mwrite_prompt_flow(host):
    payload = b'<?xml version="1.0"?>\n<LWM2M></LWM2M>\n'
    host.write(f'AT#M2MWRITE="/XML/object_26251.xml",{len(payload)}\r\n'.encode())
    host.wait_for(rb">>>")
    for i in range(0, len(payload), 7):                # small chunks with pauses
        host.write(payload[i:i + 7])
        time.sleep(0.02)
    assert host.read_final() == OK
    host.write(b"\r\n")                                # a stray CRLF afterwards: echoed, no answer
    assert host.read_exactly(2) == b"\r\n"
    assert host.cmd("AT#M2MLIST=/XML/").startswith(b"\r\n#M2MLIST: \"object_26251.xml\",%d\r\n#M2MLIST: free bytes: " % len(payload))
    ans = host.cmd("AT#M2MREAD=/XML/object_26251.xml")
    assert payload in ans
    assert host.cmd("AT#M2MDEL=/XML/object_26251.xml") == OK
    assert host.cmd("AT#M2MDEL=/XML/object_26251.xml") == ERROR
    assert host.cmd("AT#M2MWRITE=/etc/passwd,10") == ERROR


def test_reopen_and_two_handles(emu):
    for _ in range(5):
        with emu.open() as h:
            assert h.cmd("AT") == OK
    a, b = emu.open(), emu.open()
    try:
        a.write(b"AT+CGMI\r")
        # both handles read the same tty: the answer goes to whichever reads first
        deadline = time.monotonic() + 10
        got = b""
        while b"OK\r\n" not in got and time.monotonic() < deadline:
            got += a.ser.read(64) + b.ser.read(64)
        assert b"Telit" in got and got.endswith(b"OK\r\n")
    finally:
        a.close()
        b.close()
    with emu.open() as h:
        assert h.cmd("AT") == OK


def test_output_not_blocked_when_nobody_reads(emu):
    # nobody reads: answers pile up in the pty and our buffer; the emulator keeps going
    with emu.open() as h:
        for _ in range(300):
            h.write(b"AT&V\r")
        time.sleep(0.5)
    with emu.open() as h:
        # everything queued comes first, in order; then the answer to a fresh command
        h.write(b"AT+CGSN\r")
        h.wait_for(rb"AT\+CGSN\r\r\n354938100000001\r\n\r\nOK\r\n", timeout=30)
        assert h.cmd("AT+CGMI") == b"\r\nTelit\r\n" + OK


def test_clean_output_switch(tmp_path):
    with EmulatorProcess(tmp_path / "s", "--clean-output") as emu, emu.open() as h:
        assert h.cmd("AT") == OK


def test_link_log_and_sigterm(tmp_path):
    link = tmp_path / "modem"
    log = tmp_path / "trace.log"
    emu = EmulatorProcess(tmp_path / "s", "--link", str(link), "--log", str(log))
    try:
        assert os.path.islink(link) and os.readlink(link) == emu.port
        with AtHost(str(link)) as h:
            assert h.cmd("AT+CGMI") == b"\r\nTelit\r\n" + OK
        assert emu.terminate() < 1.0
    finally:
        emu.kill()
    assert not os.path.lexists(link)
    text = log.read_text()
    assert "host->module b'AT+CGMI\\r'" in text
    assert "module->host" in text and "Telit" in text


def test_help_lists_options():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "emulator", "--help"], capture_output=True, text=True).stdout
    for opt in ("--link", "--state-dir", "--log", "--clean-output", "--time-scale", "--lwm2m-server", "--profile"):
        assert opt in out
