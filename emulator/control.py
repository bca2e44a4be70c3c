"""The local control socket: a Unix stream socket (mode 0600) speaking JSON lines.

Each request is one JSON object on one line; each answer is one JSON object on one line, always with
``"ok"`` (true/false) and, when false, ``"error"`` (a sentence). Verbs of this version:

``{"verb": "at", "modem": 0, "line": "AT+CGSN", "timeout": 10}``
    sends the AT line to the modem (index in the fleet; 0 for a single emulator) as its host would and
    answers ``{"ok": true, "lines": [...], "final": "OK"}``: the answer's lines without the echo, and
    the final result code. ``ok`` is false when no final result came within ``timeout`` real seconds.
``{"verb": "time"}``
    ``{"ok": true, "time": <module seconds since start>, "wall": <module Unix time>}``.
``{"verb": "status"}``
    the fleet's counters (see emulator/fleet/runner.py), for a single emulator its agent's state.
``{"verb": "fault", "name": "link.loss", "params": {"rate": 0.3}}``
    applies a fault of the catalogue (emulator/scenarios/faults.py) to the modem (single emulator);
    answers ``{"ok": true, "fault": NAME, "params": {...all parameters...}}``; an unknown fault or
    parameter is ``ok: false`` with the reason.
``{"verb": "clear", "name": "link.loss"}``
    ends a lasting fault: ``{"ok": true}``.
``{"verb": "advance", "seconds": 30}``
    moves a manual module clock (``telit-emu --manual-clock``) forward, firing the timers due:
    ``{"ok": true, "time": <module seconds>}``; ``ok: false`` on a real or scaled clock.

An unknown verb or a malformed line is answered ``ok: false``; the connection stays open.
``telit-emu ctl`` is the command-line client.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any, Awaitable, Callable

log = logging.getLogger("emulator.control")

MAX_REQUEST = 64 * 1024
FINAL = re.compile(r"^(OK|ERROR|\+CME ERROR: ?.*|\+CMS ERROR: ?.*|NO CARRIER|BUSY|NO ANSWER|NO DIALTONE"
                   r"|CONNECT.*|[0-9]|>>>)$")

Handler = Callable[[dict], Awaitable[dict]]


class ControlError(Exception):
    pass


class ControlServer:
    """Serves ``handlers`` (verb -> coroutine taking the request dict, returning the answer dict)."""

    def __init__(self, path: str | Path, handlers: dict[str, Handler]):
        self.path = Path(path)
        self.handlers = handlers
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None

    async def start(self) -> None:
        """Bind the socket (replacing a stale one, never a live one); ControlError when the path
        cannot be used or another emulator answers there."""
        if len(os.fsencode(str(self.path))) >= 104:
            raise ControlError(f"control socket path too long for a Unix socket: {self.path}")
        if self.path.is_socket():
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.path))
            except OSError:            # nobody listens: a stale socket of a process that died
                try:
                    self.path.unlink()
                except OSError:
                    pass
            else:
                raise ControlError(f"another emulator already listens on {self.path}")
            finally:
                probe.close()
        old = os.umask(0o177)              # the socket is born 0600: no window where others may connect
        try:
            self._server = await asyncio.start_unix_server(self._client, path=str(self.path),
                                                           limit=MAX_REQUEST)
        except OSError as exc:
            raise ControlError(f"cannot open control socket {self.path}: {exc}") from None
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        self._inode = os.stat(self.path).st_ino

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            except (asyncio.TimeoutError, Exception):
                pass
            self._server = None
        try:                            # only the socket this server bound, not a successor's
            if self._inode is not None and os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        except OSError:
            pass

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    raw = await reader.readline()
                except (ValueError, asyncio.LimitOverrunError):
                    writer.write(b'{"ok": false, "error": "request too long"}\n')
                    break
                if not raw:
                    break
                answer = await self.answer(raw)
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def answer(self, raw: bytes) -> dict:
        try:
            req = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return {"ok": False, "error": "not a JSON line"}
        if not isinstance(req, dict) or not isinstance(req.get("verb"), str):
            return {"ok": False, "error": "a request is an object with a 'verb'"}
        handler = self.handlers.get(req["verb"])
        if handler is None:
            return {"ok": False, "error": f"unknown verb {req['verb']!r}"}
        try:
            return await handler(req)
        except ControlError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:           # a bad request never takes the emulator down
            log.exception("control verb %s failed", req["verb"])
            return {"ok": False, "error": f"{type(exc).__name__}"}


async def at_exchange(feed: Callable[[bytes], None], listen, line: str, timeout: float,
                      lock: asyncio.Lock | None = None) -> dict:
    """Send one AT line through ``feed`` and collect the answer lines from ``listen`` until a final
    result code; the echo of the line is left out. With ``lock`` (one per modem), exchanges with one
    modem run one after the other, so no answer is taken for another's."""
    if not isinstance(line, str) or not line or "\r" in line or "\n" in line or len(line) > 1024:
        raise ControlError("line must be one AT command line")
    if lock is not None:
        try:
            await asyncio.wait_for(lock.acquire(), timeout)
        except asyncio.TimeoutError:
            return {"ok": False, "error": f"the modem stayed busy for {timeout:g} s", "lines": []}
        try:
            return await at_exchange(feed, listen, line, timeout)
        finally:
            lock.release()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    lines: list[str] = []
    echo = [line.strip()]

    def on_line(text: str) -> None:
        if done.done():
            return
        if echo and text.strip() == echo[0]:
            echo.clear()
            return
        if FINAL.match(text):
            done.set_result(text)
        else:
            lines.append(text)
    remove = listen(on_line)
    try:
        feed(line.encode("latin-1", "replace") + b"\r")
        final = await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        return {"ok": False, "error": f"no final result code within {timeout:g} s", "lines": lines}
    finally:
        remove()
    return {"ok": True, "lines": lines, "final": final}


