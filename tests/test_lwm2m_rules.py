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


# ------------------------------------------------------------------------------------------ 2.2 write-attributes
BAD_ATTRIBUTES = [
    ("/3/0/0", "gt=5"),            # a String resource: gt/lt/st need Integer or Float
    ("/3/0/0", "st=1"),
    ("/3/0/4", "gt=5"),            # an executable resource
    ("/3/0/13", "lt=5"),           # a Time resource is not numeric either
    ("/3/0", "gt=5"),              # gt/lt/st only at resource level
    ("/3", "st=2"),
    ("/3/0/9", "pmin=-3"),         # pmin/pmax: non-negative integers
    ("/3/0/9", "pmin=1.5"),
    ("/3/0/9", "pmax=1e3"),
    ("/3/0/9", "pmax=abc"),
    ("/3/0", "pmin=-1"),
    ("/3/0/9", "pmin=" + "9" * 40),
    ("/3/0/9", "st=-1"),           # a step is not negative
    ("/3/0/9", "gt=nan"),
    ("/3/0/9", "lt=1e999"),
    ("/3/0/9", "gt=1_0"),
    ("/3/0/9", "foo=1"),           # not an attribute of 1.0
    ("/3/0/9", "dim=1"),           # dim is Discover's, not writable
]


def _attributes_of(srv, path: str) -> str:
    code, payload, _ = srv.request("GET", path, accept=LINK)
    assert code == "2.05", (path, code)
    return payload.decode()


def test_write_attributes_refuses_what_the_rules_forbid_and_changes_nothing(dev, srv):
    before = {p: _attributes_of(srv, p) for p in ("/3", "/3/0", "/3/0/9")}
    for path, query in BAD_ATTRIBUTES:
        code, _, _ = srv.request("PUT", path, query=(query,))
        assert code == "4.00", (path, query, code)
    # one bad attribute spoils the whole request: the good ones with it are not stored either
    code, _, _ = srv.request("PUT", "/3/0/9", query=("pmin=10", "gt=abc"))
    assert code == "4.00"
    assert {p: _attributes_of(srv, p) for p in before} == before
    assert "pmin" not in before["/3/0/9"]
    # a target that does not exist is 4.04
    assert srv.request("PUT", "/3/0/99", query=("pmin=5",))[0] == "4.04"
    assert srv.request("PUT", "/3/7", query=("pmin=5",))[0] == "4.04"
    # what the rules allow is stored
    assert srv.request("PUT", "/3/0/9", query=("gt=50", "lt=20", "st=5", "pmin=1", "pmax=60"))[0] == "2.04"
    assert srv.request("PUT", "/3/0", query=("pmin=2",))[0] == "2.04"
    assert srv.request("PUT", "/3", query=("pmax=300",))[0] == "2.04"
    text = _attributes_of(srv, "/3/0/9")
    assert all(a in text for a in ("gt=50", "lt=20", "st=5", "pmin=1", "pmax=60")), text
    assert "pmin=2" in _attributes_of(srv, "/3/0")


def test_write_attributes_inconsistent_values_are_accepted_and_ignored(dev, srv):
    """LwM2M 1.0.2 5.1.2: a Maximum Period below the Minimum Period is ignored (not refused), and
    change conditions whose lt/gt/st contradict each other are ignored likewise: both requests get
    2.04 and are stored. What "ignored" does to notifications is in the unit tests below."""
    assert srv.request("PUT", "/3/0/9", query=("pmin=20", "pmax=5"))[0] == "2.04"
    assert srv.request("PUT", "/3/0/9", query=("gt=10", "lt=20"))[0] == "2.04"
    text = _attributes_of(srv, "/3/0/9")
    assert "pmax=5" in text and "lt=20" in text


def _unit_observation(attrs):
    """observe.py alone on the stepped clock, with the stand-ins of tests/test_observe.py."""
    from test_observe import setup
    return setup(attrs)


def test_ignored_pmax_below_pmin_sends_no_periodic_notification():
    import asyncio

    async def go():
        clock, site, so, obs = _unit_observation({"pmin": "20", "pmax": "5"})
        await clock.advance(60)
        assert so.sent == []                     # pmax ignored: nothing periodic
        site.store.set(3303, 0, 5700, 30.0)
        obs.changed()
        await clock.advance(0)
        assert so.sent == [("notify", 30.0)]     # pmin still spaces changes (60 s > 20 s since the observe)
    asyncio.new_event_loop().run_until_complete(go())


