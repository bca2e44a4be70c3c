"""The agent against a real Eclipse Leshan server, driven over the real PTY like a host would."""
import re
import socket
import time
import uuid

import pytest

from emulator.testing.host import EmulatorProcess

pytestmark = pytest.mark.leshan
OK = b"\r\nOK\r\n"


def _ep() -> str:
    return f"emu-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def modem(tmp_path, leshan):
    """An emulator aimed at Leshan, with its own endpoint name, echo off, +CMEE=2."""
    ep = _ep()
    emu = EmulatorProcess(tmp_path / "s", "--lwm2m-server", leshan.coap_uri, "--time-scale", "4")
    h = emu.open()
    assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"') == OK
    assert h.cmd("AT#REBOOT") == OK
    assert h.cmd("ATE0") == OK
    h.echo = False
    assert h.cmd("AT+CMEE=2") == OK
    h.wait_network()
    yield emu, h, ep
    h.close()
    emu.kill()




def test_register_read_write_execute_update_deregister(modem, leshan):
    emu, h, ep = modem
    events = leshan.events(ep)
    try:
        assert h.cmd("AT#LWM2MMON=1,3") == OK
        assert h.cmd("AT#LWM2MENA=1") == OK
        h.wait_for(rb'LWM2M-TLT:"REGISTERING",SSID=123,"' + leshan.coap_uri.encode() + rb'"\r\n')
        h.wait_for(rb'LWM2M-TLT:"REGISTERED",SSID=123,"' + leshan.coap_uri.encode() + rb'"\r\n')
        client = leshan.wait_client(ep, timeout=30)
        urls = {l["url"] for l in client["objectLinks"]}
        assert {"/1/0", "/3/0", "/4/0", "/33211/0"} <= urls
        assert h.cmd("AT#LWM2MENA?") == b'\r\n#LWM2MENA: 1,1,0,5,5,"ACTIVE"\r\n' + OK

        # server reads what the module owns
        assert leshan.read_value(ep, "3/0/0") == "Telit"
        assert leshan.read_value(ep, "3/0/2") == "354938100000001"
        # server writes a writable resource of a monitored object: the host hears of it
        res = leshan.write(ep, "3/0/15", "Europe/Rome", "string", format="TEXT")
        assert res["success"], res
        h.wait_for(rb'#LWM2MMON: UPD,"/3/0/15/0"\r\n')
        assert h.cmd("AT#LWM2MR=0,3,0,15,0") == b"\r\n#LWM2MR: Europe/Rome\r\n" + OK
        # server executes the registration update trigger: an Update reaches the server
        res = leshan.execute(ep, "1/0/8")
        assert res["success"], res
        events.wait_event("UPDATED", timeout=30)

        # a new instance from the host reaches the server in an Update
        assert h.cmd("AT#LWM2MNEWINST=0,3303,0") == OK
        events.wait_event("UPDATED", timeout=30,
                          predicate=lambda e: "/3303/0" in str(e))
        assert h.cmd("AT#LWM2MSET=1,3303,0,5700,0,-23.400000") == OK
        assert leshan.read_value(ep, "3303/0/5700") == -23.4
        assert h.cmd("AT#LWM2MR=0,3303,0,5700,0") == b"\r\n#LWM2MR: -23.400000\r\n" + OK
        assert h.cmd("AT#LWM2MGET=1,3303,0,5700,0") == b"\r\n#LWM2MGET: -23.400000\r\n" + OK

        # disable: the server no longer lists the endpoint
        assert h.cmd("AT#LWM2MENA=0") == OK
        h.wait_for(rb'LWM2M-TLT:"DEREGISTERED",SSID=123,"[^"]*"\r\n')
        h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n')
        leshan.wait_gone(ep, timeout=30)
        assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: "DIS"\r\n' + OK
        assert h.cmd("AT#LWM2MENA?") == b"\r\n#LWM2MENA: 0\r\n" + OK
    finally:
        events.close()


