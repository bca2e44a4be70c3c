"""Several LwM2M servers at once (issue 10; guide 3.1.3, the URC examples with SSID 99 and 102).

Client-initiated bootstrap from the Leshan-library bootstrap server provisions two DM servers (two
real Leshan demo servers on their own ports): the module registers with both, each reads from it,
each observes and gets its own notifications, the notify-ack URCs carry each one's SSID, and the URCs
come in the guide's order on enable (REGISTERING in account order, REGISTERED as each answers) and on
disable (DEREGISTERED in account order, then CLIENT_DISABLED).
"""
from __future__ import annotations

import contextlib
import re
import uuid

import pytest

from emulator.testing.host import EmulatorProcess
from emulator.testing.leshan import LeshanBootstrapServer, LeshanServer, make_bootstrap_config

pytestmark = pytest.mark.leshan
OK = b"\r\nOK\r\n"


@pytest.fixture
def second_leshan(leshan_available):
    with LeshanServer() as srv:
        yield srv


@contextlib.contextmanager
def _provisioned(tmp_path, a, b, lifetime_b: int):
    """A module whose factory server is a Leshan-library bootstrap server provisioning Leshan ``a`` (SSID
    99, lifetime 300 s) and ``b`` (SSID 102, ``lifetime_b`` s) for a fresh endpoint, rebooted with that
    endpoint name, echo off, on the network: yields (endpoint, bootstrap server, host)."""
    ep = f"multi-{uuid.uuid4().hex[:10]}"
    with LeshanBootstrapServer() as bs:
        bs.set_config(ep, make_bootstrap_config(a.coap_uri, 99, 300, content_format="TLV",
                                                more_servers=[(b.coap_uri, 102, lifetime_b)]))
        emu = EmulatorProcess(tmp_path / "s", "--lwm2m-server", bs.coap_uri, "--lwm2m-bootstrap",
                              "--time-scale", "4")
        h = emu.open()
        try:
            assert h.cmd(f'AT#LWM2MINJKEYS=0,1,"{ep}"') == OK
            assert h.cmd("AT#REBOOT") == OK
            assert h.cmd("ATE0") == OK
            h.echo = False
            h.wait_network()
            yield ep, bs, h
        finally:
            h.close()
            emu.kill()


