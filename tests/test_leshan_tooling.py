"""The Leshan test tooling (emulator/testing/leshan.py) against real Leshan processes.

No mocks: these start the Leshan 2.0.0-M4 demo server, the bootstrap server
and the Leshan-library client on 127.0.0.1. Outside CI they are skipped when
java or mvn is missing; with CI=true they fail instead.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from emulator.testing import leshan

pytestmark = pytest.mark.leshan

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _require_java_and_maven() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if missing:
        msg = f"Leshan tests need {' and '.join(missing)} on PATH"
        if IN_CI:
            pytest.fail(msg + " (CI=true: not skipping)")
        pytest.skip(msg)


@pytest.fixture(scope="module")
def jars():
    _require_java_and_maven()
    return {kind: leshan.fetch_jar(kind) for kind in ("server", "bsserver", "client")}


@pytest.fixture(scope="module")
def server(jars, tmp_path_factory):
    log = tmp_path_factory.mktemp("leshan") / "server.log"
    with leshan.LeshanServer(jar=jars["server"], log_path=log) as srv:
        yield srv


def test_fetch_jar_is_cached_outside_the_repo(jars):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for kind, path in jars.items():
        assert path.is_file() and path.stat().st_size > 0, kind
        assert not str(path.resolve()).startswith(repo + os.sep), path
        assert leshan.LESHAN_VERSION in path.name
    t0 = time.monotonic()
    assert leshan.fetch_jar("server") == jars["server"]
    assert time.monotonic() - t0 < 2, "a cached jar must not run Maven again"
    with pytest.raises(ValueError):
        leshan.fetch_jar("nope")


def test_free_ports_are_distinct_and_bindable():
    udp = leshan.free_ports("udp", 3)
    tcp = leshan.free_ports("tcp", 3)
    assert len(set(udp)) == 3 and len(set(tcp)) == 3
    assert all(leshan.port_is_free(p, "udp") for p in udp)
    assert all(leshan.port_is_free(p, "tcp") for p in tcp)


def test_server_starts_empty_on_loopback(server):
    assert server.running
    assert server.coap_uri == f"coap://127.0.0.1:{server.coap_port}"
    assert server.coaps_uri == f"coaps://127.0.0.1:{server.coaps_port}"
    assert server.web_url == f"http://127.0.0.1:{server.web_port}/"
    assert len({server.coap_port, server.coaps_port}) == 2
    assert server.clients() == []
    assert server.client("nobody") is None
    assert server.log_path.is_file()


def test_demo_client_registers_and_answers(server):
    ep = "tooling-baseline"
    events = server.events(ep)
    with leshan.LeshanDemoClient(ep, server) as client:
        reg = server.client(ep)
        assert reg is not None and reg["endpoint"] == ep
        assert any(c["endpoint"] == ep for c in server.clients())
        assert events.wait_event("REGISTRATION", 10)["data"]["endpoint"] == ep

        res = server.read(ep, "/3/0/0", format="TEXT", timeout=5)
        assert res["success"], res
        assert res["content"]["value"] == "Leshan Demo Device"
        assert server.read_value(ep, "/3/0/2", format="TLV") == "LT-500-000-0001"

        assert server.write(ep, "/1/0/1", 120, "integer")["success"]
        assert server.read_value(ep, "/1/0/1") == 120
        assert server.write(ep, "/3/0/14", "+02:00", "string", format="TEXT")["success"]

        assert server.observe(ep, "/3/0/15", format="TEXT")["success"]
        assert server.write(ep, "/3/0/15", "Europe/Rome", format="TEXT")["success"]
        note = events.wait_event("NOTIFICATION", 10, lambda d: d["res"] == "/3/0/15")
        assert note["data"]["val"]["value"] == "Europe/Rome"
        assert server.cancel_observe(ep, "/3/0/15")["success"]

        links = server.discover(ep, "/3")["objectLinks"]
        assert {"url": "/3/0/0", "attributes": {}} in links

        missing = server.read(ep, "/3/0/99")
        assert not missing["success"] and missing["status"].startswith("NOT_FOUND")
        assert not server.read("not-registered", "/3/0/0")["success"]
    assert client.proc.returncode is not None
    # SIGTERM makes the client deregister
    assert events.wait_event("DEREGISTRATION", 10)["data"]["endpoint"] == ep
    server.wait_gone(ep, 10)


def test_psk_api_and_dtls_registration(server):
    ep, ident, key = "tooling-psk", "tooling-psk-id", "0102030405060708"
    server.add_psk(ep, ident, key)
    try:
        assert {"endpoint": ep, "psk": {"identity": ident, "key": key}} in server.security_infos()
        with leshan.LeshanDemoClient(ep, server, psk_identity=ident, psk_key=key):
            assert server.client(ep)["secure"] is True
    finally:
        server.remove_psk(ep)
    assert all(s["endpoint"] != ep for s in server.security_infos())
    server.wait_gone(ep, 10)


def test_bootstrap_server_provisions_the_dm_server(server, jars, tmp_path):
    ep = "tooling-bootstrap"
    with leshan.LeshanBootstrapServer(jar=jars["bsserver"], log_path=tmp_path / "bs.log") as bs:
        assert bs.configs() == {}
        sent = bs.provision(ep, server.coap_uri, short_server_id=77, lifetime=90)
        assert sent["servers"]["0"] == {"shortId": 77, "lifetime": 90, "notifIfDisabled": True,
                                         "binding": ["U"], "defaultMinPeriod": 1}
        stored = bs.config(ep)
        assert stored["security"]["1"]["uri"] == server.coap_uri
        assert stored["security"]["1"]["securityMode"] == "NO_SEC"
        with leshan.LeshanDemoClient(ep, bs, wait_server=server):
            bs.wait_session_event(ep, "FINISHED", 10)
            reg = server.client(ep)
            assert reg["lifetime"] == 90
            assert server.read_value(ep, "/1/0/0") == 77
        assert bs.remove_config(ep)
        assert bs.config(ep) is None
    server.wait_gone(ep, 10)


def test_stop_frees_the_ports(jars, tmp_path):
    srv = leshan.LeshanServer(jar=jars["server"], log_path=tmp_path / "s.log")
    with srv:
        ports = [(srv.coap_port, "udp"), (srv.coaps_port, "udp"), (srv.web_port, "tcp")]
        assert not any(leshan.port_is_free(p, k) for p, k in ports)
    assert not srv.running
    assert all(leshan.port_is_free(p, k) for p, k in ports)
    srv.stop()  # idempotent