def test_guide_example_ack_mode_stat(modem, leshan):
    """Guide 3.1.1: enable and disable in ACK mode, outside the active window."""
    emu, h, ep = modem
    uri = leshan.coap_uri.encode()
    assert h.cmd("AT#LWM2MENA=1,1,1,5,20") == OK
    h.wait_for(rb'\r\n#LWM2MRING: "REG"\r\n')
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 1,"WAIT"\r\n' + OK
    assert h.cmd("AT#LWM2MENA?") == b'\r\n#LWM2MENA: 1,1,1,5,20,"WAIT"\r\n' + OK
    assert h.cmd("AT#LWM2MACK=1") == OK
    h.wait_for(rb'\r\nLWM2M-TLT:"REGISTERING",SSID=123,"' + uri + rb'"\r\n')
    h.wait_for(rb'\r\nLWM2M-TLT:"REGISTERED",SSID=123,"' + uri + rb'"\r\n')
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 1,"ACTIVE"\r\n' + OK
    h.wait_for(rb"\r\n#LWM2MEND: 0\r\n", timeout=30)             # guardReleaseTime (20 s virtual)
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 1,"IDLE"\r\n' + OK
    assert h.cmd("AT#LWM2MENA?") == b'\r\n#LWM2MENA: 1,1,1,5,20,"IDLE"\r\n' + OK
    assert h.cmd("AT#LWM2MACK=1") == b"\r\n+CME ERROR: operation not allowed\r\n"
    assert h.cmd("AT#LWM2MENA=0") == OK
    h.wait_for(rb'\r\n#LWM2MRING: "DRG"\r\n')
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 1,"WAIT"\r\n' + OK
    assert h.cmd("AT#LWM2MACK=1") == OK
    assert h.cmd("AT#LWM2MENA?") == b'\r\n#LWM2MENA: 1,1,1,5,20,"DEREG"\r\n' + OK
    h.wait_for(rb'\r\nLWM2M-TLT:"CLIENT_DISABLED"\r\n')
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: "DIS"\r\n' + OK
    assert h.cmd("AT#LWM2MENA?") == b"\r\n#LWM2MENA: 0\r\n" + OK
    leshan.wait_gone(ep, timeout=30)


def test_guide_example_no_ack_mode(modem, leshan):
    emu, h, ep = modem
    assert h.cmd("AT#LWM2MENA=1") == OK
    assert h.cmd("AT#LWM2MENA=1") == b"\r\n+CME ERROR: operation not allowed\r\n"   # busy / already enabled
    h.wait_for(rb'LWM2M-TLT:"REGISTERED",SSID=123,"[^"]*"\r\n')
    assert h.cmd("AT#LWM2MENA=1") == b"\r\n+CME ERROR: operation not allowed\r\n"   # enabling twice
    assert h.cmd("AT#LWM2MENA=0") == OK
    assert h.cmd("AT#LWM2MENA?") == b'\r\n#LWM2MENA: 1,1,0,5,5,"DEREG"\r\n' + OK
    h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n')
    assert h.cmd("AT#LWM2MENA?") == b"\r\n#LWM2MENA: 0\r\n" + OK


def test_ack_mode_disable_inside_active_window(modem, leshan):
    emu, h, ep = modem
    assert h.cmd("AT#LWM2MENA=1,1,1,5,100") == OK
    h.wait_for(rb'#LWM2MRING: "REG"\r\n')
    assert h.cmd("AT#LWM2MACK=1") == OK
    h.wait_for(rb'LWM2M-TLT:"REGISTERED",[^\r]*\r\n')
    # still inside guardReleaseTime: no DRG ring, straight to deregistration
    assert h.cmd("AT#LWM2MENA=0") == OK
    out = h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n')
    assert b"LWM2MRING" not in out and b'"DEREGISTERED"' in out
    leshan.wait_gone(ep, timeout=30)


def test_server_that_never_answers_ends_in_force_exit(tmp_path):
    # a UDP socket that swallows everything: the registration never gets an answer
    hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    hole.bind(("127.0.0.1", 0))
    uri = f"coap://127.0.0.1:{hole.getsockname()[1]}"
    try:
        with EmulatorProcess(tmp_path / "s", "--lwm2m-server", uri, "--time-scale", "1000") as emu, \
                emu.open() as h:
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1") == OK
            out = h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n', timeout=60)
            assert re.search(rb'LWM2M-TLT:"REGISTERING",SSID=123,"coap://127.0.0.1:\d+"\r\n\r\n'
                             rb'LWM2M-TLT:"FORCE_EXIT"\r\n\r\nLWM2M-TLT:"CLIENT_DISABLED"\r\n$', out), out
            assert h.cmd("AT#LWM2MENA?") == b"\r\n#LWM2MENA: 0\r\n" + OK
            assert h.cmd("AT#LWM2MENA=1") == b"\r\nERROR\r\n"        # only a reboot recovers
            assert h.cmd("AT#REBOOT") == OK
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1") == OK
    finally:
        hole.close()


