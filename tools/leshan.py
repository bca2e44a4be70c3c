#!/usr/bin/env python3
"""Run Eclipse Leshan on 127.0.0.1 to try the emulator by hand.

Examples:
  python3 tools/leshan.py                      # demo server: web UI on :8080, CoAP on :5683
  python3 tools/leshan.py --coap-port 15683 --web-port 18080
  python3 tools/leshan.py --fetch-only         # download the jar, print its path
  python3 tools/leshan.py --bootstrap --provision my-ep --dm-uri coap://127.0.0.1:5683
  python3 tools/leshan.py --demo-client test-ep   # plus a Leshan client registered to it

The jars are cached outside the repository (see emulator/testing/leshan.py:
$TELIT_EMU_LESHAN_CACHE, else $XDG_CACHE_HOME/telit-emu/leshan, else
~/.cache/telit-emu/leshan). Everything listens on 127.0.0.1 only. Ctrl-C stops.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from emulator.testing import leshan  # noqa: E402

SERVER_DEFAULTS = {"coap": 5683, "coaps": 5684, "web": 8080}
BSSERVER_DEFAULTS = {"coap": 5783, "coaps": 5784, "web": 8081}


def default_models_dir() -> Path | None:
    objects = REPO / "objects"
    if objects.is_dir() and any(objects.glob("*.xml")):
        return objects
    return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="tools/leshan.py",
        description=f"Fetch and run Eclipse Leshan {leshan.LESHAN_VERSION} (demo server, or a bootstrap "
                    "server with --bootstrap) on 127.0.0.1 until Ctrl-C.",
        epilog="Server defaults: CoAP 5683, CoAPs 5684, web 8080. Bootstrap defaults: CoAP 5783, CoAPs 5784, "
               "web 8081. Use 0 for a free port.",
    )
    p.add_argument("--bootstrap", action="store_true", help="start the bootstrap server instead of the LwM2M server")
    p.add_argument("--fetch-only", action="store_true", help="only download/build the jar and print its path")
    p.add_argument("--coap-port", type=int, help="CoAP (UDP) port")
    p.add_argument("--coaps-port", type=int, help="CoAPs (DTLS) port")
    p.add_argument("--web-port", type=int, help="web UI / REST API port")
    models = p.add_mutually_exclusive_group()
    models.add_argument("--models", type=Path, metavar="DIR",
                        help="folder of extra OMA DDF object models (default: the repo's objects/ if it has XML)")
    models.add_argument("--no-models", action="store_true", help="do not pass any extra object models")
    p.add_argument("--cache-dir", type=Path, help="jar cache folder (default: see module doc)")
    p.add_argument("--log-file", type=Path, help="write the Java process output here")
    p.add_argument("--demo-client", metavar="EP",
                   help="also run a Leshan client with this endpoint name against the started server "
                        "(bootstrapping first with --bootstrap)")
    bs = p.add_argument_group("bootstrap server")
    bs.add_argument("--provision", metavar="EP", action="append", default=[],
                    help="install a bootstrap config for endpoint EP (repeatable)")
    bs.add_argument("--dm-uri", default="coap://127.0.0.1:5683",
                    help="LwM2M server URI written by --provision (default: %(default)s)")
    bs.add_argument("--short-server-id", type=int, default=123, help="Short Server ID (default: %(default)s)")
    bs.add_argument("--lifetime", type=int, default=300, help="registration lifetime, s (default: %(default)s)")
    args = p.parse_args(argv)
    if args.provision and not args.bootstrap:
        p.error("--provision needs --bootstrap")
    for port in (args.coap_port, args.coaps_port, args.web_port):
        if port is not None and not 0 <= port <= 65535:
            p.error(f"bad port {port}")
    return args


def _port(value: int | None, default: int) -> int | None:
    if value is None:
        return default
    return value or None  # 0 -> pick a free port


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    kind = "bsserver" if args.bootstrap else "server"
    try:
        jar = leshan.fetch_jar(kind, args.cache_dir)
        client_jar = leshan.fetch_jar("client", args.cache_dir) if args.demo_client else None
    except leshan.LeshanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.fetch_only:
        print(jar)
        if client_jar:
            print(client_jar)
        return 0

    defaults = BSSERVER_DEFAULTS if args.bootstrap else SERVER_DEFAULTS
    ports = dict(coap_port=_port(args.coap_port, defaults["coap"]),
                 coaps_port=_port(args.coaps_port, defaults["coaps"]),
                 web_port=_port(args.web_port, defaults["web"]))
    common = dict(jar=jar, log_path=args.log_file, **ports)

    if args.bootstrap:
        server: leshan.LeshanBootstrapServer | leshan.LeshanServer = leshan.LeshanBootstrapServer(**common)
    else:
        models_dir = None if args.no_models else (args.models or default_models_dir())
        server = leshan.LeshanServer(models_dir, **common)

    # SIGTERM behaves like Ctrl-C so that the Java processes are always stopped.
    signal.signal(signal.SIGTERM, _interrupt)
    client = None
    try:
        try:
            server.start()
        except leshan.LeshanError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        name = "bootstrap server" if args.bootstrap else "demo server"
        print(f"Leshan {leshan.LESHAN_VERSION} {name} running (pid {server.proc.pid})")
        print(f"  web UI / REST : {server.web_url}" + ("  (REST under /api)" if args.bootstrap else ""))
        print(f"  CoAP  URI     : {server.coap_uri}    <- give this to the emulator")
        print(f"  CoAPs URI     : {server.coaps_uri}   (DTLS PSK" +
              (": set in the endpoint's bootstrap config)" if args.bootstrap else ": add keys in the web UI Security tab)"))
        if isinstance(server, leshan.LeshanServer) and server.models_dir:
            print(f"  object models : {server.models_dir}")
        print(f"  log           : {server.log_path}")
        if args.bootstrap:
            endpoints = list(args.provision)
            if args.demo_client and args.demo_client not in endpoints:
                endpoints.append(args.demo_client)
            for ep in endpoints:
                cfg = server.provision(ep, args.dm_uri, args.short_server_id, args.lifetime)
                print(f"  provisioned {ep}: {json.dumps(cfg)}")
        if args.demo_client:
            client = leshan.LeshanDemoClient(args.demo_client, server.coap_uri, bootstrap=args.bootstrap,
                                             jar=client_jar, lifetime=args.lifetime,
                                             short_server_id=args.short_server_id)
            client.start(wait=not args.bootstrap)
            state = "started (bootstraps, then registers to --dm-uri)" if args.bootstrap else "registered"
            print(f"  demo client   : {args.demo_client} {state} (log: {client.log_path})")
        print("Press Ctrl-C to stop.", flush=True)
        while server.running:
            time.sleep(0.5)
        print(f"{name} exited with code {server.proc.returncode}\n{server.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    except leshan.LeshanError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if client is not None:
            client.stop()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
