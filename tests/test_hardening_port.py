"""Issue 9, items 6-12: secrets never logged, private state files, the host's port under a host that
does not read, the #M2MWRITE data phase, bounded growth, NVM of the wrong shape. Real emulator
processes on real PTYs; loopback only; bounded in count and time."""
import json
import os
import re
import stat
import subprocess
import sys
import time

import pytest

from emulator.testing.host import AtHost, EmulatorProcess

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"

KEY_A, KEY_B = "deadbeefcafe", "4242f00d"          # the key: KEY_A + KEY_B; neither half may leak
KEY = KEY_A + KEY_B


def _files_with_key(root, skip=("nvm.json",)):
    hits = []
    for dirpath, _, names in os.walk(root):
        for name in names:
            if name in skip:
                continue
            path = os.path.join(dirpath, name)
            data = open(path, "rb").read()
            for part in (KEY_A, KEY_B):
                if part.encode() in data or part.upper().encode() in data:
                    hits.append((path, part))
    return hits


# ------------------------------------------------------------------------------------------ item 6
def test_a_key_never_reaches_a_log_however_it_is_typed(tmp_path):
    state = tmp_path / "state"
    trace = tmp_path / "trace.log"
    emu = EmulatorProcess(state, "--log", str(trace), "-vv")
    try:
        h = emu.open()
        sent = 0

        def line(data: bytes, *, chunks=None):
            nonlocal sent
            sent += 1
            if chunks:
                for i in range(0, len(data), chunks):
                    h.write(data[i:i + chunks])
                    time.sleep(0.01)
            else:
                h.write(data)
            return h.read_final()

        k = f'0,1,"ep1","id1","{KEY}"'.encode()
        assert line(b"AT#LWM2MINJKEYS=" + k + b"\r").endswith(OK)                       # 1 plain
        assert line(b"AT#LWM2MINJKEYS =" + k + b"\r").endswith(OK)                      # 2 space before =
        assert line(b"AT#LWM2M INJKEYS=" + k + b"\r").endswith(OK)                      # 3 space in the name
        assert line(b"AT#LWM2MINJKEYX\x08S=" + k + b"\r").endswith(OK)                  # 4 backspace in the name
        assert line(b"at#lwm2minjkeys=" + k + b"\r").endswith(OK)                       # 5 lower case
        assert line(b"AT#LWM2MINJKEYS=" + k + b"\r", chunks=9).endswith(OK)             # 6 several writes
        assert line(b"AT#LWM2MINJKEYS=" + k + b"\r", chunks=1).endswith(OK)             # 7 byte by byte
        assert line(b"AT+CMEE=2;#LWM2MINJKEYS=" + k + b"\r").endswith(OK)               # 8 chained
        assert line(b"A/").endswith(OK)                                                 # 9 repeat
        assert line(b"AT#/").endswith(OK)                                               # 10 repeat
        semi = f'0,1,"ep1","id1","{KEY_A};{KEY_B}"'.encode()
        assert line(b"AT#LWM2MINJKEYS=" + semi + b"\r").endswith(OK)                    # 11 ';' in the key
        assert line(f'AT#LWM2MINJKEYS=0,1,"ep1","id1","{KEY}\r'.encode()).endswith(ERROR)  # 12 open quote (-vv: syntax)
        assert line(f'AT#LWM2MINJKEYS=0,1,"ep1","id1",{KEY}x\r'.encode()).endswith(OK)   # 13 unquoted
        assert line(f'AT#LWM2MINJKEYS=0,1,"ep1","id1","{KEY}",7\r'.encode()).endswith(b"\r\n+CME ERROR: operation not supported\r\n")  # 14
        long = KEY * 4
        assert line(f'AT#LWM2MINJKEYS=0,1,"ep1","id1","{long}"\r'.encode()).endswith(b"\r\n+CME ERROR: operation not supported\r\n")  # 15
        # 16 a <CR> inside the key: the rest of the key arrives as a line of its own
        h.write(f'AT#LWM2MINJKEYS=0,1,"ep1","id1","{KEY_A}\r'.encode())
        assert h.read_final().endswith(ERROR)
        h.write(f'{KEY_B}"\r'.encode())
        h.wait_for(re.escape(f'{KEY_B}"\r'.encode()))
        assert h.cmd("AT") == OK
        # 16b the same, the rest of the key starting with "AT" (it looks like a command line; still the key,
        # since the quote the key opened is not closed yet); then a new command is logged normally again
        h.write(f'AT#LWM2MINJKEYS=0,1,"ep1","id1","{KEY_A}\r'.encode())
        assert h.read_final().endswith(ERROR)
        h.write(f'AT{KEY_B}"\r'.encode())
        assert h.read_final().endswith(ERROR)
        assert h.cmd("AT") == OK
        # 16c a broken key line, then lines without quotes: only the next one is taken for the key's rest
        h.write(f'AT#LWM2MINJKEYS=0,1,"ep1","id1","{KEY_A}\r'.encode())
        assert h.read_final().endswith(ERROR)
        assert h.cmd("AT") == OK
        assert h.cmd("AT+CGMR") != OK                  # (the trace shows it in clear: checked below)
        # 17 a failed NVM write (its temp file's name taken by a directory): the handler fails
        blocker = state / f".nvm.json.{emu.proc.pid}.tmp"
        blocker.mkdir()
        assert line(b"AT#LWM2MINJKEYS=" + semi + b"\r").endswith(ERROR)
        blocker.rmdir()
        # 18 split in two writes, the cut inside the key (the old trace showed it twice)
        data = f'AT#LWM2MINJKEYS=0,1,"ep1","id1","{KEY}"\r'.encode()
        cut = data.index(KEY_B.encode()) - 3
        h.write(data[:cut])
        time.sleep(0.1)
        h.write(data[cut:])
        assert h.read_final().endswith(OK)
        assert h.cmd("AT+CGMI") == b"\r\nTelit\r\n" + OK
        h.close()
        emu.terminate()
    finally:
        emu.kill()
    assert "handler of #LWM2MINJKEYS failed" in emu.stderr_text()     # case 17 did fail and log
    text = trace.read_text()
    assert "AT+CGMI" in text                                          # the trace works
    assert "AT+CGMR" in text                     # a broken key line masks one more line, not the rest
    masked = [l for l in text.splitlines() if " masked " in l]
    assert len([l for l in masked if "host->module" in l]) >= 17
    assert all("***" in l for l in masked)
    assert _files_with_key(tmp_path) == []
    assert KEY in (state / "nvm.json").read_text()                    # where the key is kept, by design


