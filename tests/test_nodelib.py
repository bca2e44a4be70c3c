"""The agent against a second, independent LwM2M server: lwm2m-node-lib 1.4.0 (npm), over the real PTY.

That server differs from Leshan where it matters: writes carry content-format 1541 (old text), the
registration answer is one Location-Path option "rd/<n>", reads carry no Accept option, requests
reach the device through the server's own socket, and confirmable notifications are never
acknowledged (the device must notify with NON).

In CI (CI=true) these tests must run: a missing node/npm is a failure. Elsewhere they skip without
node (or without npm when the packages are not installed yet in ~/.cache/telit-emu/nodelib).
"""
import os
import re
import uuid

import pytest

from emulator.testing import nodelib as nl
from emulator.testing.host import EmulatorProcess

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
OK = b"\r\nOK\r\n"
TIMEOUT = 60.0          # generous: the machine is shared


@pytest.fixture(scope="module")
def server():
    missing = nl.missing_tools()
    if missing:
        if IN_CI:
            pytest.fail(f"lwm2m-node-lib tests must run in CI but {', '.join(missing)} is missing")
        pytest.skip(f"lwm2m-node-lib server needs {', '.join(missing)}")
    with nl.NodeLibServer() as srv:
        yield srv




@pytest.fixture(scope="module")
def module(server, tmp_path_factory):
    """One emulator aimed at the node server, with its own endpoint name, registered (no-ACK mode)."""
    ep = f"emu-nl-{uuid.uuid4().hex[:10]}"
    state = tmp_path_factory.mktemp("nodelib") / "s"
    emu = EmulatorProcess(state, "--lwm2m-server", server.coap_uri, "--time-scale", "4")
    h = emu.open(timeout=20)
    try:
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"') == OK
        assert h.cmd("AT#REBOOT") == OK
        assert h.cmd("ATE0") == OK
        h.echo = False
        assert h.cmd("AT+CMEE=2") == OK
        h.wait_network()
        assert h.cmd("AT#LWM2MMON=1,3") == OK
        mark = server.mark()
        assert h.cmd("AT#LWM2MENA=1") == OK
        uri = server.coap_uri.encode()
        h.wait_for(rb'LWM2M-TLT:"REGISTERED",SSID=123,"' + re.escape(uri) + rb'"\r\n', timeout=TIMEOUT)
        yield emu, h, ep, mark
    finally:
        h.close()
        emu.kill()


def test_registration_lists_the_endpoint(server, module):
    emu, h, ep, mark = module
    reg = server.wait_event("registration", since=mark, timeout=TIMEOUT, predicate=lambda e: e["ep"] == ep)
    assert reg["version"] == "1.0" and reg["binding"] == "U"
    assert int(reg["lifetime"]) > 0
    links = reg["payload"]
    for obj in ("</1/0>", "</3/0>"):
        assert obj in links, links
    dev = server.wait_device(ep, timeout=TIMEOUT)
    assert dev["name"] == ep and dev["address"] == "127.0.0.1"
    assert ep in [d["name"] for d in server.devices()]
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 1,"ACTIVE"\r\n' + OK


def test_read_device_resources(server, module):
    emu, h, ep, _ = module
    server.wait_device(ep, timeout=TIMEOUT)
    assert server.read(ep, "3/0/0") == "Telit"           # no Accept option: plain text
    assert server.read(ep, 3, 0, 2) == "354938100000001"
    with pytest.raises(nl.NodeLibRequestError) as exc:
        server.read(ep, "3/7/0")
    assert exc.value.code == "4.04"


def test_write_with_content_format_1541(server, module):
    """The library writes text with the pre-standard content-format 1541."""
    emu, h, ep, _ = module
    server.wait_device(ep, timeout=TIMEOUT)
    server.write(ep, "3/0/15", "Europe/Rome")
    h.wait_for(rb'#LWM2MMON: UPD,"/3/0/15/0"\r\n', timeout=TIMEOUT)
    assert h.cmd("AT#LWM2MR=0,3,0,15,0") == b"\r\n#LWM2MR: Europe/Rome\r\n" + OK
    assert server.read(ep, "3/0/15") == "Europe/Rome"
    # a read-only resource refuses the write
    with pytest.raises(nl.NodeLibRequestError) as exc:
        server.write(ep, "3/0/0", "Acme")
    assert exc.value.code == "4.05"
    assert server.read(ep, "3/0/0") == "Telit"