def fault_handlers(faults, clock) -> dict[str, Handler]:
    """The verbs fault / clear / advance for one modem's FaultLayer and clock."""
    from .scenarios.faults import FaultError

    async def fault(req: dict) -> dict:
        params = req.get("params") or {}
        if not isinstance(req.get("name"), str) or not isinstance(params, dict):
            raise ControlError("fault needs a 'name' and optional 'params' object")
        try:
            used = faults.apply(req["name"], **params)
        except FaultError as exc:
            raise ControlError(str(exc)) from None
        return {"ok": True, "fault": req["name"], "params": used}

    async def clear(req: dict) -> dict:
        try:
            faults.clear(str(req.get("name")))
        except FaultError as exc:
            raise ControlError(str(exc)) from None
        return {"ok": True}

    async def advance(req: dict) -> dict:
        seconds = req.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 10 ** 7:
            raise ControlError("seconds must be a number 0..1e7")
        if not hasattr(clock, "advance"):
            raise ControlError("the module clock is not stepped (start telit-emu with --manual-clock)")
        await clock.advance(float(seconds))
        return {"ok": True, "time": clock.now()}

    return {"fault": fault, "clear": clear, "advance": advance}


def request(path: str | Path, req: dict[str, Any], timeout: float = 30.0) -> dict:
    """Client side: send one request to the control socket at ``path`` and return its answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(str(path))
        except OSError as exc:
            raise ControlError(f"cannot connect to control socket {path}: {exc}") from None
        buf = b""
        try:
            s.sendall(json.dumps(req).encode() + b"\n")
            while not buf.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except OSError as exc:          # timeout, reset, broken pipe
            raise ControlError(f"control socket {path}: {exc or type(exc).__name__}") from None
    try:
        return json.loads(buf)
    except ValueError:
        raise ControlError("the control socket closed without an answer") from None


def default_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / "control.sock"


def main(argv: list[str]) -> int:
    """``telit-emu ctl [--state-dir DIR | --control PATH] VERB ...``: one request, its answer printed.

    Exit status 0 when the answer is ok (for ``at``: and the final result code is OK), 1 when not,
    2 when the socket cannot be reached or the arguments are wrong."""
    import argparse
    import sys
    p = argparse.ArgumentParser(prog="telit-emu ctl", description="Talk to a running emulator's control socket.")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--state-dir", type=Path, metavar="DIR", help="the emulator's state dir (socket DIR/control.sock)")
    where.add_argument("--control", type=Path, metavar="PATH", help="the control socket")
    p.add_argument("--json", action="store_true", help="print the raw JSON answer")
    verbs = p.add_subparsers(dest="verb", required=True)
    at = verbs.add_parser("at", help="send an AT line, print the answer")
    at.add_argument("--modem", type=int, default=0, metavar="INDEX", help="modem of a fleet (default 0)")
    at.add_argument("--timeout", type=float, default=10.0)
    at.add_argument("line")
    verbs.add_parser("time", help="module time")
    verbs.add_parser("status", help="counters of the fleet or state of the agent")
    fl = verbs.add_parser("fault", help="apply a fault: NAME [k=v ...] (telit-emu scenario faults lists them)")
    fl.add_argument("name")
    fl.add_argument("params", nargs="*", metavar="k=v")
    cl = verbs.add_parser("clear", help="end a lasting fault")
    cl.add_argument("name")
    adv = verbs.add_parser("advance", help="move a manual module clock forward")
    adv.add_argument("seconds", type=float)
    args = p.parse_args(argv)
    if args.control is not None:
        path = args.control
    else:
        from .modem.nvm import default_state_dir
        path = default_path(args.state_dir or default_state_dir())
    req: dict[str, Any] = {"verb": args.verb}
    if args.verb == "at":
        req.update(modem=args.modem, line=args.line, timeout=args.timeout)
    elif args.verb in ("fault", "clear"):
        req["name"] = args.name
        if args.verb == "fault":
            params = {}
            for kv in args.params:
                key, eq, value = kv.partition("=")
                if not eq or not key:
                    print(f"telit-emu ctl: {kv!r} is not k=v", file=sys.stderr)
                    return 2
                params[key] = value
            req["params"] = params
    elif args.verb == "advance":
        req["seconds"] = args.seconds
    try:
        answer = request(path, req, timeout=(args.timeout if args.verb == "at" else 10.0) + 5.0)
    except (ControlError, OSError) as exc:
        print(f"telit-emu ctl: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(answer))
    elif not answer.get("ok"):
        print(f"telit-emu ctl: {answer.get('error')}", file=sys.stderr)
        for line in answer.get("lines", []):
            print(line)
    elif args.verb == "at":
        for line in answer["lines"]:
            print(line)
        print(answer["final"])
    else:
        for key, value in answer.items():
            if key != "ok":
                print(f"{key}: {value}")
    if not answer.get("ok"):
        return 1
    return 0 if args.verb != "at" or answer.get("final") == "OK" else 1