def test_contradicting_change_conditions_are_ignored():
    import asyncio

    async def go():
        clock, site, so, obs = _unit_observation({"gt": "10", "lt": "20"})     # lt not below gt
        for v in (21.0, 22.0):                   # no crossing of either: still each change notifies
            site.store.set(3303, 0, 5700, v)
            obs.changed()
            await clock.advance(0)
        assert so.sent == [("notify", 21.0), ("notify", 22.0)]
        clock, site, so, obs = _unit_observation({"gt": "30", "lt": "10", "st": "15"})  # lt + 2 st >= gt
        site.store.set(3303, 0, 5700, 21.0)
        obs.changed()
        await clock.advance(0)
        assert so.sent == [("notify", 21.0)]
    asyncio.new_event_loop().run_until_complete(go())


# ------------------------------------------------------------------------------------------ 2.3 binding
def test_unsupported_binding_is_refused_and_nothing_changes(dev, srv):
    assert srv.request("GET", "/3/0/16")[:2] == ("2.05", b"U")
    for value in (b"XYZ", b"UQ", b"S", b"US", b"u", b"", b"UU"):
        code, _, _ = srv.request("PUT", "/1/0/7", value, cf=TEXT)
        assert code == "4.00", (value, code)
    # a whole-instance write carrying a bad binding changes nothing of the instance either
    payload = tlv.encode_resource(1, 77, "integer") + tlv.encode_resource(7, "XYZ", "string")
    assert srv.request("POST", "/1/0", payload, cf=TLV)[0] == "4.00"
    assert srv.request("PUT", "/1/0/1", b"0", cf=TEXT)[0] == "4.00"        # a lifetime below 1 s
    assert srv.request("GET", "/1/0/7")[:2] == ("2.05", b"U")
    assert srv.request("GET", "/1/0/1")[1] != b"77"
    # the registration still says b=U: the next Update carries no binding change
    assert srv.request("POST", "/1/0/8")[0] == "2.04"
    upd = srv.wait("update")
    assert "b" not in upd.params and "lt" not in upd.params


def test_accepted_lifetime_change_is_announced_at_once(dev, srv):
    assert srv.request("PUT", "/1/0/1", b"45", cf=TEXT)[0] == "2.04"
    assert srv.wait("update", timeout=10).params.get("lt") == "45"


def test_accepted_binding_change_is_announced_at_once(tmp_path, srv):
    profile = tmp_path / "uq.toml"
    profile.write_text('[lwm2m]\nsupported_binding = "UQ"\n')
    d = Device(tmp_path, srv, "--time-scale", "4", "--profile", str(profile))
    try:
        d.enable()
        assert srv.wait_register().params["b"] == "U"
        assert srv.request("GET", "/3/0/16")[:2] == ("2.05", b"UQ")
        assert srv.request("PUT", "/1/0/7", b"S", cf=TEXT)[0] == "4.00"       # SMS: not supported
        assert srv.request("PUT", "/1/0/7", b"UQ", cf=TEXT)[0] == "2.04"
        upd = srv.wait("update", timeout=10)
        assert upd.params.get("b") == "UQ" and "lt" not in upd.params
    finally:
        d.close()


# ------------------------------------------------------------------------------------------ 2.4 in-flight changes
def test_new_instance_during_an_in_flight_register_reaches_the_server(tmp_path, srv):
    """The issue's case: AT#LWM2MNEWINST while the Register waits for its 2.01 (held by the peer)."""
    d = Device(tmp_path, srv, "--time-scale", "4")
    try:
        srv.hold("register")
        assert d.h.cmd("AT#LWM2MENA=1,1,0,5,100") == OK
        reg = srv.wait_register()
        assert "/3303/0" not in links_of(reg)
        assert d.h.cmd("AT#LWM2MNEWINST=0,3303,0") == OK       # the Register is in flight
        srv.release("register")
        d.h.wait_for(rb'LWM2M-TLT:"REGISTERED"[^\r]*\r\n', timeout=30)
        upd = srv.wait("update", timeout=15)
        assert "/3303/0" in links_of(upd), upd
    finally:
        d.close()


def test_changes_during_an_in_flight_update_go_out_after_it(dev, srv):
    """Changes of the object list and of the lifetime made while an Update waits for its 2.04."""
    srv.hold("update")
    assert srv.request("PUT", "/1/0/1", b"300", cf=TEXT)[0] == "2.04"      # Update #1 (held)
    first = srv.wait("update")
    assert first.params.get("lt") == "300"
    assert dev.h.cmd("AT#LWM2MNEWINST=0,3303,5") == OK
    assert srv.request("PUT", "/1/0/1", b"400", cf=TEXT)[0] == "2.04"
    srv.release("update")
    second = srv.wait("update", count=2, timeout=15)
    assert second.params.get("lt") == "400" and "/3303/5" in links_of(second), second


# ------------------------------------------------------------------------------------------ 2.5 object observations
def _instances(payload: bytes) -> set[int]:
    return set(tlv.decode_object(payload, lambda rid: None, keep_unknown=True))


