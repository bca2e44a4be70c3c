"""Hardening: a seeded barrage of malformed and hostile CoAP datagrams at the emulator's LwM2M client
socket, sent by the server it is registered with; strangers, bootstrap hijack, oversize bodies and a
bounded flood.

The datagrams are built here with ``struct`` (never with aiocoap, which refuses to build broken ones)
and sent from the socket of a raw CoAP server on 127.0.0.1 (tests/coap_peer.py) that the emulator
registered with: the client ignores every other peer, so a barrage from elsewhere would test nothing. Categories: random bytes, truncated
headers, wrong version, token lengths 9-15, unknown critical options, abused option delta/length
nibbles (13/14/15), payload markers without payload, well-formed CON/NON GET/PUT/POST/DELETE with
hostile Uri-Paths, content formats and TLV/JSON/text payloads (the TLV of /3/0 from
``emulator.lwm2m.formats.tlv``, mutated), huge payloads, random Block1/Block2, Observe on unknown
paths, duplicate CONs, stray ACK/RST, CoAP pings.

Every datagram gets a fresh message id (bytes 2-3) so that an answer can be told apart from another
one, and well-formed requests get unique tokens. Answers are collected without blocking after each
datagram; every 25 datagrams an empty CON (a ping) acts as a barrier: once its RST is back, the
emulator has processed everything before it (so its socket buffer never overflows, and late answers
are still matched by message id or token). The barrage runs once (module fixture); each property is
its own test: the module survives (the server still reads /3/0/0, the AT port answers, the process
lives), the objects written to still read back, no 5.00, answers are valid CoAP, sensible codes for
well-formed requests, 4.02 for unknown critical options, format errors not served, duplicate CONs
answered alike, pings get an RST. Counts
(answered / unanswered per category) are printed (-s), never asserted: they depend on the load.

COAP_FUZZ_SEED=<int> replays another seed; COAP_FUZZ_SCALE=<float> scales the datagram counts;
COAP_FUZZ_STDERR=<file> saves the emulator's stderr (its tracebacks) there; COAP_FUZZ_DUMP=<file> every
datagram sent and the answers matched to it.
"""
from __future__ import annotations

import os
import random
import re
import select
import socket
import struct
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest

from emulator.lwm2m.formats import json as lwjson
from emulator.lwm2m.formats import tlv
from emulator.lwm2m.models import ModelRegistry
from coap_peer import Msg, RawServer, build, code, uint
from emulator.testing.host import EmulatorProcess

SEED = int(os.environ.get("COAP_FUZZ_SEED", "7252"))
SCALE = float(os.environ.get("COAP_FUZZ_SCALE", "1"))
BARRAGE_DEADLINE = 40.0          # seconds; the barrage stops early (and says so) past this
REPLY_WINDOW = 0.3               # creates and duplicates wait at most this for their answer
BARRIER_EVERY = 25
BARRIER_WINDOW = 2.0
TOKEN_TAG = b"\xc0\xa9"
OK = b"\r\nOK\r\n"

# --------------------------------------------------------------------------------------------- CoAP
CON, NON, ACK, RST = 0, 1, 2, 3
TYPES = ("CON", "NON", "ACK", "RST")


def code_str(c: int) -> str:
    return f"{c >> 5}.{c & 31:02d}"


GET, POST, PUT, DELETE = 1, 2, 3, 4
METHOD_NAMES = {GET: "GET", POST: "POST", PUT: "PUT", DELETE: "DELETE"}
CREATED, DELETED, VALID, CHANGED, CONTENT, CONTINUE = (code(2, d) for d in (1, 2, 3, 4, 5, 31))
BAD_REQUEST, BAD_OPTION, NOT_FOUND, NOT_ALLOWED, NOT_ACCEPTABLE = (code(4, d) for d in (0, 2, 4, 5, 6))
INCOMPLETE, TOO_LARGE, UNSUPPORTED_CF = code(4, 8), code(4, 13), code(4, 15)
INTERNAL_ERROR = code(5, 0)
UNAUTHORIZED = code(4, 1)
#: What a DM server's operation on /0 (Security) gets outside a bootstrap: one table for the barrage's
#: reads and deletes of /0. LwM2M 1.0 (access to /0 only for the bootstrap server): 4.01 Unauthorized
#: (it was 4.05 before the access rule of issue 8).
SECURITY_OBJECT_CODES = frozenset({UNAUTHORIZED})
#: The same for a Discover (GET with Accept: link-format) of /0 (it was served, 2.05, before).
SECURITY_OBJECT_DISCOVER_CODES = frozenset({UNAUTHORIZED})

IF_MATCH, URI_HOST, ETAG, IF_NONE_MATCH, OBSERVE, URI_PORT = 1, 3, 4, 5, 6, 7
URI_PATH, CONTENT_FORMAT, MAX_AGE, URI_QUERY, ACCEPT = 11, 12, 14, 15, 17
BLOCK2, BLOCK1, SIZE2, SIZE1 = 23, 27, 28, 60
# odd (critical) option numbers no CoAP/LwM2M 1.0 stack knows
UNKNOWN_CRITICAL = (13, 25, 29, 33, 37, 41, 43, 57, 61, 63, 101, 1001, 2049, 64999, 65001)
UNKNOWN_ELECTIVE = (2, 10, 16, 18, 22, 24, 26, 30, 62, 100, 1000, 2048, 65000)

CONTENT_FORMATS = (0, 40, 42, 1541, 1542, 1543, 11542, 11543, 60, 65535)
DATA_CFS = (0, 42, 1541, 1542, 1543, 11542, 11543)      # the formats a write may use
NO_DATA_CFS = (40, 60, 65535)                           # link-format, CBOR, unassigned


def with_mid(data: bytes, mid: int) -> bytes:
    return data[:2] + struct.pack("!H", mid) + data[4:] if len(data) >= 4 else data


class BadCoap(ValueError):
    pass


@dataclass
class Answer:
    raw: bytes
    mtype: int = -1
    code: int = -1
    mid: int = -1
    token: bytes = b""
    options: list = field(default_factory=list)
    payload: bytes = b""
    error: str | None = None            # why the datagram is not valid CoAP

    def opt(self, number: int) -> list[bytes]:
        return [v for n, v in self.options if n == number]

    def __str__(self) -> str:
        if self.error:
            return f"<invalid CoAP ({self.error}): {self.raw[:40].hex()}>"
        return f"<{TYPES[self.mtype]} {code_str(self.code)} mid={self.mid} tok={self.token.hex()} " \
               f"payload={self.payload[:60]!r}>"


def parse(raw: bytes) -> Answer:
    """Strict RFC 7252 parsing of one answer (an Answer with .error set when it is not valid CoAP)."""
    a = Answer(raw)
    try:
        if len(raw) < 4:
            raise BadCoap("shorter than the 4-byte header")
        b0, a.code, a.mid = struct.unpack("!BBH", raw[:4])
        ver, a.mtype, tkl = b0 >> 6, (b0 >> 4) & 3, b0 & 0x0F
        if ver != 1:
            raise BadCoap(f"version {ver}")
        if tkl > 8:
            raise BadCoap(f"token length {tkl}")
        if len(raw) < 4 + tkl:
            raise BadCoap("truncated token")
        a.token = raw[4:4 + tkl]
        pos, num = 4 + tkl, 0
        while pos < len(raw):
            b = raw[pos]
            pos += 1
            if b == 0xFF:
                a.payload = raw[pos:]
                if not a.payload:
                    raise BadCoap("payload marker without payload")
                break
            vals = []
            for nib in (b >> 4, b & 0x0F):
                if nib == 15:
                    raise BadCoap("option nibble 15")
                if nib == 13:
                    if pos + 1 > len(raw):
                        raise BadCoap("truncated option extension")
                    nib, pos = raw[pos] + 13, pos + 1
                elif nib == 14:
                    if pos + 2 > len(raw):
                        raise BadCoap("truncated option extension")
                    nib, pos = struct.unpack("!H", raw[pos:pos + 2])[0] + 269, pos + 2
                vals.append(nib)
            num += vals[0]
            if pos + vals[1] > len(raw):
                raise BadCoap("option runs past the datagram")
            a.options.append((num, raw[pos:pos + vals[1]]))
            pos += vals[1]
        if a.code == 0 and len(raw) != 4:
            raise BadCoap("empty message with token, options or payload")
        if a.mtype == RST and a.code != 0:
            raise BadCoap("RST carrying a code")
        if a.code != 0 and (a.code >> 5) not in (2, 4, 5):
            raise BadCoap(f"code {code_str(a.code)} in an answer")
    except BadCoap as exc:
        a.error = str(exc)
    return a


# --------------------------------------------------------------------------------------------- LwM2M data
_MODELS = ModelRegistry.builtin()


def _types(oid: int):
    res = _MODELS.get(oid).resources
    return lambda rid: res[rid].type if rid in res else None


DEVICE = {0: "Telit", 1: "ME910C1-WW", 2: "354938100000001", 3: "M0B.660006", 6: {0: 1}, 7: {0: 3800},
          8: {0: 100}, 9: 100, 10: 4000, 11: {0: 0}, 13: 1700000000, 14: "+00:00", 15: "UTC", 16: "U",
          17: "Cat-M1 module", 19: "", 20: 0, 21: 4096}
