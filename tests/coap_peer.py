"""A raw CoAP LwM2M server for tests: a plain UDP socket on 127.0.0.1 that the emulator registers with.

Tests that play the server must send from the address and port the client registered with (the client
ignores everyone else), so this peer answers the Register (2.01, Location-Path rd/<n>) and then sends its
requests, hostile or not, from that same socket. Standard library only; datagrams are built by hand
(``build``), so that malformed ones can be sent too.
"""
from __future__ import annotations

import socket
import struct
import time

CON, NON, ACK, RST = 0, 1, 2, 3
URI_PATH, CONTENT_FORMAT, URI_QUERY, LOCATION_PATH, OBSERVE, BLOCK1, SIZE1 = 11, 12, 15, 8, 6, 27, 60


def code(c: int, d: int) -> int:
    return (c << 5) | d


def _ext(n: int) -> tuple[int, bytes]:
    if n < 13:
        return n, b""
    if n < 269:
        return 13, bytes([n - 13])
    return 14, struct.pack("!H", n - 269)


def build(mtype: int, c: int, mid: int, token: bytes = b"", options=(), payload: bytes = b"", *,
          version: int = 1, tkl: int | None = None) -> bytes:
    """A CoAP datagram; options are (number, bytes) pairs (sorted here, repeats kept in order).
    ``version`` and ``tkl`` may lie, to build malformed datagrams."""
    tkl = len(token) if tkl is None else tkl
    out = bytearray(struct.pack("!BBH", (version << 6) | (mtype << 4) | (tkl & 0x0F), c, mid & 0xFFFF))
    out += token
    last = 0
    for num, val in sorted(options, key=lambda o: o[0]):
        d, dx = _ext(num - last)
        ln, lx = _ext(len(val))
        out.append((d << 4) | ln)
        out += dx + lx + val
        last = num
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def uint(v: int) -> bytes:
    return b"" if v == 0 else v.to_bytes((v.bit_length() + 7) // 8, "big")


def path_opts(path: str) -> list[tuple[int, bytes]]:
    return [(URI_PATH, p.encode()) for p in path.strip("/").split("/") if p]


class Msg:
    """A parsed datagram (lenient: enough for tests)."""

    def __init__(self, raw: bytes):
        self.raw = raw
        b0, self.code, self.mid = struct.unpack("!BBH", raw[:4])
        self.mtype, tkl = (b0 >> 4) & 3, b0 & 0x0F
        self.token = raw[4:4 + tkl]
        self.options: list[tuple[int, bytes]] = []
        self.payload = b""
        pos, num = 4 + tkl, 0
        while pos < len(raw):
            b = raw[pos]
            pos += 1
            if b == 0xFF:
                self.payload = raw[pos:]
                break
            vals = []
            for nib in (b >> 4, b & 0x0F):
                if nib == 13:
                    nib, pos = raw[pos] + 13, pos + 1
                elif nib == 14:
                    nib, pos = struct.unpack("!H", raw[pos:pos + 2])[0] + 269, pos + 2
                vals.append(nib)
            num += vals[0]
            self.options.append((num, raw[pos:pos + vals[1]]))
            pos += vals[1]

    def opt(self, number: int) -> list[bytes]:
        return [v for n, v in self.options if n == number]

    @property
    def path(self) -> str:
        return "/".join(v.decode() for v in self.opt(URI_PATH))

    @property
    def is_request(self) -> bool:
        return 1 <= self.code <= 31

    def __repr__(self):
        return f"<Msg t={self.mtype} {self.code >> 5}.{self.code & 31:02d} mid={self.mid} /{self.path} {self.payload[:40]!r}>"


class RawServer:
    """The LwM2M server the emulator registers with, as one UDP socket on 127.0.0.1.

    :meth:`wait_register` answers the Register; :meth:`request` sends a request to the client from this
    socket and returns its answer. Requests of the client (Update, De-register) are answered 2.04/2.02;
    confirmable notifications are acknowledged unless ``ack_notifications`` is False."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.port = self.sock.getsockname()[1]
        self.uri = f"coap://127.0.0.1:{self.port}"
        self.client: tuple[str, int] | None = None
        self.registrations: list[Msg] = []
        self.notifications: list[Msg] = []
        self.ack_notifications = True
        self.last_request_from: tuple[str, int] | None = None     # where the client's last request came from
        self._mid = 0x2000
        self._tok = 0

    def close(self) -> None:
        self.sock.close()

    def next_mid(self) -> int:
        self._mid = (self._mid + 1) & 0xFFFF
        return self._mid

    def next_token(self) -> bytes:
        self._tok += 1
        return b"rs" + struct.pack("!H", self._tok)

    def _serve(self, m: Msg, addr) -> bool:
        """Handle what the client sends by itself; True when it was that."""
        if m.is_request:
            self.last_request_from = addr
            if m.code == code(0, 2) and m.path == "rd":
                self.client = addr
                self.registrations.append(m)
                reply = build(ACK, code(2, 1), m.mid, m.token, [(LOCATION_PATH, b"rd"),
                                                                 (LOCATION_PATH, str(len(self.registrations)).encode())])
            elif m.code == code(0, 4):
                reply = build(ACK, code(2, 2), m.mid, m.token)
            else:
                reply = build(ACK, code(2, 4), m.mid, m.token)
            if m.mtype == CON:
                self.sock.sendto(reply, addr)
            return True
        if m.opt(OBSERVE) and m.mtype in (CON, NON) and m.code >> 5 == 2:
            self.notifications.append(m)
            if m.mtype == CON and self.ack_notifications:
                self.sock.sendto(build(ACK, 0, m.mid), addr)
            return False
        return False

    def recv(self, timeout: float) -> tuple[Msg, tuple] | None:
        """The next datagram that is not the client's own request, or None after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                raw, addr = self.sock.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                return None
            if len(raw) < 4:
                continue
            m = Msg(raw)
            if not self._serve(m, addr):
                return m, addr

    def wait_register(self, timeout: float = 30.0) -> Msg:
        deadline = time.monotonic() + timeout
        while not self.registrations:
            if time.monotonic() > deadline:
                raise TimeoutError("the client did not register")
            self.recv(min(0.5, max(0.01, deadline - time.monotonic())))
        return self.registrations[-1]

    def send(self, data: bytes, to=None) -> None:
        self.sock.sendto(data, to or self.client)

    def request(self, method: int, path: str, options=(), payload: bytes = b"", *, mtype: int = CON,
                timeout: float = 5.0) -> Msg | None:
        """Send a request from this socket; the client's answer (piggybacked, or separate), or None."""
        mid, tok = self.next_mid(), self.next_token()
        self.send(build(mtype, method, mid, tok, path_opts(path) + list(options), payload))
        deadline = time.monotonic() + timeout
        while True:
            got = self.recv(max(0.0, deadline - time.monotonic()))
            if got is None:
                return None
            m, _ = got
            if m.token == tok and m.code != 0:
                if m.mtype == CON:
                    self.send(build(ACK, 0, m.mid))
                return m