def test_object_observation_notifies_when_instances_come_and_go(dev, srv):
    assert dev.h.cmd("AT#LWM2MNEWINST=0,3303,0") == OK
    srv.wait("update", predicate=lambda r: "/3303/0" in links_of(r))
    obs = srv.observe("/3303", accept=TLV)
    code, payload, first = obs.wait(1)
    assert code == "2.05" and first.opt.observe is not None and _instances(payload) == {0}
    # created by the host
    assert dev.h.cmd("AT#LWM2MNEWINST=0,3303,1") == OK
    code, payload, _ = obs.wait(2, timeout=15)
    assert code == "2.05" and _instances(payload) == {0, 1}
    # created by the server
    assert srv.request("POST", "/3303", tlv.encode_instance({5700: 1.5}, lambda r: "float", 7), cf=TLV)[0] == "2.01"
    code, payload, _ = obs.wait(3, timeout=15)
    assert _instances(payload) == {0, 1, 7}
    # deleted by the server
    assert srv.request("DELETE", "/3303/1")[0] == "2.02"
    code, payload, _ = obs.wait(4, timeout=15)
    assert _instances(payload) == {0, 7}


def test_deleting_an_observed_instance_ends_its_observations_with_4_04(dev, srv):
    assert dev.h.cmd("AT#LWM2MNEWINST=0,3303,2") == OK
    assert dev.h.cmd("AT#LWM2MNEWINST=0,3303,3") == OK
    srv.wait("update", predicate=lambda r: "/3303/3" in links_of(r))
    on_instance = srv.observe("/3303/2", accept=TLV)
    on_resource = srv.observe("/3303/2/5700")
    on_other = srv.observe("/3303/3", accept=TLV)
    for o in (on_instance, on_resource, on_other):
        assert o.wait(1)[0] == "2.05"
    assert srv.request("DELETE", "/3303/2")[0] == "2.02"
    for o in (on_instance, on_resource):
        code, _, msg = o.wait(2, timeout=15)
        assert code == "4.04" and msg.opt.observe is None
    assert len(on_other.answers) == 1 and not on_other.ended     # the sibling instance is untouched
    assert srv.request("GET", "/3303/2")[0] == "4.04"


def test_object_observation_notifications_keep_pmin(dev, srv):
    import time
    assert srv.request("PUT", "/3303", query=("pmin=20",))[0] == "2.04"      # 5 s at --time-scale 4
    obs = srv.observe("/3303", accept=TLV)
    obs.wait(1)
    t0 = time.monotonic()
    assert dev.h.cmd("AT#LWM2MNEWINST=0,3303,4") == OK
    code, payload, _ = obs.wait(2, timeout=15)
    assert time.monotonic() - t0 >= 3.5 and 4 in _instances(payload)      # not before pmin


# ------------------------------------------------------------------------------------------ the same, from Leshan
@pytest.mark.leshan
def test_rules_seen_from_leshan(tmp_path, leshan):
    """What Leshan's REST API can send: a read of /0, a bad binding, an object observation."""
    import uuid
    ep = f"rules-{uuid.uuid4().hex[:8]}"
    emu = EmulatorProcess(tmp_path / "s", "--lwm2m-server", leshan.coap_uri, "--time-scale", "4")
    h = emu.open()
    events = None
    try:
        assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"') == OK
        assert h.cmd("AT#REBOOT") == OK
        assert h.cmd("ATE0") == OK
        h.echo = False
        h.wait_network()
        events = leshan.events(ep)
        assert h.cmd("AT#LWM2MENA=1") == OK
        leshan.wait_client(ep, timeout=30)
        for path in ("0", "0/0", "0/0/0"):
            res = leshan.read(ep, path, format="TLV")
            assert not res.get("success") and "UNAUTHORIZED" in res["status"], (path, res)
        res = leshan.write(ep, "1/0/7", "XYZ", "string", format="TEXT")
        assert not res.get("success") and "BAD_REQUEST" in res["status"], res
        assert leshan.client(ep)["bindingMode"] == "U"
        assert h.cmd("AT#LWM2MNEWINST=0,3303,0") == OK
        events.wait_event("UPDATED", timeout=30, predicate=lambda e: "/3303/0" in str(e))
        res = leshan.observe(ep, "3303", format="TLV")
        assert res.get("success"), res
        assert h.cmd("AT#LWM2MNEWINST=0,3303,1") == OK
        ev = events.wait_event("NOTIFICATION", timeout=30)
        assert '"id":1' in str(ev).replace(" ", "") or "'id': 1" in str(ev), ev
    finally:
        if events is not None:
            events.close()
        h.close()
        emu.kill()