DEVICE_W = {13: 1700000000, 14: "+01:00", 15: "Europe/Rome"}            # the writable part of /3/0
TLV_3_0 = tlv.encode_instance(DEVICE, _types(3))                          # valid TLV of /3/0
TLV_SEEDS = [
    TLV_3_0,
    tlv.encode_instance(DEVICE, _types(3), instance_id=0),
    tlv.encode_instance(DEVICE_W, _types(3)),
    tlv.encode_instance(DEVICE_W, _types(3), instance_id=0),
    tlv.encode_resource(15, "Europe/Rome", "string"),
    tlv.encode_resource(13, 1700000000, "time"),
    tlv.encode_instance({0: {0: 1, 1: 2}, 1: 7}, _types(33211)),
    tlv.encode_resource(0, {0: 1, 5: 9}, "integer"),
    tlv.encode_instance({5700: 21.5, 5701: "Cel"}, _types(3303)),
    tlv.encode_object({0: DEVICE_W}, _types(3)),
]
JSON_SEEDS = [
    lwjson.encode_instance(3, 0, DEVICE, _types(3)),
    lwjson.encode_instance(3, 0, DEVICE_W, _types(3)),
    lwjson.encode_resource(3, 0, 15, "Europe/Rome", "string"),
    lwjson.encode_instance(33211, 0, {0: {0: 1, 1: 2}, 1: 7}, _types(33211)),
    b'{"e":[]}', b"[]", b"{}", b'{"e":{}}', b'{"bn":5,"e":[]}',
    b'{"bn":"/3/0/","e":[{"n":"15","sv":1}]}',
    b'{"bn":"/3/0/","e":[{"n":"15","sv":"x","v":1}]}',
    b'{"bn":"/3/0/","e":[{"n":"13","v":1e999}]}',
    b'{"bn":"/3/0/","e":[{"n":"13","v":123456789012345678901234567890}]}',
    b'{"bn":"/3/0/","e":[{"n":"13","v":NaN}]}',
    b'{"bn":"/1/0/","e":[{"n":"1","v":1}]}',
    b'{"e":[{"n":"../../1/0/1","v":1}]}',
    b'{"e":[{"n":"15","sv":"a"},{"n":"15","sv":"b"}]}',
    b'{"e":[{"n":"15/0/0/0","sv":"a"}]}',
    b'{"e":[{"n":"99999","sv":"a"}]}',
    b'{"e":[{"n":"15","sv":"\\ud800"}]}',
    b'{"e":' + b"[" * 3000 + b"]" * 3000 + b"}",
    b'{"e":[{"n":"13","v":' + b"9" * 5000 + b"}]}",
    b'{"e":[{"n":"15","sv":"a"}],"e":[]}',
    b'\xef\xbb\xbf{"e":[]}',
]
TEXT_SEEDS = [b"", b"abc", b"123", b"-1", b"0", b"1", b"-9223372036854775809", b"9" * 40, b"1e99999",
              b"NaN", b"inf", b"\xff\xfe", b"\xc3", b"0:0", b"65536:1", b" 1", b"+1", b"1.5", b"1_000",
              b"\x00", "٣".encode(), b"Europe/Rome", b"+01:00", b"x" * 300]


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(7)
        if op == 0 and b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[rng.randrange(len(b))] = rng.randrange(256)
        elif op == 2:
            del b[rng.randrange(len(b) + 1):]
        elif op == 3:
            i = rng.randrange(len(b) + 1)
            b[i:i] = rng.randbytes(rng.randint(1, 8))
        elif op == 4 and b:
            i = rng.randrange(len(b))
            b[i:i] = b[i:rng.randint(i, len(b))]
        elif op == 5 and b:
            i = rng.randrange(len(b))
            del b[i:i + rng.randint(1, 4)]
        elif op == 6 and b:
            b[rng.randrange(len(b))] = rng.choice((0x00, 0xFF, 0x7F, 0x80, 0xC8, 0xE8, 0x18, 0x38, 0x3F))
    return bytes(b)


# --------------------------------------------------------------------------------------------- paths
MODELLED = set(_MODELS)
UNKNOWN_OIDS = [o for o in (8, 9, 10, 12, 99, 100, 1000, 2048, 3200, 3301, 3302, 9999, 10241, 33210, 65535)
                if o not in MODELLED]
BAD_SEGMENTS = ["", "abc", "rd", "core", ".well-known", "3a", " 3", "3 ", "0x3", "+3", "-1", "65536", "99999",
                "123456", "4294967296", "1.0", "3/0", "%33", "*", "..", "0" * 6, "\x00", "\u00a03"]
UNICODE_DIGITS = ["٣", "３", "²", "³", "①", "𝟑", "٣٠", "߃", "৩"]     # str.isdigit() is True for all


def path_opts(segments) -> list[tuple[int, bytes]]:
    return [(URI_PATH, s.encode() if isinstance(s, str) else s) for s in segments]


# --------------------------------------------------------------------------------------------- bookkeeping
@dataclass
class Sent:
    cat: str
    data: bytes
    mid: int | None
    token: bytes | None
    reply: str                     # "response" | "rst" | "none" | "rst-or-none" | "any"
    allowed: frozenset | None = None   # for "response": the codes a sensible answer may carry
    note: str = ""
    prop: str = ""                 # the property (test) its answers are judged under
    answers: list = field(default_factory=list)


class Barrage:
    """Sends from ``sock``: the socket of the server the client registered with (it ignores others)."""

    def __init__(self, addr: tuple[str, int], rng: random.Random, sock: socket.socket):
        self.addr = addr
        self.rng = rng
        self.sock = sock
        self.sock.setblocking(False)
        self.client_requests = 0
        self.mid = rng.randrange(0x10000)
        self.tokens: set[bytes] = set()
        self.sent: list[Sent] = []
        self.by_mid: dict[int, Sent] = {}
        self.by_token: dict[bytes, Sent] = {}
        self.unmatched: list[Answer] = []
        self.barriers = Counter()
        self.since_barrier = 0
        self.dead = False

    def close(self):
        self.sock.close()

    def next_mid(self) -> int:
        self.mid = (self.mid + 1) & 0xFFFF
        return self.mid

    def token(self, rng: random.Random | None = None) -> bytes:
        """A unique token of 4-8 bytes behind a 2-byte tag, so that no random or malformed datagram (whose
        tokens are random) can carry a token an answer would be matched to."""
        rng = rng or self.rng
        while True:
            t = TOKEN_TAG + rng.randbytes(rng.randint(2, 6))
            if t not in self.tokens:
                self.tokens.add(t)
                return t

    # ---------------------------------------------------------------- receive
    def _take(self, raw: bytes) -> Answer:
        a = parse(raw)
        rec = None
        if a.error is None and a.mtype in (ACK, RST):
            rec = self.by_mid.get(a.mid)
        elif len(raw) >= 4 and 1 <= raw[1] <= 31:     # the client's own request (an Update): 2.04
            if (raw[0] >> 4) & 3 == CON:
                tok = raw[4:4 + (raw[0] & 0x0F)]
                self.sock.sendto(build(ACK, DELETED if raw[1] == DELETE else CHANGED, struct.unpack("!H", raw[2:4])[0],
                                       tok), self.addr)
            self.client_requests += 1
            return a
        elif a.error is None:
            rec = self.by_token.get(a.token) if a.token else None
            if a.mtype == CON:      # a separate response or a notification: acknowledge it
                self.sock.sendto(build(ACK, 0, a.mid), self.addr)
        elif len(raw) >= 4 and (raw[0] >> 4) & 3 in (ACK, RST):     # invalid, but the mid is ours
            rec = self.by_mid.get(struct.unpack("!H", raw[2:4])[0])
        elif len(raw) >= 4:                                         # invalid CON/NON: try its token
            rec = self.by_token.get(raw[4:4 + (raw[0] & 0x0F)])
        if rec is not None:
            rec.answers.append(a)
        else:
            self.unmatched.append(a)
        return a

    def drain(self, timeout: float = 0.0, until=None) -> None:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.sock], [], [], max(0.0, left))
            if not r:
                return
            while True:
                try:
                    raw = self.sock.recv(65536)
                except BlockingIOError:
                    break
                self._take(raw)
            if until is not None and until():
                return
            if time.monotonic() >= deadline:
                return

    # ---------------------------------------------------------------- send
    def send(self, cat: str, data: bytes, reply: str, allowed=None, *, token: bytes | None = None,
             wait: float = 0.0, note: str = "", fresh_mid: bool = True, register: bool = True,
             prop: str | None = None) -> Sent:
        mid = None
        if len(data) >= 4:
            if fresh_mid:
                data = with_mid(data, self.next_mid())
            mid = struct.unpack("!H", data[2:4])[0]
        if prop is None:
            prop = {"none": "format", "rst-or-none": "format", "rst": "ping", "any": "any"}.get(reply, "codes")
        rec = Sent(cat, data, mid, token, reply, frozenset(allowed) if allowed else None, note, prop)
        self.sent.append(rec)
        if mid is not None and register:
            self.by_mid[mid] = rec
        if token:
            self.by_token[token] = rec
        elif len(data) > 4 and data[0] & 0x0F:
            # the token of a random or malformed datagram (up to 15 bytes, as a lenient parser reads it):
            # registered unless another datagram had the same one (then answers to it stay unmatched)
            tok = data[4:4 + (data[0] & 0x0F)]
            if not tok.startswith(TOKEN_TAG):
                self.by_token[tok] = None if tok in self.by_token else rec
        self.sock.sendto(data, self.addr)
        if wait:
            self.drain(wait, until=lambda: bool(rec.answers))
        else:
            self.drain(0.0)
        self.since_barrier += 1
        if self.since_barrier >= BARRIER_EVERY:
            self.barrier()
        return rec

    def barrier(self) -> bool:
        """An empty CON: its RST means every earlier datagram was processed."""
        self.since_barrier = 0
        mid = self.next_mid()
        rec = Sent("barrier", build(CON, 0, mid), mid, None, "rst", prop="ping")
        self.by_mid[mid] = rec
        self.sock.sendto(rec.data, self.addr)
        self.drain(BARRIER_WINDOW, until=lambda: bool(rec.answers))
        ok = bool(rec.answers)
        self.barriers["answered" if ok else "missed"] += 1
        self.barriers["streak"] = 0 if ok else self.barriers["streak"] + 1
        if self.barriers["streak"] >= 5:
            self.dead = True
        self.sent.append(rec)
        return ok