def test_ack_mode_notification_rings_not_and_reports_notify_ack(modem, leshan):
    emu, h, ep = modem
    events = leshan.events(ep)
    try:
        assert h.cmd("AT#LWM2MENA=1,1,1,5,5") == OK
        h.wait_for(rb'#LWM2MRING: "REG"\r\n')
        assert h.cmd("AT#LWM2MACK=1") == OK
        h.wait_for(rb'LWM2M-TLT:"REGISTERED",[^\r]*\r\n')
        leshan.wait_client(ep, timeout=30)
        assert leshan.observe(ep, "3/0/9", format="TEXT")["success"]
        h.wait_for(rb"\r\n#LWM2MEND: 0\r\n", timeout=30)                 # the data context is released
        assert h.cmd("AT#LWM2MNFYACKURI=0,1,3,0,9") == OK
        assert h.cmd("AT#LWM2MNFYACKENA=0,1") == OK
        assert h.cmd("AT#LWM2MSET=0,3,0,9,0,55") == OK
        h.wait_for(rb'\r\n#LWM2MRING: "NOT"\r\n', timeout=30)            # asks before using the network
        assert "NOTIFICATION" not in events.names()
        assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 1,"WAIT"\r\n' + OK
        assert h.cmd("AT#LWM2MACK=1") == OK
        ev = events.wait_event("NOTIFICATION", timeout=30)
        assert "55" in str(ev)
        # the notification was confirmable and Leshan acknowledged it
        h.wait_for(rb'\r\n#LWM2MNFYACK: 0,123,"/3/0/9","ACK"\r\n', timeout=30)
        h.wait_for(rb"\r\n#LWM2MEND: 0\r\n", timeout=30)
    finally:
        events.close()


def test_unacknowledged_notification_reports_nack(tmp_path):
    """A server that never ACKs a confirmable notification: #LWM2MNFYACK "NACK" after the retries.
    (The server is a raw CoAP peer the module registers with: the client answers only its servers.)"""
    from coap_peer import CON, OBSERVE, RawServer, code
    server = RawServer()
    try:
        with EmulatorProcess(tmp_path / "s", "--lwm2m-server", server.uri, "--time-scale", "50") as emu, \
                emu.open() as h:
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1", raw=True).endswith(OK)
            server.wait_register()
            h.wait_for(rb'LWM2M-TLT:"REGISTERED",[^\r]*\r\n')
            assert h.cmd("AT#LWM2MNFYACKURI=0,1,3,0,9;#LWM2MNFYACKENA=0,1", raw=True).endswith(OK)
            server.ack_notifications = False                                # we never ACK it
            ans = server.request(code(0, 1), "3/0/9", [(OBSERVE, b"")])
            assert ans is not None and ans.code == 0x45
            assert h.cmd("AT#LWM2MSET=0,3,0,9,0,44", raw=True).endswith(OK)
            deadline = time.monotonic() + 10
            while not server.notifications and time.monotonic() < deadline:
                server.recv(0.2)
            note = server.notifications[0]
            assert note.mtype == CON and note.payload.endswith(b"44")
            h.wait_for(rb'\r\n#LWM2MNFYACK: 0,123,"/3/0/9","NACK"\r\n', timeout=60)
    finally:
        server.close()


def test_module_way_sts_999_then_reboot(tmp_path, leshan):
    """The field walkthrough: no factory server given; AT#LWM2MSTS=0,999,... then AT#REBOOT."""
    ep = _ep()
    with EmulatorProcess(tmp_path / "s", "--time-scale", "4") as emu, emu.open() as h:
        assert h.cmd(f'AT#LWM2MSTS=0,999,"{leshan.coap_uri}",0', raw=True).endswith(OK)
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"', raw=True).endswith(OK)
        assert h.cmd("AT#REBOOT", raw=True).endswith(OK)
        h.wait_network()
        assert h.cmd("AT#LWM2MENA=1", raw=True).endswith(OK)
        h.wait_for(rb'LWM2M-TLT:"REGISTERED",SSID=123,"' + leshan.coap_uri.encode() + rb'"\r\n')
        leshan.wait_client(ep, timeout=30)
        assert h.cmd("AT#LWM2MENA=0", raw=True).endswith(OK)
        h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n')
        # back to the factory server at the next boot
        assert h.cmd("AT#LWM2MSTS=0", raw=True).endswith(OK)
        assert h.cmd("AT#REBOOT", raw=True).endswith(OK)
        h.wait_network()
        assert h.cmd("AT#LWM2MENA=1", raw=True).endswith(OK)
        h.wait_for(rb'LWM2M-TLT:"REGISTERING",SSID=123,"coap://127.0.0.1:5683"\r\n')


def test_disable_then_reboot_leaves_no_stale_session(modem, leshan):
    """A disable cut short by a reboot: nothing of the old boot leaks into the next session."""
    emu, h, ep = modem
    assert h.cmd("AT#LWM2MENA=1") == OK
    h.wait_for(rb'LWM2M-TLT:"REGISTERED",[^\r]*\r\n')
    assert h.cmd("AT#LWM2MENA=0;#REBOOT") == OK
    h.echo = True                                     # a reboot brings the factory echo back
    h.wait_network()
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 0,"DIS"\r\n' + OK
    assert h.cmd("AT#LWM2MENA=1") == OK
    h.wait_for(rb'LWM2M-TLT:"REGISTERED",[^\r]*\r\n')
    assert h.cmd("AT#LWM2MENA?") == b'\r\n#LWM2MENA: 1,1,0,5,5,"ACTIVE"\r\n' + OK
    assert h.cmd("AT#LWM2MR=0,3,0,0,0") == b"\r\n#LWM2MR: Telit\r\n" + OK
