"""LwM2M 1.0.2 rules the client must keep (issue 8, section 2), each as a whole kind of fault.

The server side is a raw aiocoap peer (emulator/testing/raw_server.py) that plays the registered
server: it answers Register/Update itself (or holds the answer back) and sends its requests from the
socket the client registered with, including requests Leshan's REST API will not send (gt on a string,
operations on /0). The device is the emulator process, driven over its real PTY.
"""
from __future__ import annotations

import re

import pytest

from emulator.lwm2m.formats import tlv
from emulator.testing.host import EmulatorProcess
from emulator.testing.raw_server import RawServer

OK = b"\r\nOK\r\n"
TEXT, LINK, OPAQUE, TLV, JSON = 0, 40, 42, 11542, 11543


class Device:
    def __init__(self, tmp, srv: RawServer, *extra: str):
        self.srv = srv
        self.emu = EmulatorProcess(tmp / "state", "--lwm2m-server", srv.uri, *extra)
        self.h = self.emu.open()
        assert self.h.cmd("ATE0") == OK
        self.h.echo = False
        assert self.h.cmd("AT+CMEE=2") == OK
        self.h.wait_network()

    def enable(self, line: str = "AT#LWM2MENA=1") -> None:
        assert self.h.cmd(line) == OK
        self.h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r]*\r\n', timeout=30)

    def close(self):
        self.h.close()
        self.emu.kill()


@pytest.fixture
def srv():
    with RawServer() as s:
        yield s


@pytest.fixture
def dev(tmp_path, srv):
    d = Device(tmp_path, srv, "--time-scale", "4")
    d.enable()
    yield d
    d.close()


def links_of(rec) -> set[str]:
    return set(re.findall(r"<([^>]*)>", rec.payload.decode()))


# ------------------------------------------------------------------------------------------ 2.1 security object
def test_registration_lists_no_security_object(dev, srv):
    """1.0.2 5.3.1: the Security Object (ID 0) is never part of the Register's object list."""
    links = links_of(srv.wait_register())
    assert "/3/0" in links and "/1/0" in links
    assert not any(l == "/0" or l.startswith("/0/") for l in links), links


SECURITY_OPERATIONS = [
    ("GET", "/0", {}), ("GET", "/0/0", {}), ("GET", "/0/0/0", {}), ("GET", "/0/0/3", {"accept": OPAQUE}),
    ("GET", "/0", {"accept": TLV}), ("GET", "/0/0/0", {"accept": TEXT}),
    ("GET", "/0", {"accept": LINK}), ("GET", "/0/0", {"accept": LINK}), ("GET", "/0/0/0", {"accept": LINK}),
    ("PUT", "/0/0/0", {"payload": b"coap://evil", "cf": TEXT}),
    ("PUT", "/0/0", {"payload": tlv.encode_resource(0, "coap://evil", "string"), "cf": TLV}),
    ("POST", "/0/0", {"payload": tlv.encode_resource(0, "coap://evil", "string"), "cf": TLV}),
    ("POST", "/0/0/4", {}),                                                      # Execute
    ("POST", "/0", {"payload": tlv.encode_resource(0, "coap://evil", "string"), "cf": TLV}),   # Create
    ("DELETE", "/0/0", {}), ("DELETE", "/0", {}),
    ("PUT", "/0/0", {"query": ("pmin=5",)}), ("PUT", "/0", {"query": ("pmax=60",)}),
    ("PUT", "/0/0/0", {"query": ("pmin=1",)}),                                   # Write-Attributes
]


def test_security_object_answers_unauthorized_to_every_operation(dev, srv):
    """1.0.2: only the Bootstrap-Server may touch /0; a LwM2M Server gets 4.01 for every operation."""
    for method, path, kw in SECURITY_OPERATIONS:
        code, payload, _ = srv.request(method, path, **kw)
        assert code == "4.01", (method, path, kw, code, payload)
        assert b"coap" not in payload and b"</0" not in payload
    obs = srv.observe("/0/0/0")                                                  # Observe
    code, payload, msg = obs.wait(1)
    assert code == "4.01" and msg.opt.observe is None
    # nothing changed: no attribute was stored, the server URI is intact, the instance still exists
    code, payload, _ = srv.request("GET", "/3", accept=LINK)
    assert code == "2.05" and b"pmin" not in payload
    assert dev.h.cmd("AT#LWM2MEXIST=0,0,0") == OK
    # and the rest of the tree is served as before
    code, payload, _ = srv.request("GET", "/3/0/0")
    assert (code, payload) == ("2.05", b"Telit")