def test_bootstrap_provisions_two_servers_each_registered_read_and_observed(tmp_path, leshan, second_leshan):
    a, b = leshan, second_leshan
    with _provisioned(tmp_path, a, b, 200) as (ep, bs, h):
        events_a, events_b = a.events(ep), b.events(ep)
        try:
            assert h.cmd("AT#LWM2MENA=1") == OK
            uri_a, uri_b, uri_bs = a.coap_uri.encode(), b.coap_uri.encode(), bs.coap_uri.encode()
            reg_a = rb'LWM2M-TLT:"REGISTERED",SSID=99,"' + re.escape(uri_a) + rb'"\r\n'
            reg_b = rb'LWM2M-TLT:"REGISTERED",SSID=102,"' + re.escape(uri_b) + rb'"\r\n'
            out = h.wait_for(reg_a, timeout=60)
            out += b"" if re.search(reg_b, out) else h.wait_for(reg_b, timeout=60)
            # enable: bootstrap, then REGISTERING in account order, then REGISTERED as each answers
            assert re.search(
                rb'LWM2M-TLT:"BOOTSTRAPPING",SSID=0,"' + re.escape(uri_bs) + rb'"\r\n\r\n'
                rb'LWM2M-TLT:"BOOTSTRAPPED",SSID=0,"' + re.escape(uri_bs) + rb'"\r\n\r\n'
                rb'LWM2M-TLT:"REGISTERING",SSID=99,"' + re.escape(uri_a) + rb'"\r\n\r\n'
                rb'LWM2M-TLT:"REGISTERING",SSID=102,"' + re.escape(uri_b) + rb'"\r\n\r\n'
                rb'LWM2M-TLT:"REGISTERED",SSID=(99|102),', out), out
            assert out.count(b'"REGISTERED"') == 2

            # each server has its own registration, with its own lifetime
            ca, cb = a.wait_client(ep, timeout=30), b.wait_client(ep, timeout=30)
            assert (ca["lifetime"], cb["lifetime"]) == (300, 200)
            # reads from both
            assert a.read_value(ep, "3/0/0") == "Telit"
            assert b.read_value(ep, "3/0/0") == "Telit"
            # each server reads its own Server object instance through its own account
            assert int(a.read_value(ep, "1/0/0")) == 99
            assert int(b.read_value(ep, "1/1/0")) == 102

            # observations on both; a host change notifies each, confirmably, with its own SSID
            assert h.cmd("AT#LWM2MNFYACKURI=0,1,3,0,9") == OK
            assert h.cmd("AT#LWM2MNFYACKENA=0,1") == OK
            assert a.observe(ep, "3/0/9", format="TEXT")["success"]
            assert b.observe(ep, "3/0/9", format="TEXT")["success"]
            assert h.cmd("AT#LWM2MSET=0,3,0,9,0,55") == OK
            assert "55" in str(events_a.wait_event("NOTIFICATION", timeout=30))
            assert "55" in str(events_b.wait_event("NOTIFICATION", timeout=30))
            acks = h.wait_for(rb'#LWM2MNFYACK: 0,(99|102),"/3/0/9","ACK"\r\n', timeout=30)
            acks += h.wait_for(rb'#LWM2MNFYACK: 0,(99|102),"/3/0/9","ACK"\r\n', timeout=30)
            assert {m for m in re.findall(rb'#LWM2MNFYACK: 0,(\d+),', acks)} == {b"99", b"102"}

            # disable: DEREGISTERED in account order, then CLIENT_DISABLED
            assert h.cmd("AT#LWM2MENA=0") == OK
            out = h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n', timeout=60)
            assert re.search(
                rb'LWM2M-TLT:"DEREGISTERED",SSID=99,"' + re.escape(uri_a) + rb'"\r\n\r\n'
                rb'LWM2M-TLT:"DEREGISTERED",SSID=102,"' + re.escape(uri_b) + rb'"\r\n\r\n'
                rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n$', out), out
            a.wait_gone(ep, timeout=30)
            b.wait_gone(ep, timeout=30)

            # the bootstrap result (both accounts) persists: the next boot registers with both directly
            assert h.cmd("AT#REBOOT") == OK
            h.echo = True
            assert h.cmd("ATE0") == OK
            h.echo = False
            h.wait_network()
            assert h.cmd("AT#LWM2MENA=1") == OK
            out = h.wait_for(reg_a, timeout=60)
            out += b"" if re.search(reg_b, out) else h.wait_for(reg_b, timeout=60)
            assert b"BOOTSTRAPPING" not in out
        finally:
            events_a.close()
            events_b.close()


def test_ack_mode_one_ring_covers_every_server(tmp_path, leshan, second_leshan):
    """ACK mode with two servers: one "REG" ring and one ACK before both Registers; one "DRG" ring
    before both De-registers (the guide is silent; the emulator's choice, see agent.py)."""
    a, b = leshan, second_leshan
    with _provisioned(tmp_path, a, b, 300) as (ep, bs, h):
        assert h.cmd("AT#LWM2MENA=1,1,1,5,5") == OK
        h.wait_for(rb'#LWM2MRING: "REG"\r\n')
        assert h.cmd("AT#LWM2MACK=1") == OK
        out = h.wait_for(rb'"REGISTERED",SSID=(99|102),', timeout=60)
        out += h.wait_for(rb'"REGISTERED",SSID=(99|102),', timeout=60)
        out += h.wait_for(rb'#LWM2MEND: 0\r\n', timeout=60)          # the window closes: IDLE
        assert out.count(b'"REGISTERED"') == 2 and b"#LWM2MRING" not in out, out
        assert h.cmd("AT#LWM2MSTAT") == b'\r\n#LWM2MGETSTAT: 1,"IDLE"\r\n' + OK
        a.wait_client(ep, timeout=30)
        b.wait_client(ep, timeout=30)
        assert h.cmd("AT#LWM2MENA=0") == OK
        h.wait_for(rb'#LWM2MRING: "DRG"\r\n', timeout=30)
        assert h.cmd("AT#LWM2MACK=1") == OK
        out = h.wait_for(rb'LWM2M-TLT:"CLIENT_DISABLED"\r\n', timeout=60)
        assert out.count(b'"DEREGISTERED"') == 2 and b"#LWM2MRING" not in out, out