def test_execute_registration_update_trigger(server, module):
    """Execute /1/0/8: the module sends an Update to the location the server gave ("rd/<n>")."""
    emu, h, ep, _ = module
    dev = server.wait_device(ep, timeout=TIMEOUT)
    mark = server.mark()
    server.execute(ep, "1/0/8")
    upd = server.wait_event("update", since=mark, timeout=TIMEOUT, predicate=lambda e: e["ep"] == ep)
    assert upd["device"]["id"] == dev["id"]           # same registration, updated in place
    # a non-executable resource refuses
    with pytest.raises(nl.NodeLibRequestError) as exc:
        server.execute(ep, "3/0/0")
    assert exc.value.code == "4.05"


def test_observe_notifies_host_set(server, module):
    """Observe /3303/0/5700 after the host creates the instance; the host's #LWM2MSET notifies (NON)."""
    emu, h, ep, _ = module
    server.wait_device(ep, timeout=TIMEOUT)
    mark = server.mark()
    assert h.cmd("AT#LWM2MNEWINST=0,3303,0") == OK
    server.wait_event("update", since=mark, timeout=TIMEOUT,
                      predicate=lambda e: e["ep"] == ep and "</3303/0>" in (e.get("payload") or ""))
    assert h.cmd("AT#LWM2MSET=1,3303,0,5700,0,20") == OK
    # returns once the device answered the Observe request (see test_observe_answers_with_current_value
    # for why the library's own answer may only come with the first notification)
    pending = server.observe(ep, "3303/0/5700", wait=False, timeout=TIMEOUT)
    assert h.cmd("AT#LWM2MSET=1,3303,0,5700,0,21.5") == OK
    note = server.wait_notification(ep, "3303/0/5700", timeout=TIMEOUT,
                                    value=lambda v: float(v) == 21.5)
    assert float(pending.result(TIMEOUT)) in (20.0, 21.5)
    # later changes keep coming: an unacknowledged CON notification would hold them back
    assert h.cmd("AT#LWM2MSET=1,3303,0,5700,0,22.25") == OK
    note = server.wait_notification(ep, "3303/0/5700", timeout=TIMEOUT)
    assert float(note["value"]) == 22.25 and not note.get("initial")
    assert h.cmd("AT#LWM2MSET=1,3303,0,5700,0,-3") == OK
    note = server.wait_notification(ep, "3303/0/5700", timeout=TIMEOUT)
    assert float(note["value"]) == -3.0
    server.cancel_observe(ep, "3303/0/5700")


def test_observe_answers_with_current_value(server, module):
    """Observe answers at once with the current value (like a Read), without waiting for a change."""
    emu, h, ep, _ = module
    server.wait_device(ep, timeout=TIMEOUT)
    expected = server.read(ep, "3/0/1")                    # model number: never changes
    pending = server.observe(ep, "3/0/1", wait=False, timeout=TIMEOUT)
    try:
        assert pending.result(10) == expected
    finally:
        server.cancel_observe(ep, "3/0/1")


def test_deregistration_on_disable(server, module):
    emu, h, ep, _ = module
    server.wait_device(ep, timeout=TIMEOUT)
    mark = server.mark()
    assert h.cmd("AT#LWM2MENA=0") == OK
    h.wait_for(rb'LWM2M-TLT:"DEREGISTERED",SSID=123,"[^"]*"\r\n', timeout=TIMEOUT)
    h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n', timeout=TIMEOUT)
    server.wait_event("unregistration", since=mark, timeout=TIMEOUT, predicate=lambda e: e["ep"] == ep)
    server.wait_gone(ep, timeout=TIMEOUT)
    assert ep not in [d["name"] for d in server.devices()]
    assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: "DIS"\r\n' + OK