# --------------------------------------------------------------------------------------------- generators
class Gen:
    """One function per category; each sends one (or two) datagrams through the barrage."""

    def __init__(self, b: Barrage):
        self.b = b
        self.r = b.rng
        self.side_rng = random.Random(SEED + 1)     # for the clean-ups, which depend on the answers
        self.created: list[tuple[str, str]] = []

    # helpers ------------------------------------------------------------
    def _mtype(self) -> int:
        return CON if self.r.random() < 0.7 else NON

    def _method(self) -> int:
        return self.r.choice((GET, PUT, POST, DELETE))

    def _payload(self, kind: str | None = None) -> bytes:
        r = self.r
        kind = kind or r.choice(("tlv", "tlv-mut", "tlv-mut", "json", "json-mut", "text", "random", "empty"))
        if kind == "tlv":
            return r.choice(TLV_SEEDS)
        if kind == "tlv-mut":
            return mutate(r, r.choice(TLV_SEEDS))
        if kind == "json":
            return r.choice(JSON_SEEDS)
        if kind == "json-mut":
            return mutate(r, r.choice(JSON_SEEDS[:4]))
        if kind == "text":
            return r.choice(TEXT_SEEDS)
        if kind == "random":
            return r.randbytes(r.randint(1, 64))
        return b""

    def _request(self, cat, mtype, method, segments, extra=(), payload=b"", cf=None, accept=None,
                 allowed=None, reply="response", note="", wait=0.0, prop="codes", rng=None):
        tok = self.b.token(rng)
        opts = path_opts(segments) + list(extra)
        if cf is not None:
            opts.append((CONTENT_FORMAT, uint(cf)))
        if accept is not None:
            opts.append((ACCEPT, uint(accept)))
        data = build(mtype, method, 0, tok, opts, payload)
        desc = f"{TYPES[mtype]} {METHOD_NAMES.get(method, code_str(method))} /{'/'.join(map(str, segments))}"
        if cf is not None:
            desc += f" cf={cf}"
        if accept is not None:
            desc += f" accept={accept}"
        return self.b.send(cat, data, reply, allowed, token=tok, wait=wait, note=f"{desc} {note}".strip(),
                           prop=prop)

    def _unknown_path(self) -> tuple[str, list]:
        r = self.r
        k = r.randrange(5)
        tail = [str(r.randrange(0, 70000)) for _ in range(r.randint(0, 3))]
        if k == 0:
            return "unknown-object", [str(r.choice(UNKNOWN_OIDS))] + tail[:3]
        if k == 1:
            segs = [str(r.choice((3, 1, 4, 33211, 3303)))] + [r.choice(BAD_SEGMENTS)] + tail[:2]
            if r.random() < 0.5:
                segs = [r.choice(BAD_SEGMENTS)] + segs[1:]
            return "bad-segment", segs[:4]
        if k == 2:
            return "out-of-range", [r.choice(("65536", "99999", "123456", "4294967296", "-1", "1" * 30))] + tail[:2]
        if k == 3:
            return "deep", [str(r.choice((3, 1, 4, 9999))), "0", "0"] + ["0"] * r.randint(2, 8)
        return "non-numeric", [r.choice(("rd", "bsx", "dp", "3a", "x", ".well-known", "abc"))] + \
            [r.choice(("core", "0", "x"))] * r.randint(0, 5)

    @staticmethod
    def _unknown_allowed(kind: str) -> frozenset:
        # a path that names nothing is 4.04; a numeric path deeper than /o/i/r/ri may be 4.00 as well
        return frozenset({NOT_FOUND, BAD_REQUEST}) if kind == "deep" else frozenset({NOT_FOUND})

    # categories ---------------------------------------------------------
    def random_bytes(self):
        r = self.r
        n = r.choice((r.randint(4, 16), r.randint(4, 64), r.randint(4, 300)))
        data = r.randbytes(n)
        if r.random() < 0.3:               # version 1 so that aiocoap's parser gets further
            data = bytes([0x40 | (data[0] & 0x3F)]) + data[1:]
        self.b.send("random-bytes", data, "any")

    def truncated(self):
        r = self.r
        k = r.randrange(3)
        if k == 0:                         # shorter than the fixed header
            self.b.send("truncated-header", r.randbytes(r.randint(0, 3)), "none", fresh_mid=False)
            return
        tkl = r.randint(1, 8)
        if k == 1:                         # token announced but cut short
            data = build(self._mtype(), GET, 0, r.randbytes(tkl))[:4 + r.randrange(tkl)]
        else:                              # cut anywhere inside a valid request
            full = build(self._mtype(), self._method(), 0, r.randbytes(tkl),
                         path_opts(["3", "0", "0"]) + [(ACCEPT, uint(0))], b"x")
            data = full[:r.randint(4, len(full) - 1)]
        self.b.send("truncated-header", data, "any")

    def wrong_version(self):
        r = self.r
        tok = r.randbytes(r.randint(0, 8))
        data = build(self._mtype(), r.choice((GET, GET, PUT, POST, 0)), 0, tok, path_opts(["3", "0", "0"]),
                     r.choice((b"", b"1")), version=r.choice((0, 2, 3)))
        self.b.send("wrong-version", data, "none")

    def bad_token_length(self):
        r = self.r
        tkl = r.randint(9, 15)
        tok = r.randbytes(r.choice((tkl, r.randint(0, tkl))))
        rest = b"\xb1\x33"                   # Uri-Path "3" (where a lenient parser reads on after the token)
        data = build(self._mtype(), r.choice((GET, PUT, POST, DELETE, 0)), 0, b"", version=1, tkl=tkl)
        data = data + tok + (rest if r.random() < 0.7 else r.randbytes(r.randint(0, 12)))
        self.b.send("token-length-9-15", data, "rst-or-none", note=f"tkl={tkl}")

    def unknown_critical(self):
        r = self.r
        kind, segs = ("known-path", ["3", "0", r.choice(("0", "1", "13", "15"))]) if r.random() < 0.5 \
            else self._unknown_path()
        extra = [(r.choice(UNKNOWN_CRITICAL), r.randbytes(r.randint(0, 12)))]
        if r.random() < 0.3:
            extra.append((r.choice(UNKNOWN_ELECTIVE), r.randbytes(r.randint(0, 5))))
        self._request("unknown-critical-option", self._mtype(), self._method(), segs, extra,
                      payload=self._payload() if r.random() < 0.3 else b"", cf=r.choice((None, 0, 11542)),
                      allowed={BAD_OPTION}, note=f"opt={extra[0][0]} ({kind})", prop="critical")

    def option_nibbles(self):
        """Option delta/length nibbles 13/14/15 with missing or lying extension bytes."""
        r = self.r
        tok = r.randbytes(r.randint(0, 8))
        head = build(self._mtype(), r.choice((GET, PUT, POST)), 0, tok, path_opts(["3"])
                     if r.random() < 0.5 else ())
        k = r.randrange(8)
        if k == 0:      # delta 15 with a length: the reserved nibble
            tail = bytes([0xF0 | r.randrange(15)]) + r.randbytes(r.randint(0, 6))
        elif k == 1:    # length 15
            tail = bytes([(r.randrange(13) << 4) | 0x0F]) + r.randbytes(r.randint(0, 6))
        elif k == 2:    # delta 13, extension byte missing
            tail = bytes([0xD0 | r.randrange(13)])
        elif k == 3:    # delta 14, one of two extension bytes
            tail = bytes([0xE0 | r.randrange(13), r.randrange(256)])
        elif k == 4:    # length 14 claiming up to 65804 bytes, few present
            tail = bytes([(r.randrange(1, 13) << 4) | 0x0E]) + r.randbytes(2) + r.randbytes(r.randint(0, 40))
        elif k == 5:    # length 13 larger than what follows
            n = r.randrange(256)
            tail = bytes([0xBD, n]) + r.randbytes(max(0, n + 13 - r.randint(1, 13)))
        elif k == 6:    # length nibble larger than what follows
            n = r.randint(1, 12)
            tail = bytes([0xB0 | n]) + b"3" * (n - 1)
        else:           # delta 14 + length 14 both truncated
            tail = bytes([0xEE]) + r.randbytes(r.randint(0, 3))
        self.b.send("option-nibbles", head + tail, "rst-or-none", note=f"variant {k}")

    def huge_options(self):
        """Well-formed but extreme options: large deltas (14 nibble) and long values."""
        r = self.r
        segs = ["3", "0", "0"] if r.random() < 0.5 else [str(r.choice(UNKNOWN_OIDS))]
        k = r.randrange(4)
        if k == 0:      # an elective option far away (ignored: the request is answered normally)
            extra = [(r.choice((2048, 4096, 30000, 65000, 65534)), r.randbytes(r.randint(0, 300)))]
            allowed = {CONTENT, NOT_FOUND}
        elif k == 1:    # a critical option far away
            extra = [(r.choice((2049, 30001, 65001)), r.randbytes(r.randint(0, 300)))]
            allowed = {BAD_OPTION}
        elif k == 2:    # a very long Uri-Path segment
            segs = segs[:1] + ["9" * r.randint(20, 400)]
            extra, allowed = [], {NOT_FOUND}
        else:           # a long Uri-Query
            extra = [(URI_QUERY, b"x=" + b"9" * r.randint(20, 600))]
            allowed = {CONTENT, NOT_FOUND}
        self._request("huge-options", self._mtype(), GET, segs, extra, allowed=allowed, note=f"variant {k}",
                      prop="critical" if k == 1 else "codes")

    def empty_payload_marker(self):
        r = self.r
        tok = self.b.token()
        segs = r.choice((["3", "0", "0"], ["3", "0", "15"], [str(r.choice(UNKNOWN_OIDS))]))
        opts = path_opts(segs) + ([(CONTENT_FORMAT, uint(0))] if r.random() < 0.5 else [])
        data = build(self._mtype(), r.choice((GET, PUT, POST)), 0, tok, opts) + b"\xff"
        self.b.send("empty-payload-marker", data, "rst-or-none", token=tok, note="/" + "/".join(segs))

    def unknown_paths(self):
        r = self.r
        kind, segs = self._unknown_path()
        method = self._method()
        if r.random() < 0.1:
            method = r.choice((5, 6, 7, 8, 31))            # FETCH, PATCH, iPATCH, unassigned
        cf = r.choice((None,) + CONTENT_FORMATS)
        payload = self._payload() if method in (PUT, POST) or r.random() < 0.1 else b""
        accept = r.choice((None, None, 0, 40, 11542, 11543, 65535))
        self._request(f"unknown-path/{kind}", self._mtype(), method, segs, payload=payload, cf=cf,
                      accept=accept, allowed=self._unknown_allowed(kind))

    def unicode_digits(self):
        r = self.r
        segs = [r.choice(UNICODE_DIGITS), r.choice(("0", "٠"))] + [r.choice(("0", "15", "٠"))][:r.randint(0, 1)]
        self._request("unknown-path/unicode-digits", self._mtype(), r.choice((GET, GET, PUT, POST, DELETE)), segs,
                      payload=b"x" if r.random() < 0.3 else b"", cf=r.choice((None, 0)),
                      allowed={NOT_FOUND})

    def reads(self):
        r = self.r
        segs = r.choice((["3"], ["3", "0"], ["3", "0", str(r.choice((0, 1, 2, 6, 9, 13, 15, 22, 4, 99)))],
                         ["3", "0", "6", str(r.choice((0, 1, 7)))], ["4", "0"], ["4", "0", "4"], ["33211"],
                         ["1", "0"], ["1", "0", "1"], ["0"], ["0", "0", "0"], ["2"], ["3", "7"], ["5", "0", "0"]))
        accept = r.choice((None, None) + CONTENT_FORMATS)
        allowed = {CONTENT, NOT_FOUND, NOT_ALLOWED, NOT_ACCEPTABLE}
        if accept == 40 and len(segs) == 4:
            allowed.add(BAD_REQUEST)              # Discover is defined on /o, /o/i and /o/i/r only
        if segs[0] == "0":
            allowed = set(SECURITY_OBJECT_DISCOVER_CODES if accept == 40 else SECURITY_OBJECT_CODES)
        self._request("read", self._mtype(), GET, segs, accept=accept, allowed=allowed)

    def writes(self):
        """PUT/POST with random content formats and valid, mutated or garbage payloads on real targets."""
        r = self.r
        target = r.choice((["3", "0"], ["3", "0"], ["3", "0", "13"], ["3", "0", "14"], ["3", "0", "15"],
                           ["3", "0", "0"], ["3", "0", "6"], ["3", "0", "99"], ["3", "9"], ["3", "9", "15"],
                           ["33211", "0"], ["33211", "0", "0"], ["33211", "0", "1"], ["33211", "0", "2"],
                           ["33211", "77"], ["4", "0"], ["4", "0", "4"]))
        method = r.choice((PUT, PUT, POST)) if len(target) == 2 else PUT
        cf = r.choice((None,) + CONTENT_FORMATS + DATA_CFS)
        kind = r.choice(("tlv", "tlv-mut", "tlv-mut", "tlv-mut", "json", "json-mut", "text", "random", "empty"))
        payload = self._payload(kind)
        allowed = {CHANGED, BAD_REQUEST, NOT_FOUND, NOT_ALLOWED, UNSUPPORTED_CF}
        if cf in NO_DATA_CFS or cf is None:
            allowed -= {CHANGED}                       # no data format: the write cannot succeed
        self._request(f"write/{kind}", self._mtype(), method, target, payload=payload, cf=cf,
                      allowed=allowed, note=f"{len(payload)}B")

    def bad_writes(self):
        """Writes that cannot be valid: 4.00/4.04/4.05/4.15, never 2.04."""
        r = self.r
        k = r.randrange(7)
        if k == 0:
            segs, cf, payload = ["3", "0", "13"], r.choice((0, 1541)), r.choice((b"abc", b"", b"1e99999", b"9" * 40))
        elif k == 1:
            segs, cf, payload = ["3", "0", "15"], 0, r.choice((b"\xff\xfe", b"\xc3", b"ab\xed\xa0\x80"))
        elif k == 2:
            segs, cf, payload = ["3", "0"], r.choice((11542, 1542)), r.choice((b"\xc8", b"\xe8\x00", b"\xc1\x0f",
                                                                             b"\x08\x00\x05\xc1\x00", TLV_3_0[:-1]))
        elif k == 3:
            segs, cf, payload = ["3", "0"], r.choice((11543, 1543)), r.choice(JSON_SEEDS[5:])   # not {"e":[]}
        elif k == 4:
            segs, cf, payload = r.choice((["3", "0"], ["3", "0", "15"])), r.choice(NO_DATA_CFS), TLV_3_0
        elif k == 5:
            segs, cf, payload = ["3", "0", r.choice(("0", "1", "2", "9"))], r.choice(DATA_CFS), b"1"
        else:
            segs, cf, payload = ["3", "0"], 11542, TLV_3_0             # contains read-only resources
        self._request("bad-write", self._mtype(), PUT, segs, payload=payload, cf=cf,
                      allowed={BAD_REQUEST, NOT_FOUND, NOT_ALLOWED, UNSUPPORTED_CF}, note=f"variant {k}")

    def write_attributes(self):
        r = self.r
        segs = r.choice((["3", "0", "13"], ["3", "0"], ["3"], [str(r.choice(UNKNOWN_OIDS))], ["3", "0", "99"]))
        q = r.choice(("pmin=abc", "pmin=5", "pmax=", "foo=1", "gt=1e999", "st=-1", "lt", "=", "pmin=1&pmax=2",
                      "pmin=" + "9" * 400, "epmin=1", "dim=3", "pmin=nan", "pmax=inf", "pmin=-5", "st=1_0",
                      "pmin=\u0663"))
        self._request("write-attributes", self._mtype(), PUT, segs, [(URI_QUERY, q.encode())],
                      allowed={CHANGED, BAD_REQUEST, NOT_FOUND, NOT_ALLOWED})

    def executes(self):
        r = self.r
        segs = r.choice((["3", "0", "0"], ["3", "0", "13"], ["3", "0", "12"], ["3", "0", "99"], ["3", "5", "4"],
                         ["1", "0", "0"], ["4", "0", "2"], ["33211", "0", "2"], ["3", "0", "12", "0"]))
        payload = self._payload(r.choice(("text", "random", "empty")))
        self._request("execute", self._mtype(), POST, segs, payload=payload,
                      allowed={CHANGED, BAD_REQUEST, NOT_FOUND, NOT_ALLOWED})

    def creates(self):
        r = self.r
        segs = r.choice((["3303"], ["3303"], ["33211"], ["3"], ["4"], ["1"], [str(r.choice(UNKNOWN_OIDS))]))
        cf = r.choice((None, 11542, 11542, 11543, 0, 42, 40, 60))
        kind = r.choice(("tlv", "tlv-mut", "json", "json-mut", "random", "empty"))
        rec = self._request(f"create/{kind}", CON, POST, segs, payload=self._payload(kind), cf=cf,
                            allowed={CREATED, BAD_REQUEST, NOT_FOUND, NOT_ALLOWED, UNSUPPORTED_CF},
                            wait=REPLY_WINDOW)
        self._cleanup(rec)

    def _cleanup(self, rec: Sent):
        for a in rec.answers:
            if a.error is None and a.code == CREATED and a.opt(8):
                loc = [v.decode("ascii", "replace") for v in a.opt(8)]
                self.created.append(tuple(loc))
                self._request("delete-created", CON, DELETE, loc, allowed={DELETED}, wait=1.0, rng=self.side_rng)
                break

    def deletes(self):
        r = self.r
        segs = r.choice((["3", "0"], ["1", "0"], ["0", "0"], ["4", "7"], ["33211", "9"], ["3303", "0"],
                         ["3", "0", "15"], ["3"], [], ["3303"]))
        allowed = SECURITY_OBJECT_CODES if segs[:1] == ["0"] else {DELETED, BAD_REQUEST, NOT_FOUND, NOT_ALLOWED}
        self._request("delete", self._mtype(), DELETE, segs, allowed=allowed)

    def huge_payloads(self):
        r = self.r
        n = r.randint(1000, 1400)
        segs, cf = r.choice(((["3", "0", "15"], 0), (["3", "0", "13"], 0), (["3", "0"], 11542), (["3", "0"], 11543),
                             ([str(r.choice(UNKNOWN_OIDS)), "0"], 11542), (["3303"], 11542), (["3", "0", "15"], 42)))
        payload = r.choice((r.randbytes(n), b"A" * n, (TLV_3_0 * 20)[:n], mutate(r, (TLV_3_0 * 20)[:n])))
        rec = self._request("huge-payload", self._mtype(), r.choice((PUT, POST)), segs, payload=payload, cf=cf,
                            allowed={CHANGED, CREATED, BAD_REQUEST, NOT_FOUND, NOT_ALLOWED, UNSUPPORTED_CF,
                                     TOO_LARGE}, note=f"{n}B", wait=REPLY_WINDOW if segs == ["3303"] else 0.0)
        self._cleanup(rec)

    def blocks(self):
        r = self.r
        segs = r.choice((["3", "0"], ["3", "0", "0"], ["3", "0", "15"], ["3"], [str(r.choice(UNKNOWN_OIDS))],
                         ["3", "0", "99"]))
        method = r.choice((GET, PUT, POST))
        extra = []
        for opt in r.sample((BLOCK1, BLOCK2), r.randint(1, 2)):
            v = r.choice((r.randrange(16), r.randrange(1 << 12), r.randrange(1 << 24)))
            raw = uint(v) if r.random() < 0.9 else r.randbytes(r.randint(4, 5))     # > 3 bytes: invalid
            extra.append((opt, raw))
        if r.random() < 0.3:
            extra.append((r.choice((SIZE1, SIZE2)), uint(r.randrange(1 << 32))))
        payload = self._payload(r.choice(("tlv", "text", "random"))) if method != GET else b""
        self._request("block", self._mtype(), method, segs, extra, payload=payload,
                      cf=11542 if method != GET else None,
                      allowed={CONTENT, CHANGED, CONTINUE, BAD_REQUEST, BAD_OPTION, NOT_FOUND, NOT_ALLOWED,
                               NOT_ACCEPTABLE, INCOMPLETE, TOO_LARGE, UNSUPPORTED_CF},
                      note=" ".join(f"{n}={v.hex()}" for n, v in extra))

    def observe_unknown(self):
        r = self.r
        if r.random() < 0.2:
            kind, segs = "unicode-digits", [r.choice(UNICODE_DIGITS), "0", "0"]
        else:
            kind, segs = self._unknown_path()
        obs = r.choice((b"", b"", b"\x01", uint(r.randrange(1 << 24))))
        self._request(f"observe-unknown/{kind}", self._mtype(), GET, segs, [(OBSERVE, obs)],
                      accept=r.choice((None, 11542, 0)),
                      allowed=self._unknown_allowed(kind), note=f"observe={obs.hex()}")

    def duplicate(self):
        """The same CON twice: the second gets the very same answer, or none."""
        r = self.r
        tok = self.b.token()
        k = r.randrange(4)
        if k == 0:
            segs, method, cf, payload = [str(r.choice(UNKNOWN_OIDS))], GET, None, b""
        elif k == 1:
            segs, method, cf, payload = ["3", "0", "0"], GET, None, b""
        elif k == 2:
            segs, method, cf, payload = ["3", "0", "15"], PUT, 0, r.choice((b"UTC", b"Europe/Rome"))
        else:   # not idempotent: a second Create would make a second instance
            segs, method, cf, payload = ["33211"], POST, 11542, tlv.encode_instance({1: 5}, _types(33211))
        opts = path_opts(segs) + ([(CONTENT_FORMAT, uint(cf))] if cf is not None else [])
        data = with_mid(build(CON, method, 0, tok, opts, payload), self.b.next_mid())
        first = self.b.send("duplicate", data, "response", None, token=tok, wait=0.5, fresh_mid=False,
                            note=f"{METHOD_NAMES[method]} /{'/'.join(segs)}", prop="dup")
        second = self.b.send("duplicate-2nd", data, "any", token=None, fresh_mid=False, register=False,
                             prop="dup")          # its answer (same mid) lands on the first record
        second.note = first.note
        second.answers = first.answers        # same mid: answers land on the first record
        self._cleanup(first)

    def stray_ack_rst(self):
        r = self.r
        mtype = r.choice((ACK, RST))
        k = r.randrange(4)
        if k == 0:
            data = build(mtype, 0, 0)
        elif k == 1:    # ACK/RST with a token and a payload (a format error for RST and empty ACK)
            data = build(mtype, 0, 0, r.randbytes(r.randint(1, 8)), path_opts(["3"]), r.randbytes(4))
        elif k == 2:    # an ACK carrying a response nobody asked for
            data = build(mtype, r.choice((CONTENT, CHANGED, NOT_FOUND, INTERNAL_ERROR)), 0,
                         r.randbytes(r.randint(0, 8)), [(CONTENT_FORMAT, uint(0))], b"Telit")
        else:           # an ACK/RST carrying a request
            data = build(mtype, r.choice((GET, POST, PUT, DELETE)), 0, r.randbytes(r.randint(0, 8)),
                         path_opts(["3", "0", "0"]))
        self.b.send(f"stray-{TYPES[mtype]}", data, "none", note=f"variant {k}")

    def stray_response(self):
        """A CON/NON response matching no request: a CON one is answered by an RST, a NON one ignored."""
        r = self.r
        mtype = self._mtype()
        data = build(mtype, r.choice((CONTENT, CHANGED, CREATED, NOT_FOUND, INTERNAL_ERROR, code(2, 31))), 0,
                     r.randbytes(r.randint(0, 8)), [(CONTENT_FORMAT, uint(0))], b"x")
        self.b.send("stray-response", data, "rst-or-none")

    def pings(self):
        r = self.r
        k = r.randrange(4)
        if k <= 1:
            self.b.send("ping", build(CON, 0, 0), "rst")
        elif k == 2:    # an "empty" CON with a token or a payload: a format error
            self.b.send("ping-malformed", build(CON, 0, 0, r.randbytes(r.randint(1, 8)), (), r.choice((b"", b"x"))),
                        "rst-or-none")
        else:           # an empty NON: not allowed at all
            self.b.send("ping-malformed", build(NON, 0, 0), "rst-or-none")

    def reserved_codes(self):
        """Codes of the reserved classes 1, 3, 6 and 7 in CON/NON messages."""
        r = self.r
        c = code(r.choice((1, 3, 6, 7)), r.randrange(32))
        data = build(self._mtype(), c, 0, r.randbytes(r.randint(0, 8)), path_opts(["3", "0", "0"]))
        self.b.send("reserved-code", data, "rst-or-none", note=code_str(c))

    def observe_valid(self):
        """A few real observations from this socket (on values nothing else changes), so that the writes and
        Write-Attributes of the barrage meet live observations."""
        r = self.r
        segs = r.choice((["3", "0", "15"], ["3", "0", "14"], ["33211", "0", "1"], ["33211", "0"]))
        self._request("observe-valid", CON, GET, segs, [(OBSERVE, b"")], allowed={CONTENT, NOT_FOUND})

    def invalid_utf8_path(self):
        r = self.r
        seg = r.choice((b"\xff", b"\xc3", b"3\x80", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"))
        tok = self.b.token()
        data = build(self._mtype(), r.choice((GET, PUT)), 0, tok, [(URI_PATH, b"3"), (URI_PATH, seg)])
        self.b.send("invalid-utf8-path", data, "any", token=tok, note=seg.hex())


# (category, weight); the schedule is the weights scaled, shuffled with the seed
PLAN = [
    ("random_bytes", 1500), ("truncated", 400), ("wrong_version", 300), ("bad_token_length", 400),
    ("unknown_critical", 500), ("option_nibbles", 700), ("huge_options", 200), ("empty_payload_marker", 300),
    ("unknown_paths", 1800), ("unicode_digits", 120), ("reads", 600), ("writes", 1300), ("bad_writes", 400),
    ("write_attributes", 150), ("executes", 150), ("creates", 200), ("deletes", 150), ("huge_payloads", 300),
    ("blocks", 500), ("observe_unknown", 400), ("duplicate", 150), ("stray_ack_rst", 600),
    ("stray_response", 150), ("pings", 300), ("reserved_codes", 150), ("invalid_utf8_path", 60),
    ("observe_valid", 20),
]



# --------------------------------------------------------------------------------------------- the barrage
class StderrDrain(threading.Thread):
    """Keeps reading the emulator's stderr. EmulatorProcess pipes it and never reads it: a process that
    logs more than the pipe holds (64 KiB, a few hundred of aiocoap's per-datagram warnings) blocks in
    write(2), and its event loop (PTY and CoAP) with it. If EmulatorProcess drains it itself (a
    stderr_text() method), that is used instead."""

    def __init__(self, emu):
        super().__init__(daemon=True)
        self.emu = emu
        self._lines: list[str] = []

    def start(self):
        if not hasattr(self.emu, "stderr_text"):
            super().start()

    def join(self, timeout=None):
        if self.is_alive():
            super().join(timeout)

    def run(self):
        try:
            for line in iter(self.emu.proc.stderr.readline, b""):
                self._lines.append(line.decode("utf-8", "replace").rstrip("\n"))
        except (ValueError, OSError):
            pass

    @property
    def lines(self) -> list[str]:
        if hasattr(self.emu, "stderr_text"):
            return self.emu.stderr_text().splitlines()
        return self._lines

    def text(self) -> str:
        return "\n".join(self.lines)

    def errors(self) -> list[str]:
        """The distinct error lines (log records at ERROR and the last line of each traceback)."""
        out = []
        for i, ln in enumerate(self.lines):
            if " ERROR " in ln or (ln and not ln[0].isspace() and re.match(r"\w+(Error|Exception)\b", ln)):
                out.append(re.sub(r"^\S+ \S+ ", "", ln)[:300])
        return list(dict.fromkeys(out))


@dataclass
class Outcome:
    records: list
    unmatched: list
    summary: str
    survival: list            # (b) (c) (d) problems
    integrity: list           # the device object no longer readable
    stderr: StderrDrain


def _read(server: RawServer, path: str, accept: int | None = None) -> Msg | None:
    opts = [(ACCEPT, uint(accept))] if accept is not None else []
    return server.request(GET, path, opts, timeout=10)


def _run_barrage(h, emu, server: RawServer) -> tuple[Barrage, Gen, list[str], list[str], str]:
    rng = random.Random(SEED)
    b = Barrage(server.client, rng, server.sock)
    gen = Gen(b)
    schedule = [name for name, n in PLAN for _ in range(max(1, round(n * SCALE)))]
    rng.shuffle(schedule)
    t0 = time.monotonic()
    stopped = ""
    try:
        assert b.barrier(), "the emulator's CoAP socket does not answer a ping before the barrage"
        for i, name in enumerate(schedule):
            if time.monotonic() - t0 > BARRAGE_DEADLINE:
                stopped = f", stopped by the {BARRAGE_DEADLINE:.0f} s deadline after {i}"
                break
            if b.dead:
                stopped = f", stopped after {i}: 5 barriers in a row unanswered"
                break
            getattr(gen, name)()
        b.barrier()
        b.drain(1.0)
        elapsed = time.monotonic() - t0

        survival: list[str] = []
        if not any(b.barrier() for _ in range(3)):
            survival.append("the CoAP socket no longer answers a ping (empty CON) after the barrage")
        server.sock.setblocking(True)
        ans = _read(server, "3/0/0", 0)
        if ans is None or ans.code != CONTENT or ans.payload != b"Telit":
            survival.append(f"(b) the server's read of /3/0/0 gets {ans} after the barrage")
        integrity: list[str] = []
        for path, cf in (("3/0", 11542), ("3/0", 11543), ("3/0/15", 0), ("3/0/14", 0), ("3/0/13", 0),
                         ("33211/0", 11542)):
            ans = _read(server, path, cf)
            if ans is None or ans.code != CONTENT:
                integrity.append(f"the server's read of /{path} as {cf} fails after the barrage: {ans}")
                continue
            oid = int(path.split("/")[0])
            try:
                if cf == 11542:
                    tlv.decode_instance(ans.payload, _types(oid))
                elif cf == 11543:
                    lwjson.decode_instance(ans.payload, oid, 0, _types(oid))
            except Exception as exc:
                integrity.append(f"the read of /{path} as {cf} does not decode after the barrage: {exc}")
        try:
            at = h.cmd("AT", timeout=10)
            if not at.endswith(OK):
                survival.append(f"(c) AT answered {at!r}")
            stat = h.cmd("AT#LWM2MSTAT", timeout=10)
            if b'#LWM2MGETSTAT: 1,"ACTIVE"\r\n' not in stat:
                survival.append(f"(c) AT#LWM2MSTAT answered {stat!r}")
        except Exception as exc:
            survival.append(f"(c) the AT port no longer answers: {exc}")
        if emu.proc.poll() is not None:
            survival.append(f"(d) the emulator process exited with {emu.proc.returncode}")
    finally:
        pass
    fired = sum(1 for r in b.sent if r.cat != "barrier")
    head = (f"seed {SEED}: {fired} datagrams ({len(schedule)} scheduled{stopped}) and "
            f"{b.barriers['answered'] + b.barriers['missed']} barrier pings ({b.barriers['missed']} unanswered) in "
            f"{elapsed:.1f} s; {len(b.unmatched)} answers matched to no datagram; {len(gen.created)} instances "
            f"created by the barrage (each deleted again)")
    return b, gen, survival, integrity, head


def _summary(head: str, records: list) -> str:
    stats: dict[str, Counter] = defaultdict(Counter)
    for rec in records:
        c = stats[rec.cat.split("/")[0]]
        c["sent"] += 1
        c["answered"] += bool(rec.answers)
        for a in rec.answers:
            c["invalid" if a.error else (code_str(a.code) if a.code else TYPES[a.mtype])] += 1
    lines = [head]
    for cat in sorted(stats):
        c = stats[cat]
        rest = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("sent", "answered"))
        lines.append(f"  {cat:24} sent {c['sent']:5}  answered {c['answered']:5}  {rest}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    """Register a fresh emulator with a raw CoAP server, fire the barrage from that server's own socket
    (the client ignores every other peer), check that the module survived."""
    server = RawServer()
    emu = EmulatorProcess(tmp_path_factory.mktemp("coapfuzz") / "s", "--lwm2m-server", server.uri,
                          "--time-scale", "4")
    drain = StderrDrain(emu)
    drain.start()
    h = emu.open()
    try:
        assert h.cmd("ATE0") == OK
        h.echo = False
        h.wait_network()
        assert h.cmd("AT#LWM2MENA=1") == OK
        server.wait_register()
        h.wait_for(rb'LWM2M-TLT:"REGISTERED",SSID=123,"[^"]*"\r\n', timeout=30)
        assert server.client[0] == "127.0.0.1", server.client          # bound to the loopback address
        b, gen, survival, integrity, head = _run_barrage(h, emu, server)
    finally:
        h.close()
        emu.kill()
        server.close()
        drain.join(5)
    records = [r for r in b.sent if r.cat != "duplicate-2nd"]
    summary = _summary(head, records)
    print("\n" + summary)
    if os.environ.get("COAP_FUZZ_STDERR"):
        with open(os.environ["COAP_FUZZ_STDERR"], "w") as fh:
            fh.write(drain.text())
    if os.environ.get("COAP_FUZZ_DUMP"):
        with open(os.environ["COAP_FUZZ_DUMP"], "w") as fh:
            for r in b.sent:
                fh.write(f"{r.cat} mid={r.mid} tok={(r.token or b'').hex()} {r.note} {r.data.hex()}\n")
                for a in r.answers:
                    fh.write(f"    {a} {a.raw.hex()}\n")
            for a in b.unmatched:
                fh.write(f"unmatched {a} {a.raw.hex()}\n")
    return Outcome(records, b.unmatched, summary, survival, integrity, drain)


# --------------------------------------------------------------------------------------------- judging
def _violations(out: Outcome, prop: str, judge) -> list[str]:
    """Group judge(rec, answer) complaints by (category, complaint): one line each, with an example."""
    groups: dict[tuple[str, str], list] = defaultdict(list)
    for rec in out.records:
        if rec.prop != prop and prop != "*":
            continue
        for a in rec.answers:
            why = judge(rec, a)
            if why:
                groups[(rec.cat, why)].append(rec)
    return [f"{cat}: {why} x{len(recs)}; e.g. {recs[0].note + ' ' if recs[0].note else ''}datagram "
            f"{recs[0].data[:100].hex()}" for (cat, why), recs in sorted(groups.items())]


_TABLE_SHOWN = []


def _fail(out: Outcome, title: str, lines: list[str]) -> None:
    """Fail with the grouped complaints; the per-category table goes with the first failure only."""
    if lines:
        table = out.summary if not _TABLE_SHOWN else out.summary.splitlines()[0]
        _TABLE_SHOWN.append(True)
        pytest.fail(f"{title}\n" + "\n".join(lines) + f"\n\n{table}", pytrace=False)


def test_emulator_survives_the_barrage(outcome):
    """(b) the server still reads /3/0/0, (c) the AT port answers AT and #LWM2MSTAT, (d) the process lives."""
    _fail(outcome, "the module did not come through the barrage:", outcome.survival)


def test_hostile_writes_leave_the_objects_readable(outcome):
    """Whatever writes the barrage got accepted (2.04), /3/0, /3/0/13-15 and /33211/0 still read back in
    TLV, JSON and text by the server: an accepted write stored a value of the resource's type and shape."""
    _fail(outcome, "objects the barrage wrote to can no longer be read:", outcome.integrity)


def test_no_internal_server_error(outcome):
    """5.00 means an exception escaped a handler: each distinct trigger, with the emulator's errors."""
    lines = _violations(outcome, "*", lambda rec, a: "5.00 Internal Server Error"
                        if a.error is None and a.code == INTERNAL_ERROR else None)
    lines += [f"unmatched answer {a}" for a in outcome.unmatched if a.error is None and a.code == INTERNAL_ERROR]
    if lines:
        lines += ["", "errors on the emulator's stderr:"] + [f"  {e}" for e in outcome.stderr.errors()[:40]]
    _fail(outcome, "answers 5.00 (Internal Server Error):", lines)


def test_answers_are_valid_coap(outcome):
    lines = _violations(outcome, "*", lambda rec, a: f"invalid CoAP answer ({a.error})" if a.error else None)
    bad = [a for a in outcome.unmatched if a.error]
    lines += [f"unmatched invalid answer {a}" for a in bad[:8]] + ([f"... {len(bad) - 8} more"] if len(bad) > 8 else [])
    _fail(outcome, "the emulator sent datagrams that are not valid CoAP (RFC 7252 section 3):", lines)


def _code_judge(rec: Sent, a: Answer) -> str | None:
    if a.error or a.code == INTERNAL_ERROR or rec.reply != "response" or rec.allowed is None:
        return None
    if a.mtype == RST:
        return "a well-formed request answered with RST"
    if a.code == 0:
        return None                       # empty ACK: a separate response follows
    if a.opt(OBSERVE) and a.code == CONTENT and a.mtype in (CON, NON):
        return None                       # a later notification of a valid observation
    if a.code not in rec.allowed:
        return f"{code_str(a.code)}, expected one of {{{', '.join(sorted(map(code_str, rec.allowed)))}}}"
    return None


def test_well_formed_requests_get_sensible_codes(outcome):
    """4.04 for paths that name nothing; 4.00/4.04/4.05/4.15 for bad writes; 2.05/4.04/4.05/4.06 for reads..."""
    _fail(outcome, "well-formed requests got unexpected codes:", _violations(outcome, "codes", _code_judge))


def test_unknown_critical_options_get_4_02(outcome):
    """RFC 7252 5.4.1: an unrecognized critical option in a CON request is answered 4.02 (Bad Option)."""
    _fail(outcome, "requests with unknown critical options were served:",
          _violations(outcome, "critical", _code_judge))


def test_format_errors_are_not_answered(outcome):
    """Wrong version, truncated headers, stray ACK/RST: never answered. Token lengths 9-15, payload markers
    without payload, nibble 15, reserved codes, malformed empty messages: an RST or nothing (RFC 7252 3, 4.2)."""
    def judge(rec, a):
        if a.error or a.code == INTERNAL_ERROR:
            return None
        if rec.reply == "none":
            return f"answered with {TYPES[a.mtype]} {code_str(a.code)} (must be ignored)"
        if rec.reply == "rst-or-none" and a.mtype != RST:
            return f"served: {TYPES[a.mtype]} {code_str(a.code)} (a format error: RST or nothing)"
        return None
    _fail(outcome, "format errors were answered:", _violations(outcome, "format", judge))


def test_duplicate_con_gets_the_same_answer(outcome):
    """A CON sent twice (same message id) gets the very same answer again, or none; a Create is not redone."""
    lines = []
    dups = [r for r in outcome.records if r.cat == "duplicate"]
    for rec in dups:
        acks = {a.raw for a in rec.answers if a.error is None and a.mtype in (ACK, RST)}
        if len(acks) > 1:
            lines.append(f"{rec.note}: different answers {[str(parse(x)) for x in acks]}")
    _fail(outcome, f"duplicate CONs ({len(dups)} pairs) were answered differently:", lines)


def test_ping_gets_rst(outcome):
    """An empty CON is a CoAP ping: the answer is an empty RST with its message id."""
    pings = [r for r in outcome.records if r.prop == "ping"]
    lines = _violations(outcome, "ping", lambda rec, a: None if a.error or (a.mtype == RST and a.mid == rec.mid)
                        else f"answered with {TYPES[a.mtype]} {code_str(a.code)}")
    if not any(r.answers for r in pings):
        lines.append(f"none of the {len(pings)} pings was answered")
    _fail(outcome, "pings:", lines)


# ============================================================================================ strangers & co
# Each of these starts one emulator registered with a raw server (tests/coap_peer.py) on 127.0.0.1.
QUIET = 1.0          # seconds a stranger waits for an answer that must not come


class Registered:
    """An emulator process registered with a RawServer; ``stranger`` is another socket on 127.0.0.1."""

    def __init__(self, tmp, *args: str, bootstrap: bool = False):
        self.server = RawServer()
        extra = ("--lwm2m-bootstrap",) if bootstrap else ()
        self.emu = EmulatorProcess(tmp / "s", "--lwm2m-server", self.server.uri, *extra, *args)
        self.h = self.emu.open()
        assert self.h.cmd("ATE0") == OK
        self.h.echo = False
        self.h.wait_network()
        self.stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stranger.bind(("127.0.0.1", 0))

    def enable(self) -> None:
        assert self.h.cmd("AT#LWM2MENA=1") == OK
        self.server.wait_register()
        self.h.wait_for(rb'LWM2M-TLT:"REGISTERED",[^\r]*\r\n', timeout=30)

    def stranger_request(self, method: int, path: str, options=(), payload=b"", mtype=CON) -> list[bytes]:
        """Send one request from the stranger socket; every datagram it got back within QUIET."""
        tok = os.urandom(4)
        self.stranger.sendto(build(mtype, method, random.randrange(0x10000), tok,
                                   path_opts(path.split("/")) + list(options), payload), self.server.client)
        got = []
        self.stranger.settimeout(QUIET)
        try:
            while True:
                got.append(self.stranger.recvfrom(65536)[0])
        except socket.timeout:
            return got

    def close(self) -> None:
        self.h.close()
        self.emu.kill()
        self.server.close()
        self.stranger.close()


@pytest.fixture
def reg(tmp_path):
    r = Registered(tmp_path)
    r.enable()
    yield r
    r.close()


def _bound_address(port: int) -> str | None:
    """The local address of the UDP socket on ``port`` (from /proc/net/udp and udp6)."""
    for name in ("/proc/net/udp6", "/proc/net/udp"):
        with open(name) as fh:
            for line in fh.readlines()[1:]:
                local = line.split()[1]
                addr, p = local.split(":")
                if int(p, 16) == port:
                    return addr
    return None


def test_strangers_get_no_answer_and_change_nothing(reg):
    """GET /3/0/2, PUT /1/0/1, POST /3/0/5 (factory reset) and a ping from another port of 127.0.0.1:
    no answer at all, nothing changed, the module counts them in its log; the server still works."""
    h, server = reg.h, reg.server
    assert reg.stranger_request(GET, "3/0/2") == []
    assert reg.stranger_request(PUT, "1/0/1", [(CONTENT_FORMAT, uint(0))], b"77") == []
    assert reg.stranger_request(POST, "3/0/5") == []
    reg.stranger.sendto(build(CON, 0, 0x4242), server.client)              # a CoAP ping
    reg.stranger.settimeout(QUIET)
    with pytest.raises(socket.timeout):
        reg.stranger.recvfrom(2048)
    # nothing changed: the lifetime, no reboot (a factory reset reboots and registers again)
    assert server.request(GET, "1/0/1", [(ACCEPT, uint(0))]).payload == b"86400"
    assert b'#LWM2MGETSTAT: 1,"ACTIVE"' in h.cmd("AT#LWM2MSTAT")
    server.recv(2.0)                          # a reboot would register again within this
    assert len(server.registrations) == 1
    # the registered server is still served, from its own address and port
    ans = server.request(GET, "3/0/2", [(ACCEPT, uint(0))])
    assert ans is not None and ans.code == CONTENT and ans.payload
    ans = server.request(PUT, "1/0/1", [(CONTENT_FORMAT, uint(0))], b"300")
    assert ans is not None and ans.code == CHANGED
    assert server.request(GET, "1/0/1", [(ACCEPT, uint(0))]).payload == b"300"
    log = reg.emu.stderr_text()
    assert re.search(r"ignored \d+ datagram\(s\) from peers that are not this client's servers", log), log[-2000:]


def test_client_socket_is_bound_to_the_address_that_routes_to_its_server(reg):
    """A loopback server: the client's socket is bound to 127.0.0.1, not to every interface."""
    addr = _bound_address(reg.server.client[1])
    assert addr in ("0000000000000000FFFF00000100007F", "0100007F"), addr      # ::ffff:127.0.0.1 / 127.0.0.1


def _tlv(oid: int, values: dict) -> bytes:
    return tlv.encode_instance(values, _types(oid))


def test_only_the_contacted_bootstrap_server_may_bootstrap(tmp_path):
    """While the module waits for its bootstrap server, a stranger's Bootstrap-Write of /0/1 and /1/1,
    Delete and Bootstrap-Finish get no answer and leave no trace: the module registers with the server
    the real bootstrap server provisioned, never with the stranger's."""
    r = Registered(tmp_path, bootstrap=True)
    dm = RawServer()
    try:
        bs = r.server
        assert r.h.cmd("AT#LWM2MENA=1") == OK
        deadline = time.monotonic() + 30
        while bs.last_request_from is None and time.monotonic() < deadline:   # the Bootstrap-Request: 2.04
            bs.recv(0.2)
        client = bs.last_request_from
        assert client is not None, "no Bootstrap-Request reached the bootstrap server"
        bs.client = client
        evil = f"coap://127.0.0.1:{r.stranger.getsockname()[1]}"
        for method, path, opts, payload in (
                (PUT, "0/1", [(CONTENT_FORMAT, uint(11542))], _tlv(0, {0: evil, 1: False, 2: 3, 10: 77})),
                (PUT, "1/1", [(CONTENT_FORMAT, uint(11542))], _tlv(1, {0: 77, 1: 300, 6: False, 7: "U"})),
                (DELETE, "0", [], b""),
                (POST, "bs", [], b"")):
            assert r.stranger_request(method, path, opts, payload) == [], (method, path)
        # a DM server URI the client cannot use is not a usable configuration: Bootstrap-Finish gets 4.06
        for path, oid, values in (("0/1", 0, {0: "coap://127.0.0.1:99999", 1: False, 2: 3, 10: 123}),
                                  ("1/1", 1, {0: 123, 1: 300, 6: False, 7: "U"})):
            ans = bs.request(PUT, path, [(CONTENT_FORMAT, uint(11542))], _tlv(oid, values))
            assert ans is not None and ans.code == CHANGED, (path, ans)
        ans = bs.request(POST, "bs")
        assert ans is not None and ans.code == NOT_ACCEPTABLE, ans
        # the real bootstrap server provisions its DM server and finishes
        for path, oid, values in (("0/1", 0, {0: dm.uri, 1: False, 2: 3, 10: 123}),
                                  ("1/1", 1, {0: 123, 1: 300, 6: False, 7: "U"})):
            ans = bs.request(PUT, path, [(CONTENT_FORMAT, uint(11542))], _tlv(oid, values))
            assert ans is not None and ans.code == CHANGED, (path, ans)
        ans = bs.request(POST, "bs")
        assert ans is not None and ans.code == CHANGED, ans
        dm.wait_register(timeout=30)
        r.h.wait_for(rb'LWM2M-TLT:"REGISTERED",SSID=123,"' + dm.uri.encode() + rb'"\r\n', timeout=30)
        r.stranger.settimeout(QUIET)
        with pytest.raises(socket.timeout):                            # never registers with the stranger
            r.stranger.recvfrom(2048)
    finally:
        dm.close()
        r.close()


MAX_BODY = 8192      # emulator.lwm2m.site.MAX_REQUEST_BODY, stated here as the README states it


def _timezone(h) -> bytes:
    out = h.cmd("AT#LWM2MR=0,3,0,15,0")
    assert out.startswith(b"\r\n#LWM2MR: ") and out.endswith(OK), out[:80]
    return out[len(b"\r\n#LWM2MR: "):-len(b"\r\n" + OK)]


def _block1(num: int, more: bool, szx: int = 6) -> bytes:
    return uint((num << 4) | (8 if more else 0) | szx)


def test_oversize_requests_get_4_13_and_never_a_partial_write(reg):
    """A body the client takes is stored whole (5,000 bytes in one datagram: once cut to 4,074); one over
    the limit gets 4.13 with Size1 = the limit and changes nothing, whether it comes in one datagram,
    as a Block1 transfer that grows past the limit, or announced by Size1 in its first block."""
    server, h = reg.server, reg.h
    text = [(CONTENT_FORMAT, uint(0))]
    whole = b"Z" * 5000
    ans = server.request(PUT, "3/0/15", text, whole)
    assert ans is not None and ans.code == CHANGED, ans
    assert _timezone(h) == whole
    ans = server.request(PUT, "3/0/15", text, b"Y" * (MAX_BODY + 1))
    assert ans is not None and ans.code == TOO_LARGE, ans
    assert ans.opt(SIZE1) == [uint(MAX_BODY)]
    assert _timezone(h) == whole
    # Block1 of 1 KiB blocks: the block that crosses the limit is refused, nothing is stored
    for num in range(MAX_BODY // 1024):
        ans = server.request(PUT, "3/0/15", text + [(BLOCK1, _block1(num, True))], b"B" * 1024)
        assert ans is not None and ans.code == CONTINUE, (num, ans)
    ans = server.request(PUT, "3/0/15", text + [(BLOCK1, _block1(MAX_BODY // 1024, False))], b"B" * 10)
    assert ans is not None and ans.code == TOO_LARGE and ans.opt(SIZE1) == [uint(MAX_BODY)], ans
    assert _timezone(h) == whole
    # Size1 in the first block announces too much: refused at once
    ans = server.request(PUT, "3/0/15", text + [(BLOCK1, _block1(0, True)), (SIZE1, uint(MAX_BODY + 100))],
                         b"C" * 1024)
    assert ans is not None and ans.code == TOO_LARGE and ans.opt(SIZE1) == [uint(MAX_BODY)], ans
    # a Block1 transfer within the limit is put together and stored
    for num in range(3):
        ans = server.request(PUT, "3/0/15", text + [(BLOCK1, _block1(num, num < 2))], b"D" * 1024)
        assert ans is not None and ans.code == (CONTINUE if num < 2 else CHANGED), (num, ans)
    assert _timezone(h) == b"D" * 3072


FLOOD = 50_000                   # confirmable GETs, from the registered server's own address and port
FLOOD_WINDOW = 250               # sent before waiting for their answers (the socket buffers never overflow)
FLOOD_OBSERVE = 5_000            # then Observe GETs, each with its own token
FLOOD_DEADLINE = 120.0           # seconds
FLOOD_RSS_BOUND_MB = 8.0         # RSS growth allowed over the flood (README: "Security")


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _flood(server: RawServer, n: int, deadline: float, observe: bool = False) -> int:
    """n small CON GETs of /3/0/0 (Observe ones: of /3/0/9) with fresh message ids and tokens, in windows;
    returns how many were answered."""
    sock, to = server.sock, server.client
    sock.setblocking(False)
    answered, sent, mid = 0, 0, 0
    while sent < n and time.monotonic() < deadline:
        batch = min(FLOOD_WINDOW, n - sent)
        for _ in range(batch):
            mid = (mid + 1) & 0xFFFF
            opts = [(OBSERVE, b"")] + path_opts(["3", "0", "9"]) if observe else path_opts(["3", "0", "0"])
            sock.sendto(build(CON, GET, mid, (b"o" if observe else b"f") + struct.pack("!I", sent), opts), to)
            sent += 1
        got, until = 0, time.monotonic() + 2.0
        while got < batch and time.monotonic() < until:
            r, _, _ = select.select([sock], [], [], 0.2)
            while r:
                try:
                    raw = sock.recv(65536)
                except BlockingIOError:
                    break
                if len(raw) >= 4 and raw[1] == CONTENT and (raw[0] >> 4) & 3 == ACK:
                    got += 1
                    if observe and Msg(raw).opt(OBSERVE):
                        server.observing += 1
        answered += got
    sock.setblocking(True)
    return answered


def test_a_flood_from_the_server_costs_bounded_memory(reg):
    """50,000 confirmable GETs, then 5,000 Observe GETs with fresh tokens, from the registered server:
    every per-peer cache (message ids, observations, block transfers) is bounded, so the
    emulator's RSS grows by less than FLOOD_RSS_BOUND_MB (aiocoap 0.4.17 alone kept every message id for
    247 s: 32 -> 114 MB). Loopback only, bounded in count and time."""
    pid = reg.emu.proc.pid
    t0 = time.monotonic()
    _flood(reg.server, 2_000, t0 + 30)                 # warm up: code paths, allocator pools
    before = _rss_kb(pid)
    answered = _flood(reg.server, FLOOD, t0 + FLOOD_DEADLINE)
    reg.server.observing = 0
    observed = _flood(reg.server, FLOOD_OBSERVE, t0 + FLOOD_DEADLINE + 30, observe=True)
    after = _rss_kb(pid)
    took = time.monotonic() - t0
    growth = (after - before) / 1024
    print(f"\nflood: {answered} of {FLOOD} GETs and {observed} of {FLOOD_OBSERVE} Observe GETs answered in {took:.1f} s; VmRSS {before / 1024:.1f} -> "
          f"{after / 1024:.1f} MB (+{growth:.1f} MB)")
    assert answered >= FLOOD * 0.9, f"only {answered} of {FLOOD} answered in {took:.0f} s"
    assert observed >= FLOOD_OBSERVE * 0.9, f"only {observed} of {FLOOD_OBSERVE} Observe GETs answered"
    assert reg.server.observing == 64, reg.server.observing      # site.MAX_OBSERVATIONS; the rest declined
    assert growth < FLOOD_RSS_BOUND_MB, f"VmRSS grew by {growth:.1f} MB over the flood"
    ans = reg.server.request(GET, "3/0/0", [(ACCEPT, uint(0))])
    assert ans is not None and ans.payload == b"Telit"


# ============================================================================================ the modem's clock
def test_a_stepped_clock_drives_coap_retransmissions_to_a_nack(tmp_path):
    """In process, on the ManualClock: a CON notification to a server that never ACKs it is retransmitted
    and ends in #LWM2MNFYACK "NACK" as the test advances the clock (RFC 7252: up to 93 s of CoAP time),
    with no real waiting: CoAP timers follow the modem's clock (stepped or scaled)."""
    import asyncio
    from emulator.clock import ManualClock
    from emulator.modem.core import Modem
    from emulator.port import MemoryPort

    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)

    async def datagram(timeout: float = 5.0):
        """The next datagram at the peer (real time, bounded: the network is real)."""
        loop = asyncio.get_running_loop()
        return await asyncio.wait_for(loop.sock_recvfrom(peer, 65536), timeout)

    async def go():
        clock, port = ManualClock(), MemoryPort()
        modem = Modem(port, tmp_path / "s", clock=clock,
                      lwm2m_server=f"coap://127.0.0.1:{peer.getsockname()[1]}|0")
        modem.start()
        await clock.advance(30)                                      # attach
        port.feed(b"AT#LWM2MENA=1\r")
        await clock.advance(1)
        raw, client = await datagram()
        reg = Msg(raw)
        assert reg.path == "rd", reg
        peer.sendto(build(ACK, code(2, 1), reg.mid, reg.token, [(8, b"rd"), (8, b"1")]), client)
        for _ in range(50):
            await clock.advance(0.1)
            if b'"REGISTERED"' in port.output:
                break
        assert b'"REGISTERED"' in port.output, bytes(port.output)
        port.feed(b"AT#LWM2MNFYACKURI=0,1,3,0,9;#LWM2MNFYACKENA=0,1\r")
        await clock.advance(0.1)
        peer.sendto(build(CON, GET, 0x5001, b"ob", [(OBSERVE, b"")] + path_opts(["3", "0", "9"])), client)
        raw, _ = await datagram()
        assert Msg(raw).code == CONTENT
        port.take()
        port.feed(b"AT#LWM2MSET=0,3,0,9,0,44\r")
        await clock.advance(0)
        raw, _ = await datagram()
        note = Msg(raw)
        assert note.mtype == CON and note.payload.endswith(b"44")
        t0, sends = time.monotonic(), 1
        for _ in range(100):                                         # 100 s of CoAP time, in 1 s steps
            await clock.advance(1.0)
            try:
                while True:
                    again, _ = peer.recvfrom(65536)
                    sends += Msg(again).mid == note.mid
            except BlockingIOError:
                pass
            if b"NACK" in port.output:
                break
        real = time.monotonic() - t0
        assert b'#LWM2MNFYACK: 0,123,"/3/0/9","NACK"' in port.output, bytes(port.output)
        assert sends == 5, sends                                      # the first send + MAX_RETRANSMIT 4
        assert real < 5.0, f"{real:.1f} s of real time"
        modem.close()
        for _ in range(5):
            await clock.advance(1)
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in rest:
            t.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()
        peer.close()


# ============================================================================================ server URIs
BAD_URIS = ["coap://127.0.0.1:99999", "coap://[::1", "coap://127.0.0.1:25683x", "coap://127.0.0.1:-1",
            "coap://127.0.0.1:0", "coap://127.0.0.1:", "http://127.0.0.1:5683", "coap://", "coap://1.2.3.256",
            "coap://host/rd", "coap://user@host", "coap://[fe80::zz]:5683", "coap://ho st", "coaps://[::1]x"]
GOOD_URIS = ["coap://127.0.0.1:5683", "coaps://[::1]:5684", "coap://leshan.example", "coap://127.0.0.1/"]


def test_server_uri_check():
    from emulator.lwm2m.coap import parse_server_uri, server_uri_problem
    for uri in BAD_URIS:
        assert server_uri_problem(uri), uri
    for uri in GOOD_URIS:
        assert server_uri_problem(uri) is None, uri
    assert parse_server_uri("coaps://[::1]").uri == "coaps://[::1]:5684"


def _in_process(tmp_path, body):
    import asyncio
    from emulator.clock import ManualClock
    from emulator.modem.core import Modem
    from emulator.port import MemoryPort

    async def go():
        clock, port = ManualClock(), MemoryPort()
        modem = Modem(port, tmp_path / "s", clock=clock)
        modem.start()

        async def at(line: str, dt: float = 0.1) -> bytes:
            port.feed(line.encode() + b"\r")
            await clock.advance(dt)
            return port.take()
        await at("ATE0")
        try:
            await body(modem, clock, at)
        finally:
            modem.close()
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()


def test_lwm2msts_refuses_unusable_uris(tmp_path):
    """#LWM2MSTS=0,999,<uri> with a port out of 1..65535, a broken IPv6 literal, a non-numeric port, another
    scheme, a path or user info: +CME ERROR (per +CMEE), and nothing is kept for the next boot."""
    async def body(modem, clock, at):
        for uri in BAD_URIS:
            assert await at(f'AT#LWM2MSTS=0,999,"{uri}",0') == b"\r\nERROR\r\n", uri
        assert await at("AT+CMEE=1") == OK
        for uri in BAD_URIS:
            assert await at(f'AT#LWM2MSTS=0,999,"{uri}",0') == b"\r\n+CME ERROR: 4\r\n", uri
        assert modem.nvm.get("lwm2m_server_pending") is None
        for uri in GOOD_URIS:
            assert await at(f'AT#LWM2MSTS=0,999,"{uri}",0') == OK, uri
    _in_process(tmp_path, body)


def test_a_bad_uri_left_in_nvm_is_reported_and_ignored_at_boot(tmp_path, caplog):
    """An NVM written by an older version may hold such a URI: the boot reports it and goes on as if no
    server had been set; #LWM2MSET/#LWM2MGET/#LWM2MNEWINST keep working, no traceback."""
    import logging
    caplog.set_level(logging.WARNING)

    async def body(modem, clock, at):
        for uri in BAD_URIS[:4]:
            modem.nvm.set("lwm2m_server_pending", [uri, 0])          # as an older version stored it
            assert await at("AT#REBOOT", 5) == OK
            await clock.advance(30)
            assert (await at("ATE0")).endswith(OK)                     # echo is on again after a boot
            assert await at("AT#LWM2MSET=0,3,0,9,0,57") == OK, uri
            assert await at("AT#LWM2MGET=0,3,0,9,0") == b"\r\n#LWM2MGET: 57\r\n" + OK, uri
            assert await at("AT#LWM2MNEWINST=0,3303,0") in (OK, b"\r\nERROR\r\n"), uri
            assert await at("AT#LWM2MEXIST=0,3,0,9,0") != b"\r\nERROR\r\n", uri
            assert modem.agent.server.uri == "coap://127.0.0.1:5683"
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info], \
            [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
        assert any("is not usable" in r.getMessage() for r in caplog.records)
    _in_process(tmp_path, body)


def test_cli_refuses_an_unusable_lwm2m_server(capsys):
    from emulator.cli import build_parser
    for uri in BAD_URIS[:4]:
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(["--lwm2m-server", uri])
        assert exc.value.code == 2
        assert "not a usable server URI" in capsys.readouterr().err
    assert build_parser().parse_args(["--lwm2m-server", "coap://127.0.0.1:5683"]).lwm2m_server


# ============================================================================================ the seam's hooks
def test_seam_datagram_hooks_drop_change_and_count(tmp_path):
    """The per-direction hooks of emulator/lwm2m/coap.py (where fault scenarios plug in): an incoming
    hook that drops a datagram means no answer; one that passes it on, an answer; the outgoing hook sees
    each answer. A peer that is not a server is ignored before any hook and counted."""
    import asyncio
    import aiocoap
    from aiocoap import resource
    from emulator.clock import RealClock
    from emulator.lwm2m import coap

    class Hello(resource.Resource):
        async def render_get(self, request):
            return aiocoap.Message(payload=b"hello")

    async def go():
        site = resource.Site()
        site.add_resource(["hello"], Hello())
        ctx = await aiocoap.Context.create_server_context(site, bind=coap.bind_address("127.0.0.1"),
                                                          transports=["udp6"])
        seam = coap.Seam(RealClock())
        seam.install(ctx)
        coap.follow_clock(ctx, RealClock())
        port = seam.interfaces[0].transport.get_extra_info("socket").getsockname()[1]
        loop = asyncio.get_running_loop()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        seen_in, seen_out = [], []

        async def ask(mid: int) -> bytes | None:
            peer.sendto(build(CON, GET, mid, b"t", path_opts(["hello"])), ("127.0.0.1", port))
            try:
                return (await asyncio.wait_for(loop.sock_recvfrom(peer, 2048), 1.0))[0]
            except asyncio.TimeoutError:
                return None
        try:
            assert await ask(1) is None and seam.ignored == 1            # not a server: ignored
            seam.allow_server(peer.getsockname())
            seam.incoming = lambda data, p: (seen_in.append(p), None)[1]  # drop everything
            assert await ask(2) is None and seen_in == [peer.getsockname()]
            seam.incoming = lambda data, p: data
            seam.outgoing = lambda data, p: (seen_out.append(data), data)[1]
            answer = await ask(3)
            assert answer is not None and answer.endswith(b"hello") and seen_out == [answer]
        finally:
            peer.close()
            await ctx.shutdown()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(go())
    finally:
        loop.close()


def test_a_late_error_of_a_settled_request_prints_no_traceback(caplog):
    """aiocoap 0.4.17 logs, with a traceback, an error that reaches a request whose response was
    already settled (the agent disabled or timed out while an ICMP error was on its way). The seam
    turns exactly that record into a debug line; other errors still show."""
    import logging

    from emulator.lwm2m import coap
    coap.exclusive_ports()
    caplog.set_level(logging.DEBUG)
    aiolog = logging.getLogger("coap-server")
    aiolog.error("Exception in BlockwiseRequest runner neither went to response nor to observation: %s",
                 "NetworkError", exc_info=OSError("unreachable"))
    aiolog.error("something else")
    shown = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in shown] == ["something else"]