# ------------------------------------------------------------------------------------------ item 7
def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_shared_state_folder_is_left_as_it_is(tmp_path):
    """--state-dir /tmp must never chmod /tmp: a sticky (shared) folder keeps its mode, the files in
    it are still private."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    with EmulatorProcess(shared) as emu, emu.open() as h:
        assert h.cmd('AT#LWM2MINJKEYS=0,1,"ep","id","goodkey"') == OK
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    assert _mode(shared / "nvm.json") == 0o600 and _mode(shared / "fs") == 0o700


def test_state_files_are_private_and_a_refused_key_is_never_saved(tmp_path):
    state = tmp_path / "state"
    (state / "fs" / "XML").mkdir(parents=True)
    os.chmod(state, 0o755)
    os.chmod(state / "fs", 0o755)
    (state / "nvm.json").write_text(json.dumps({"magic": "telit-emu-nvm", "version": 1, "data": {}}))
    os.chmod(state / "nvm.json", 0o644)
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd('AT#LWM2MINJKEYS=0,1,"ep","id","goodkey"') == OK
    with EmulatorProcess(state) as emu, emu.open() as h:
        h.write(b'AT#M2MWRITE="/XML/a.xml",3\r')
        h.wait_for(rb">>>")
        h.write(b"abc")
        assert h.read_final() == OK
        # a key refused because the NVM write failed is not saved by the next write
        blocker = state / f".nvm.json.{emu.proc.pid}.tmp"
        blocker.mkdir()
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"ep","id","{KEY}"') == ERROR
        blocker.rmdir()
        assert h.cmd('AT+CGDCONT=2,"IP","other"') == OK
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"ep","id","{KEY * 5}"') == ERROR      # too long
        assert h.cmd('AT+CGDCONT=3,"IP","third"') == OK
    nvm = (state / "nvm.json").read_text()
    assert "goodkey" in nvm and KEY not in nvm and "third" in nvm
    assert _mode(state / "nvm.json") == 0o600
    for d in (state, state / "fs", state / "fs" / "XML"):
        assert _mode(d) == 0o700, d
    assert _mode(state / "fs" / "XML" / "a.xml") == 0o600


def test_default_state_dir_is_private(tmp_path):
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg")}
    proc = subprocess.Popen([sys.executable, "-m", "emulator"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        line = proc.stdout.readline().decode()
        assert line.startswith("port: ")
        with AtHost(line.split(": ", 1)[1].strip()) as h:
            assert h.cmd('AT+CGDCONT=2,"IP","x"') == OK
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    default = tmp_path / "xdg" / "telit-emu" / "default"
    assert _mode(default) == 0o700 and _mode(default.parent) == 0o700
    assert _mode(default / "fs") == 0o700 and _mode(default / "nvm.json") == 0o600


# ------------------------------------------------------------------------------------------ item 9
def test_m2mwrite_payload_starting_with_lf_is_kept(host):
    host.write(b'AT#M2MWRITE="/XML/lf.txt",4\r\n')        # the <LF> after the <CR>: not payload
    host.wait_for(rb">>>")
    host.write(b"\nab\n")                                   # the payload's own <LF>s are payload
    assert host.read_final() == OK
    assert host.cmd("AT+CGMI") == b"\r\nTelit\r\n" + OK     # no byte of the next command eaten
    assert b">>>\nab\n" in host.cmd("AT#M2MREAD=/XML/lf.txt")
    # the command's <CR> alone, then (after the prompt) a payload that begins with <LF>: that <LF>
    # directly follows the <CR>, so it is the skipped one
    host.write(b'AT#M2MWRITE="/XML/lf2.txt",2\r')
    host.wait_for(rb">>>")
    host.write(b"\nxy")
    assert host.read_final() == OK
    assert b">>>xy" in host.cmd("AT#M2MREAD=/XML/lf2.txt")


def test_m2mwrite_data_phase_has_a_total_time_limit(tmp_path):
    # --time-scale 10: the limit for 1000 bytes (5 s + 1000 bytes at 9600 baud = 6.04 s) is 0.6 s real
    with EmulatorProcess(tmp_path / "s", "--time-scale", "10") as emu:
        with emu.open() as h:
            h.write(b'AT#M2MWRITE="/XML/short.txt",1000\r')
            h.wait_for(rb">>>")
            h.write(b"hello")
        t0 = time.monotonic()
        with emu.open() as h:
            # a host polling with AT: its bytes feed the data phase (as on the module), yet the phase
            # ends by its limit and AT gets its OK (the old idle timer restarted at every byte)
            got = b""
            while time.monotonic() - t0 < 5:
                h.write(b"AT\r")
                time.sleep(0.2)
                got += h.ser.read(h.ser.in_waiting or 0)
                if got.endswith(b"AT\r\r\nOK\r\n"):
                    break
            assert b"\r\nERROR\r\n" in got and got.endswith(b"AT\r\r\nOK\r\n"), got
            assert time.monotonic() - t0 < 3
            assert b"short.txt" not in h.cmd("AT#M2MLIST")


def test_m2m_hidden_names_refused_and_leftovers_cleaned(tmp_path):
    state = tmp_path / "s"
    xml = state / "fs" / "XML"
    xml.mkdir(parents=True)
    (xml / ".a.xml.tmp").write_bytes(b"x" * 5000)          # a write cut by kill -9
    (xml / ".hidden").write_bytes(b"y" * 3000)
    (xml / "seen.xml").write_bytes(b"z" * 100)
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CMEE=1") == OK
        assert h.cmd('AT#M2MWRITE="/XML/.hidden",10') == b"\r\n+CME ERROR: 1102\r\n"
        assert h.cmd('AT#M2MWRITE="/XML/.x.tmp",10') == b"\r\n+CME ERROR: 1102\r\n"
        listing = h.cmd("AT#M2MLIST")
        sizes = [int(n) for n in re.findall(rb'#M2MLIST: "[^"]+",(\d+)', listing)]
        free = int(re.search(rb"free bytes: (\d+)", listing).group(1))
        assert sizes == [100]
        assert free == 1024 * 1024 - sum(sizes)
    assert sorted(os.listdir(xml)) == ["seen.xml"]


# ------------------------------------------------------------------------------------------ item 8
def _write_without_reading(h, lines: bytes, chunk: int):
    """Write ``lines`` in ``chunk``-byte writes from a thread (a write blocks while the module takes no
    input) and read nothing until the writer is done or has been stalled for 2 s. Returns the thread
    and its progress ({"sent": bytes written})."""
    import threading
    progress = {"sent": 0}

    def writer():
        for i in range(0, len(lines), chunk):
            h.ser.write(lines[i:i + chunk])
            progress["sent"] = i + chunk
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    last, since = -1, time.monotonic()
    while t.is_alive() and time.monotonic() - since < 2:
        if progress["sent"] != last:
            last, since = progress["sent"], time.monotonic()
        time.sleep(0.1)
    return t, progress


def test_host_that_does_not_read_loses_whole_urcs_never_a_response(tmp_path):
    n = 10_000
    trace = tmp_path / "trace.log"
    with EmulatorProcess(tmp_path / "s", "--log", str(trace)) as emu, emu.open() as h:
        assert h.cmd("ATE0") .endswith(OK)
        h.echo = False
        assert h.cmd("AT#LWM2MMON=1,3") == OK
        lines = b"".join(b"AT#LWM2MSET=0,3,0,9,0,%d\r" % (i % 100) for i in range(n))
        # the host does not read until the writer is done or stalled (flow control) for 2 s
        t, progress = _write_without_reading(h, lines, 1024)
        got = bytearray(h.buf)
        deadline = time.monotonic() + 120
        while got.count(b"\r\nOK\r\n") < n and time.monotonic() < deadline:
            got += h.ser.read(h.ser.in_waiting or 1)
        t.join(10)
        time.sleep(0.3)
        got += h.ser.read(h.ser.in_waiting or 0)
    pieces = bytes(got).split(b"\r\n")
    assert pieces[0] == b"" and pieces[-1] == b""
    body = [p for p in pieces if p]
    bad = [p for p in body if p not in (b"OK", b'#LWM2MMON: UPD,"/3/0/9/0"')]
    assert bad == [], bad[:5]
    assert bytes(got).count(b"\r\n\r\n\r\n") == 0          # every line framed <CR><LF>...<CR><LF>
    oks = body.count(b"OK")
    urcs = len(body) - oks
    assert oks == n
    dropped = trace.read_text().count(" ## dropped-urc ")
    assert urcs + dropped == n, (urcs, dropped)


def test_responses_alone_over_the_bound_stop_input_until_the_host_reads(tmp_path):
    n = 2000              # answers (echo + AT&V) ~ 2000 x 0.8 kB: far above the 256 kB bound
    cmd = b"AT&V" + b" " * 390                  # a long line: the input outgrows the kernel's buffer
    with EmulatorProcess(tmp_path / "s") as emu, emu.open() as h:
        one = h.cmd(cmd)
        lines = (cmd + b"\r") * n
        t, progress = _write_without_reading(h, lines, 500)
        assert t.is_alive() and progress["sent"] < len(lines)      # the module took no more input
        expected = (cmd + b"\r" + one) * n
        got = h.read_exactly(len(expected), timeout=60)
        t.join(10)
        assert got == expected                   # every answer, whole and in order
        assert h.cmd("AT") == OK


# ------------------------------------------------------------------------------------------ item 11
_WRONG = [[], {}, "x", "", 1, -5, 10 ** 12, True, None, 1.5, {"1": ["IP"]}, [["x", 1]], {"a": {"b": 1}},
          ["coap://127.0.0.1:5683"], [1, 2, 3], {"uri": 5}, {"instances": "x"}, {"instances": [[1]]},
          {"values": [[3, 0]]}, {"0": {"S3": 1000}}, {"1": [1, 2]}, ["a", "b", "c", "d"], [[]], "factory"]


def _sections():
    return ["startup", "profiles", "cgdcont", "cops_mode", "cops_format", "tz_quarters", "gpscfg",
            "firmware_revision", "lwm2m_server", "lwm2m_server_pending", "lwm2m_keys", "lwm2m_bootstrapped",
            "lwm2m_resume", "lwm2m_store", "lwm2m_fota", "lwm2m_fota_mode", "setting:#SLED", "setting:+WS46"]


def test_nvm_of_the_wrong_shape_boots_answers_and_enables(tmp_path):
    import random
    rng = random.Random(9)
    sections = _sections()
    for round_ in range(6):
        state = tmp_path / f"s{round_}"
        state.mkdir()
        data = {}
        for key in sections:
            data[key] = rng.choice(_WRONG)
        (state / "nvm.json").write_text(json.dumps({"magic": "telit-emu-nvm", "version": 1, "data": data}))
        (state / ".nvm.json.999999999.tmp").write_text("{")          # left by a kill -9
        with EmulatorProcess(state) as emu, emu.open() as h:         # it prints port: and answers
            assert h.cmd("AT") == OK
            assert h.cmd("AT+CGDCONT?").endswith(OK)
            assert h.cmd("AT&V").endswith(OK)
            assert h.cmd("AT$GPSCFG?").endswith(OK)
            assert h.cmd("AT+COPS?").endswith(OK)
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1") == OK
            h.wait_for(rb'LWM2M-TLT:"REGISTERING"[^\r\n]*\r\n')
            assert h.cmd("AT#LWM2MSET=0,3,0,9,0,57") == OK
            assert h.cmd("AT#LWM2MENA=0") == OK
        err = emu.stderr_text()
        assert "wrong shape" in err and err.count("wrong shape") == 1, err
        assert "Traceback" not in err, err
        assert not (state / ".nvm.json.999999999.tmp").exists()


def test_nvm_bad_section_replaced_rest_kept(tmp_path):
    state = tmp_path / "s"
    state.mkdir()
    data = {"cgdcont": {"1": ["IP"]}, "setting:#SLED": [1, 20, 30], "tz_quarters": 8}
    (state / "nvm.json").write_text(json.dumps({"magic": "telit-emu-nvm", "version": 1, "data": data}))
    with EmulatorProcess(state) as emu, emu.open() as h:
        assert h.cmd("AT+CGDCONT?") == b'\r\n+CGDCONT: 1,"IPV4V6","","",0,0\r\n' + OK     # factory
        assert h.cmd("AT#SLED?") == b"\r\n#SLED: 1,20,30\r\n" + OK                         # kept
    assert "cgdcont" in emu.stderr_text()


# ------------------------------------------------------------------------------------------ item 12
def test_the_agents_context_cannot_be_removed_under_it(tmp_path):
    with EmulatorProcess(tmp_path / "s") as emu, emu.open() as h:
        assert h.cmd("AT+CMEE=1") == OK
        h.wait_network()
        assert h.cmd("AT#LWM2MENA=1") == OK
        # within the busy window, before the agent has activated context 1
        assert h.cmd("AT+CGDCONT=1") == b"\r\n+CME ERROR: 3\r\n"
        assert h.cmd('AT+CGDCONT=1,"IP","other"') == b"\r\n+CME ERROR: 3\r\n"
        h.wait_for(rb'LWM2M-TLT:"REGISTERING"[^\r\n]*\r\n')
        assert h.cmd("AT+CGDCONT=1") == b"\r\n+CME ERROR: 3\r\n"
        assert h.cmd("AT#LWM2MSTAT").startswith(b'\r\n#LWM2MGETSTAT: 1,"ACTIVE"')      # not disabled
        assert h.cmd('AT+CGDCONT=2,"IP","free"') == OK                               # others are free
        assert h.cmd("AT+CGDCONT=2") == OK
        assert h.cmd("AT#LWM2MENA=0") == OK
        h.wait_for(rb'CLIENT_DISABLED"?\r\n')
        assert h.cmd("AT+CGDCONT=1") == OK                   # released with the agent
    assert "Traceback" not in emu.stderr_text() and "KeyError" not in emu.stderr_text()


def test_leshan_tool_fails_loudly_when_its_port_is_taken(leshan_available):
    """Another server on the ports (e.g. a Leshan started before): the REST check would be answered
    by it, so the tool must see the taken port itself, exit non-zero and say which port."""
    import http.server
    import socket
    import threading
    from emulator.testing.leshan import free_port
    tool = os.path.join(os.path.dirname(__file__), "..", "tools", "leshan.py")

    class Api(http.server.BaseHTTPRequestHandler):
        def do_GET(self):                       # what a running Leshan answers on /api/clients
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *a):
            pass

    for kind in ("udp", "tcp"):
        holder = None
        if kind == "udp":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            taken = s.getsockname()[1]
            ports = ["--coap-port", str(taken), "--web-port", str(free_port("tcp"))]
        else:
            holder = http.server.HTTPServer(("127.0.0.1", 0), Api)
            threading.Thread(target=holder.serve_forever, daemon=True).start()
            taken = holder.server_address[1]
            ports = ["--coap-port", str(free_port("udp")), "--web-port", str(taken)]
        try:
            proc = subprocess.Popen([sys.executable, tool, *ports, "--coaps-port", str(free_port("udp")),
                                     "--no-models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, stdin=subprocess.DEVNULL)
            try:
                out, err = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:         # it claims to run: SIGTERM stops its Java too
                proc.terminate()
                out, err = proc.communicate(timeout=30)
            r = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        finally:
            if holder:
                holder.shutdown()
                holder.server_close()
            else:
                s.close()
        assert r.returncode != 0, (kind, r.stdout, r.stderr)
        assert "running" not in r.stdout and str(taken) in r.stderr, (kind, r.stdout, r.stderr)


# ------------------------------------------------------------------------------------------ item 10
@pytest.mark.leshan
def test_instances_bounded_register_fits_leshan_and_auto_writes_stay_fast(tmp_path, leshan):
    import statistics
    import uuid
    MAX_INSTANCES_PER_OBJECT, MAX_INSTANCES = 128, 320     # the documented limits (emulator/lwm2m/store.py)
    ep = f"emu-{uuid.uuid4().hex[:10]}"
    with EmulatorProcess(tmp_path / "s", "--lwm2m-server", leshan.coap_uri, "--time-scale", "4") as emu, \
            emu.open() as h:
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"') == OK
        assert h.cmd("AT#REBOOT") == OK
        assert h.cmd("ATE0") == OK
        h.echo = False
        assert h.cmd("AT+CMEE=1") == OK
        created = 0
        for oid in (3303, 3311, 3300, 3304, 3323, 3200):
            for iid in range(MAX_INSTANCES_PER_OBJECT + 1):
                ans = h.cmd(f"AT#LWM2MNEWINST=0,{oid},{iid}")
                if ans != OK:
                    assert ans == b"\r\n+CME ERROR: 20\r\n", (oid, iid, ans)        # memory full
                    assert iid == MAX_INSTANCES_PER_OBJECT or created > MAX_INSTANCES - 64
                    break
                created += 1
        assert h.cmd("AT#LWM2MNEWINST=0,3303,9999") == b"\r\n+CME ERROR: 20\r\n"
        # one Auto write at the limit: a few ms (the whole NVM is no longer rebuilt per write)
        times = []
        for k in range(30):
            t0 = time.perf_counter()
            assert h.cmd(f"AT#LWM2MSET=1,3303,0,5700,0,{k}.5") == OK
            times.append(time.perf_counter() - t0)
        median = statistics.median(times)
        print(f"instances created {created}; Auto write at the limit: median {median * 1000:.1f} ms")
        assert median < 0.025, times
        h.wait_network()
        assert h.cmd("AT#LWM2MENA=1") == OK
        h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r\n]*\r\n', timeout=30)
        client = leshan.wait_client(ep, timeout=30)
        assert len(client["objectLinks"]) > created
        assert h.cmd("AT#LWM2MENA=0") == OK
    assert "FORCE_EXIT" not in emu.stderr_text()


def test_nvm_full_or_failing_write_changes_nothing(tmp_path):
    from emulator.modem.nvm import NVM, NvmFull
    nvm = NVM(tmp_path / "nvm.json", max_bytes=2000)
    nvm.set("lwm2m_keys", {"key": "kept"})
    before = (tmp_path / "nvm.json").read_bytes()
    with pytest.raises(NvmFull):
        nvm.set("lwm2m_store", {"instances": [], "values": [[3, 0, 1, "x" * 3000]]})
    assert nvm.get("lwm2m_store") is None and (tmp_path / "nvm.json").read_bytes() == before
    (tmp_path / f".nvm.json.{os.getpid()}.tmp").mkdir()          # the next write fails
    with pytest.raises(OSError):
        nvm.set("lwm2m_keys", {"key": "refused"})
    (tmp_path / f".nvm.json.{os.getpid()}.tmp").rmdir()
    nvm.set("tz_quarters", 4)                                     # a later write of another section
    assert json.loads((tmp_path / "nvm.json").read_text())["data"] == {"lwm2m_keys": {"key": "kept"},
                                                                       "tz_quarters": 4}
    assert _mode(tmp_path / "nvm.json") == 0o600


def test_port_drops_whole_urcs_oldest_first_and_keeps_responses():
    """PtyPort alone (a real PTY, nobody reading): over the bound, the oldest whole URC lines go first;
    a response is never dropped and the host reads no partial line."""
    import asyncio
    from emulator.port import PtyPort

    async def go():
        port = PtyPort(max_buffer=4096)
        dropped = []
        port.on_drop = dropped.append
        port.start(lambda data: None)
        sent = []
        # fill the kernel's buffer first (what the kernel holds is the host's already)
        while not port._out:
            port.write(b"\r\nOK\r\n")
        for i in range(400):
            urc = b'\r\n#LWM2MMON: UPD,"/3/0/9/%d"\r\n' % i
            port.write(urc, droppable=True)
            sent.append(urc)
            if i % 50 == 0:
                port.write(b"\r\n+CGMI: response %d\r\n\r\nOK\r\n" % i)
        assert dropped and dropped == sent[:len(dropped)]          # oldest first, whole lines
        assert port.pending <= port.max_buffer
        got = bytearray()
        os.set_blocking(port.slave, False)
        for _ in range(2000):
            try:
                got += os.read(port.slave, 65536)
            except BlockingIOError:
                if not port._out:
                    break
                await asyncio.sleep(0.001)
        port.close()
        return bytes(got), dropped, sent

    got, dropped, sent = asyncio.new_event_loop().run_until_complete(go())
    for i in range(0, 400, 50):
        assert b"\r\n+CGMI: response %d\r\n\r\nOK\r\n" % i in got
    kept = re.findall(rb'\r\n#LWM2MMON: UPD,"/3/0/9/\d+"\r\n', got)
    assert kept == sent[len(dropped):]
    assert re.sub(rb'\r\n(OK|#LWM2MMON: UPD,"/3/0/9/\d+"|\+CGMI: response \d+)\r\n', b"", got) == b""


def test_an_endless_line_costs_bounded_memory_and_still_gets_its_answer(tmp_path):
    """20 MB without a <CR>: the line is over-long (ERROR once the <CR> comes), and no buffer keeps it."""
    def rss_kb(pid):
        with open(f"/proc/{pid}/status") as fh:
            return next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))
    with EmulatorProcess(tmp_path / "s") as emu, emu.open() as h:
        assert h.cmd("ATE0") == OK
        h.echo = False
        before = rss_kb(emu.proc.pid)
        chunk = b"A" * 65536
        h.write(b"AT+CGMI;")
        for _ in range(320):
            h.write(chunk)
        h.write(b"\r")
        assert h.read_final(timeout=30) == ERROR
        assert h.cmd("AT") == OK
        grown = rss_kb(emu.proc.pid) - before
    assert grown < 8 * 1024, f"RSS grew by {grown} KB for one endless line"
