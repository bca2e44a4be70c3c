"""The one seam around aiocoap's internals: every use of a private aiocoap name lives in this module.

Pinned: **aiocoap 0.4.17** (:data:`AIOCOAP_VERSION`). Each private internal used here, and why:

* ``MessageInterfaceUDP6.datagram_msg_received`` / ``.send`` (transports/udp6.py): the datagram hooks.
  Incoming datagrams pass the *stranger filter* (only the servers the client contacted may send it
  requests), the RFC 7252 format check (:func:`format_error`: 0.4.17 serves token lengths 9-15, payload
  markers without payload, and raises on a non-UTF-8 Uri-Path) and an optional fault hook; outgoing ones
  pass the outgoing fault hook. Hooks: :attr:`Seam.incoming` / :attr:`Seam.outgoing`.
* ``RecvmsgSelectorDatagramTransport.max_size`` (util/asyncio/recvmsg.py, 4096 in 0.4.17): recvmsg(2)
  silently cuts a longer datagram, so a 5,000-byte PUT arrived as 4,096 bytes and was served. Raised to
  :data:`RECEIVE_BUFFER` (more than any UDP payload), so the site sees whole requests and answers 4.13.
* ``MessageManager.loop`` (messagemanager.py): retransmission, EMPTY_ACK_DELAY and dedup timers run on
  ``loop.call_later``; replaced by a loop whose ``call_later`` is the modem clock's (stepped or scaled),
  so CoAP timers follow the modem's time.
* ``MessageManager._schedule_retransmit``: the first ACK timeout is drawn from aiocoap's module-global
  ``random``; a fault scenario draws it from its seed instead (:func:`follow_clock`'s ``rng``).
* ``MessageInterfaceTinyDTLS._connection_for_address`` and each ``DTLSClientConnection``'s ``_write``,
  ``_start`` and datagram protocol: the fault hooks see DTLS records too (:meth:`Seam._hook_dtls`).
* ``MessageManager._deduplicate_message`` / ``_store_response_for_duplicates`` / ``_recent_messages``:
  0.4.17 keeps every received message id for EXCHANGE_LIFETIME (247 s) with one loop timer each (a
  flood of 50,000 requests held ~80 MB). Replaced by a bounded cache (:class:`RecentMessages`).
* ``MessageManager._send_initially`` / ``_remove_exchange`` / ``_retransmit`` / ``_active_exchanges``:
  whether a confirmable notification was acknowledged (#LWM2MNFYACK) is no public API
  (:class:`NotifyTracker`).
* ``interfaces.Resource._block1`` / ``._block2`` (Block1Spool / Block2Cache with unbounded TimeoutDicts
  on the real loop): replaced by bounded ones (:func:`bound_blockwise`).
* ``MessageInterfaceTinyDTLS._pool`` (transports/tinydtls.py): a WeakValueDictionary that drops idle
  DTLS sessions; :func:`hold_dtls_sessions` makes it strong, :func:`drop_dtls_sessions` closes them.
* ``transports.udp6.defaults.has_reuse_port``: 0.4.17 sets SO_REUSEPORT on every socket it binds.
  With port 0 Linux may then hand two such sockets the same ephemeral port and spread the server's
  answers between them (in a fleet a few modems never saw their 2.01), and another process of the
  same user could bind the client's port and read its traffic. :func:`exclusive_ports` turns it off
  for the udp6 transport, so every client socket has a port of its own.
* The ``coap`` / ``coap-server`` loggers: when a request the client already settled (cancelled at a
  disable, a power-off or a timeout) fails later inside aiocoap (e.g. ICMP port unreachable), 0.4.17's
  BlockwiseRequest runner logs the late error with a traceback ("should be unreachable"). That is no
  fault of the module's: :func:`exclusive_ports` also installs :class:`_SettledRequestFilter`, which
  turns exactly that record into a debug line of this module's logger.
* The pipe given to ``render_to_pipe`` and observe numbering (:class:`ObserveFromOne`); declining an
  observation without tripping 0.4.17's cancellation path (:func:`decline_observation`).

Nothing outside this module names ``token_interface``, ``message_interface`` or another ``_private``
aiocoap attribute.
"""
from __future__ import annotations

import asyncio
import collections
import ipaddress
import logging
import socket
import time
import weakref
from dataclasses import dataclass
from typing import Callable, Optional
from urllib.parse import urlsplit

import aiocoap
import aiocoap.meta
from aiocoap import numbers

log = logging.getLogger("emulator.lwm2m.coap")

#: The aiocoap release this seam was written and checked against.
AIOCOAP_VERSION = "0.4.17"
#: recvmsg buffer: larger than any UDP payload (65,507 bytes), so no datagram is ever cut.
RECEIVE_BUFFER = 65536
#: Received message ids remembered per peer for duplicate detection (RFC 7252 4.5).
DEDUP_PER_PEER = 256
#: Peers whose message ids are remembered (the client's servers; strangers never get here).
DEDUP_PEERS = 8
#: Block-wise transfers (Block1 assemblies, Block2 responses) kept at once per resource tree.
BLOCK_TRANSFERS = 4
#: At most one "ignored datagrams from strangers" log line per this many seconds (real time).
STRANGER_LOG_INTERVAL = 10.0

Peer = tuple  # (host, port): host without the IPv4-mapped prefix
#: A datagram hook: (data, peer) -> the datagram to pass on (maybe changed), or None to drop it.
DatagramFilter = Callable[[bytes, Peer], Optional[bytes]]

_STRING_OPTIONS = frozenset({3, 8, 11, 15, 20, 35, 39})      # Uri-Host/-Path/-Query, Location-*, Proxy-*


if aiocoap.meta.version != AIOCOAP_VERSION:          # pragma: no cover - a different install
    log.warning("aiocoap %s installed; the CoAP seam was written for %s", aiocoap.meta.version,
                AIOCOAP_VERSION)


# ---------------------------------------------------------------------------------------------- URIs
class ServerUriError(ValueError):
    """A server URI the client cannot use (the message says why)."""


@dataclass(frozen=True)
class ServerUri:
    """A checked ``coap://`` / ``coaps://`` server URI: scheme, host (no brackets), port (default filled)."""
    scheme: str
    host: str
    port: int

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


_HOSTNAME_LABEL = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")


def parse_server_uri(uri: str) -> ServerUri:
    """Check an LwM2M server URI (RFC 7252 6.1/6.2): ``coap://`` or ``coaps://``, a host (IPv4, a
    bracketed IPv6 literal or a DNS name), an optional port 1..65535, nothing but an optional ``/``
    after it (no user info, query or fragment). Raises :class:`ServerUriError`."""
    if not isinstance(uri, str) or not uri or any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in uri):
        raise ServerUriError("empty, or blanks/control/non-ASCII characters")
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise ServerUriError(str(exc)) from None
    if parts.scheme not in ("coap", "coaps"):
        raise ServerUriError("the scheme is not coap:// or coaps://")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc or \
            uri.endswith(("?", "#")):
        raise ServerUriError("a server URI has no path, query, fragment or user info")
    host = parts.hostname or ""
    netloc_host = parts.netloc.rsplit("]", 1)[0] + "]" if parts.netloc.startswith("[") else \
        parts.netloc.split(":", 1)[0]
    if not host:
        raise ServerUriError("no host")
    if netloc_host.startswith("["):
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ServerUriError("not an IPv6 address in brackets") from None
    else:
        labels = host.split(".")
        if len(host) > 253 or any(not lb or len(lb) > 63 or not set(lb) <= _HOSTNAME_LABEL
                                  or lb[0] == "-" or lb[-1] == "-" for lb in labels):
            raise ServerUriError("not a host name or IPv4 address")
        if all(lb.isdigit() for lb in labels):
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise ServerUriError("not an IPv4 address") from None
    after_host = parts.netloc[len(netloc_host):]
    if after_host and (after_host == ":" or not after_host[1:].isdigit()):
        raise ServerUriError("the port is not a number")
    if port is not None and not 1 <= port <= 65535:
        raise ServerUriError("the port is not within 1..65535")
    if port is None:
        port = 5684 if parts.scheme == "coaps" else 5683
    return ServerUri(parts.scheme, host.lower(), port)


def server_uri_problem(uri: str) -> str | None:
    """Why ``uri`` is not a usable server URI, or None."""
    try:
        parse_server_uri(uri)
    except ServerUriError as exc:
        return str(exc)
    return None


# ---------------------------------------------------------------------------------------------- datagrams
def format_error(data: bytes) -> str | None:
    """Why a datagram is not a valid CoAP message (RFC 7252 section 3), or None. aiocoap 0.4.17 serves
    token lengths 9-15 (echoing the token: its answer is invalid too), payload markers without payload
    and empty messages with content, and raises out of its datagram callback on a non-UTF-8 Uri-Path."""
    if len(data) < 4 or data[0] >> 6 != 1:
        return "not CoAP version 1"
    tkl = data[0] & 0x0F
    if tkl > 8:
        return "token length 9-15"
    if data[1] == 0 and len(data) > 4:
        return "empty message with content"
    pos, number = 4 + tkl, 0
    while pos < len(data):
        b = data[pos]
        pos += 1
        if b == 0xFF:
            return None if pos < len(data) else "payload marker without payload"
        nibbles = []
        for n in (b >> 4, b & 0x0F):
            if n == 13:
                n, pos = (data[pos] + 13 if pos < len(data) else -1), pos + 1
            elif n == 14:
                n, pos = (int.from_bytes(data[pos:pos + 2], "big") + 269 if pos + 2 <= len(data) else -1), pos + 2
            elif n == 15:
                n = -1
            nibbles.append(n)
        if -1 in nibbles or pos + nibbles[1] > len(data):
            return "bad option header"
        number += nibbles[0]
        if number in _STRING_OPTIONS:
            try:
                data[pos:pos + nibbles[1]].decode("utf-8")
            except UnicodeDecodeError:
                return "string option not UTF-8"
        pos += nibbles[1]
    return None


def _peer(sockaddr) -> Peer:
    host = sockaddr[0]
    if host.startswith("::ffff:") and "." in host:
        host = host[7:]
    return (host, int(sockaddr[1]))


def _plain_render_names(ctx: aiocoap.Context) -> None:
    """aiocoap 0.4.17's Context.render_to_pipe runs each request in a new task named
    "Rendering for %r" % request: the name alone (the repr of the message and its remote: address
    parsing, interface names) cost more than serving a Read, and the task a loop iteration. The same
    method, stepping the rendering at once: a request answered without waiting (a Read, a Write) is
    done before this returns; one that waits goes on in a task from where it waits."""
    if getattr(ctx, "_emu_plain_render", False):
        return
    from aiocoap.pipe import error_to_message

    def render_to_pipe(pipe, ctx=ctx):
        pipe = error_to_message(pipe, ctx.log)
        coro = ctx._render_to_pipe(pipe)
        try:
            waits_on = coro.send(None)
        except StopIteration:
            return
        except Exception as exc:          # what aiocoap's run_driving_pipe does with a failure
            pipe.add_exception(exc)
            return
        task = asyncio.ensure_future(_go_on(coro, waits_on, pipe))
        pipe.on_interest_end(task.cancel)
    ctx.render_to_pipe = render_to_pipe
    ctx._emu_plain_render = True


async def _go_on(coro, waits_on, pipe) -> None:
    """Drive a coroutine first stepped outside any task, from the future it yielded (``waits_on``;
    None for a bare yield), as a Task would: wait for it, then step again; a cancellation of this task
    is thrown into the coroutine. Exceptions end on the pipe, as in aiocoap's run_driving_pipe."""
    while True:
        throw = None
        try:
            if waits_on is None:
                await asyncio.sleep(0)
            else:
                waits_on._asyncio_future_blocking = False
                try:
                    await waits_on
                except asyncio.CancelledError:
                    raise
                except BaseException:     # the coroutine sees it itself when it takes the result
                    pass
        except asyncio.CancelledError as exc:
            throw = exc
        try:
            waits_on = coro.send(None) if throw is None else coro.throw(throw)
        except StopIteration:
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            pipe.add_exception(exc)
            return


def _is_answer(data: bytes) -> bool:
    """A response (2.xx-5.xx) or an empty ACK/RST: what a peer we sent a request to may send back."""
    if len(data) < 2:
        return False
    cls = data[1] >> 5
    return cls in (2, 4, 5) or (data[1] == 0 and (data[0] >> 4) & 3 in (2, 3))


class Seam:
    """The datagram layer of one client context: who may talk to the client, and the fault hooks.

    ``servers``: peers (host, port) allowed to send requests (the servers the client registered with
    or the bootstrap server it contacted). ``contacted``: peers the client sent to; they may send back
    answers (responses, ACK, RST) only, e.g. a FOTA file server. Everything else is ignored without an
    answer and counted in :attr:`ignored`. :attr:`incoming` and :attr:`outgoing` are optional
    :data:`DatagramFilter` hooks (for network faults); :meth:`inject` delivers a datagram later (a
    delayed or duplicated one) as if it had just arrived."""

    def __init__(self, clock=None):
        self.clock = clock
        self.servers: set[Peer] = set()
        self.contacted: set[Peer] = set()
        self.incoming: DatagramFilter | None = None
        self.outgoing: DatagramFilter | None = None
        self.ignored = 0
        self.malformed = 0
        self._logged_at = -1e9
        self._logged_count = 0
        self._receivers: list[Callable[[bytes, object], None]] = []
        self.interfaces: list = []
        self._addresses: dict[Peer, object] = {}      # peer -> the socket address aiocoap uses for it
        self._ancdata: dict[Peer, list] = {}          # peer -> ancillary data of its last datagram (pktinfo)
        self._dtls_in: dict[Peer, Callable[[bytes], None]] = {}     # peer -> feed a record to its session
        self._dtls_out: dict[Peer, Callable[[bytes], None]] = {}    # peer -> send a record, no hooks
        #: an optional random.Random for the first retransmission timeout (RFC 7252 4.2's random
        #: factor): a fault scenario seeds it so that two runs retransmit at the same module times
        self.rng = None

    # ------------------------------------------------------------------ policy
    def allow_server(self, peer: Peer) -> None:
        self.servers.add((peer[0], int(peer[1])))

    def _accept(self, data: bytes, peer: Peer) -> bool:
        if peer in self.servers or (peer in self.contacted and _is_answer(data)):
            return True
        self.ignored += 1
        now = time.monotonic()
        if now - self._logged_at >= STRANGER_LOG_INTERVAL:
            log.warning("ignored %d datagram(s) from peers that are not this client's servers (last from "
                        "%s:%d)", self.ignored - self._logged_count, peer[0], peer[1])
            self._logged_at, self._logged_count = now, self.ignored
        return False

    # ------------------------------------------------------------------ hooks
    def install(self, ctx: aiocoap.Context) -> None:
        """Hook every UDP message interface of ``ctx`` (see the module docstring)."""
        _plain_render_names(ctx)
        for mman in message_managers(ctx):
            mi = getattr(mman, "message_interface", None)
            if mi is None or getattr(mi, "_emu_seam", None) is not None:
                continue
            transport = getattr(mi, "transport", None)
            if transport is not None and hasattr(transport, "max_size"):
                transport.max_size = RECEIVE_BUFFER
            if hasattr(mi, "datagram_msg_received"):
                self._hook_udp(mi)
            elif hasattr(mi, "_connection_for_address"):
                self._hook_dtls(mi)
            mi._emu_seam = self
            self.interfaces.append(mi)

    def _hook_udp(self, mi) -> None:
        received, send = mi.datagram_msg_received, mi.send
        seam = self

        def datagram_msg_received(data, ancdata, flags, address):
            peer = _peer(address)
            if not seam._accept(data, peer):
                return
            seam._addresses[peer] = address
            seam._ancdata[peer] = ancdata
            if seam.incoming is not None:
                data = seam.incoming(data, peer)
                if data is None:
                    return
            if format_error(data) is not None:
                seam.malformed += 1
                return
            received(data, ancdata, flags, address)

        def send_(message):
            peer = _peer(message.remote.sockaddr)
            seam.contacted.add(peer)
            seam._addresses[peer] = message.remote.sockaddr
            if seam.outgoing is None:
                return send(message)
            encoded = message.encode()
            data = seam.outgoing(encoded, peer)
            if data is encoded:                # passed unchanged: aiocoap's own send (it also notes
                return send(message)           # the remote for ICMP errors that come back at once)
            if data is not None:
                ancdata = []
                if message.remote.pktinfo is not None:
                    ancdata.append((socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, message.remote.pktinfo))
                try:
                    mi.transport.sendmsg(data, ancdata, 0, message.remote.sockaddr)
                except Exception:
                    log.exception("sendmsg to %s failed", peer)

        mi.datagram_msg_received = datagram_msg_received
        mi.send = send_
        self._receivers.append(received)

    def inject(self, data: bytes, sockaddr) -> None:
        """Deliver ``data`` as a datagram from ``sockaddr`` (a socket address, or a peer (host, port) this
        seam has talked to), past the hooks: a fault scenario's delayed or duplicated datagram. The
        stranger filter and the format check still apply. A DTLS record goes to its session."""
        peer = _peer(sockaddr)
        sockaddr = self._addresses.get(peer, sockaddr)
        if not self._accept(data, peer):
            return
        dtls = self._dtls_in.get(peer) if data[:1] and 20 <= data[0] <= 23 else None
        if dtls is not None:
            dtls(data)
            return
        if not self._receivers or format_error(data) is not None:
            return
        self._receivers[0](data, self._ancdata.get(peer, []), 0, sockaddr)

    def transmit(self, data: bytes, peer: Peer) -> None:
        """Send ``data`` to ``peer`` now, past the hooks (a fault scenario's delayed datagram)."""
        dtls = self._dtls_out.get(peer)
        if dtls is not None and data[:1] and 20 <= data[0] <= 23:
            dtls(data)
            return
        address = self._addresses.get(peer)
        for mi in self.interfaces:
            transport = getattr(mi, "transport", None)
            if address is not None and transport is not None and hasattr(transport, "sendmsg"):
                try:
                    transport.sendmsg(data, [], 0, address)
                except OSError as exc:
                    log.debug("late datagram to %s not sent: %s", peer, exc)
                return

    # ------------------------------------------------------------------ DTLS (tinydtls transport)

    def _hook_dtls(self, mi) -> None:
        """aiocoap 0.4.17's tinydtls transport: each DTLSClientConnection writes its records with
        ``_write`` (through an accessor that looks the method up at call time) and feeds received ones
        to ``_dtls_socket.handleMessage`` from its datagram protocol. Both are wrapped per connection, so
        the fault hooks see DTLS records (handshake and application data) to and from the server."""
        create = mi._connection_for_address
        seam = self

        def _connection_for_address(host, port, pskId, psk):
            conn = create(host, port, pskId, psk)
            if getattr(conn, "_emu_hooked", False):
                return conn
            conn._emu_hooked = True
            peer = (host[7:] if host.startswith("::ffff:") else host, int(port))
            seam.contacted.add(peer)
            write = conn._write

            def raw_write(data):
                try:
                    conn._transport.sendto(data)
                except Exception:
                    pass

            def raw_read(data):
                sock = getattr(conn, "_dtls_socket", None)
                if sock is not None and getattr(conn, "_connection", None) is not None:
                    sock.handleMessage(conn._connection, data)

            def _write(recipient, data):
                if seam.outgoing is not None:
                    passed = seam.outgoing(bytes(data), peer)
                    if passed is None:
                        return len(data)
                    data = passed
                return write(recipient, data)

            start = conn._start

            async def _start():
                task = asyncio.ensure_future(start())
                for _ in range(200):              # until the datagram endpoint exists
                    if getattr(conn, "_transport", None) is not None:
                        break
                    await asyncio.sleep(0)
                proto = getattr(conn._transport, "_protocol", None)
                if proto is not None and hasattr(proto, "datagram_received"):
                    received = proto.datagram_received

                    def datagram_received(data, addr):
                        if seam.incoming is not None:
                            data = seam.incoming(data, peer)
                            if data is None:
                                return
                        received(data, addr)
                    proto.datagram_received = datagram_received
                return await task

            conn._write = _write
            seam._dtls_in[peer], seam._dtls_out[peer] = raw_read, raw_write
            if hasattr(conn, "_startup") and not conn._startup.done():
                conn._startup.cancel()
                conn._startup = asyncio.ensure_future(_start())
            return conn

        mi._connection_for_address = _connection_for_address


def message_managers(ctx: aiocoap.Context) -> list:
    """The context's MessageManagers (aiocoap 0.4.17: Context.request_interfaces -> TokenManager
    .token_interface -> MessageManager .message_interface -> transport)."""
    out = []
    for ri in getattr(ctx, "request_interfaces", ()):
        mman = getattr(ri, "token_interface", None)
        if mman is not None and hasattr(mman, "message_interface"):
            out.append(mman)
    return out


# ---------------------------------------------------------------------------------------------- timers
class _ClockLoop:
    """What a MessageManager needs of its loop, with call_later on the modem clock."""

    def __init__(self, clock, loop):
        self._clock = clock
        self._loop = loop

    def call_later(self, delay, callback, *args):
        return self._clock.call_later(delay, (lambda: callback(*args)) if args else callback)

    def __getattr__(self, name):
        return getattr(self._loop, name)


class RecentMessages:
    """Received (peer, message id) -> stored response, bounded: at most :data:`DEDUP_PER_PEER` ids per
    peer and :data:`DEDUP_PEERS` peers, each id forgotten after EXCHANGE_LIFETIME of clock time."""

    def __init__(self, clock, lifetime: float):
        self.clock = clock
        self.lifetime = lifetime
        self.peers: "collections.OrderedDict[object, collections.OrderedDict]" = collections.OrderedDict()

    def _table(self, remote, create: bool):
        table = self.peers.get(remote)
        if table is None and create:
            while len(self.peers) >= DEDUP_PEERS:
                self.peers.popitem(last=False)
            table = self.peers[remote] = collections.OrderedDict()
        return table

    def get(self, remote, mid):
        """(True, stored response or None) for a recent message, else (False, None)."""
        table = self._table(remote, False)
        if table is None or mid not in table:
            return False, None
        expires, response = table[mid]
        if expires < self.clock.now():
            del table[mid]
            return False, None
        return True, response

    def add(self, remote, mid) -> None:
        table = self._table(remote, True)
        now = self.clock.now()
        while table and (len(table) >= DEDUP_PER_PEER or next(iter(table.values()))[0] < now):
            table.popitem(last=False)
        table[mid] = (now + self.lifetime, None)

    def store(self, remote, mid, response) -> None:
        table = self._table(remote, False)
        if table is not None and mid in table:
            table[mid] = (table[mid][0], response)

    def __len__(self) -> int:
        return sum(len(t) for t in self.peers.values())


def _seed_first_timeout(mman, rng) -> None:
    """``MessageManager._schedule_retransmit(message, timeout, counter)``: the first ACK timeout (RFC 7252
    4.2: ACK_TIMEOUT .. ACK_TIMEOUT * ACK_RANDOM_FACTOR) comes from ``rng`` instead of aiocoap's
    module-global random; later ones double it, as aiocoap does."""
    schedule = mman._schedule_retransmit

    def _schedule_retransmit(message, timeout, retransmission_counter):
        if retransmission_counter == 0:
            t = message.transport_tuning
            timeout = rng.uniform(t.ACK_TIMEOUT, t.ACK_TIMEOUT * t.ACK_RANDOM_FACTOR)
        return schedule(message, timeout, retransmission_counter)
    mman._schedule_retransmit = _schedule_retransmit


def follow_clock(ctx: aiocoap.Context, clock, rng=None) -> None:
    """Make the context's CoAP timers (retransmissions, empty-ACK delay, duplicate detection) run on
    ``clock`` and bound its duplicate-detection cache. ``rng`` (a random.Random): the first
    retransmission timeout is drawn from it (deterministic runs)."""
    from aiocoap.numbers.types import CON
    for mman in message_managers(ctx):
        if getattr(mman, "_emu_clock", None) is not None:
            continue
        mman._emu_clock = clock
        mman.loop = _ClockLoop(clock, mman.loop)
        if rng is not None and hasattr(mman, "_schedule_retransmit"):
            _seed_first_timeout(mman, rng)
        recent = RecentMessages(clock, numbers.TransportTuning().EXCHANGE_LIFETIME)
        mman._recent_messages = recent

        def _deduplicate_message(message, mman=mman, recent=recent):
            seen, response = recent.get(message.remote, message.mid)
            if not seen:
                recent.add(message.remote, message.mid)
                return False
            if message.mtype is CON and response is not None:
                mman._send_initially(response)
            return True

        def _store_response_for_duplicates(message, recent=recent):
            recent.store(message.remote, message.mid, message)

        mman._deduplicate_message = _deduplicate_message
        mman._store_response_for_duplicates = _store_response_for_duplicates


_TUNINGS: dict = {}


def tuning(reliable: bool | None = None) -> numbers.TransportTuning:
    """RFC 7252 default transmission parameters (timers run on the modem clock, see
    :func:`follow_clock`); ``reliable`` True/False forces CON/NON for a notification. One read-only
    instance per ``reliable`` value, shared (a class per call cost every modem and request ~1 KB)."""
    got = _TUNINGS.get(reliable)
    if got is None:
        class Tuning(numbers.TransportTuning):
            reliability = reliable
        got = _TUNINGS[reliable] = Tuning()
    return got


# ---------------------------------------------------------------------------------------------- block-wise
class _BoundedTimeoutDict:
    """A dict of at most :data:`BLOCK_TRANSFERS` entries (the oldest goes first), each forgotten after
    ``timeout`` seconds of clock time (what Block1Spool / Block2Cache need of their TimeoutDict)."""

    def __init__(self, clock, timeout: float):
        self.clock = clock
        self.timeout = timeout
        self._items: "collections.OrderedDict" = collections.OrderedDict()

    def _expire(self) -> None:
        now = self.clock.now()
        for k in [k for k, (t, _) in self._items.items() if t < now]:
            del self._items[k]

    def __getitem__(self, key):
        self._expire()
        _, value = self._items[key]
        self._items[key] = (self.clock.now() + self.timeout, value)
        self._items.move_to_end(key)
        return value

    def __setitem__(self, key, value):
        self._expire()
        self._items.pop(key, None)
        while len(self._items) >= BLOCK_TRANSFERS:
            self._items.popitem(last=False)
        self._items[key] = (self.clock.now() + self.timeout, value)

    def __len__(self) -> int:
        return len(self._items)


def bound_blockwise(resource, clock) -> None:
    """Give an aiocoap Resource a Block1 spool and Block2 cache bounded in count and in clock time."""
    from aiocoap.blockwise import Block1Spool, Block2Cache
    wait = numbers.TransportTuning().MAX_TRANSMIT_WAIT
    spool, cache = Block1Spool.__new__(Block1Spool), Block2Cache.__new__(Block2Cache)
    spool._assemblies = _BoundedTimeoutDict(clock, wait)
    cache._completes = _BoundedTimeoutDict(clock, wait)
    resource._block1, resource._block2 = spool, cache


def block1_of(request):
    """The request's Block1 option as (block number, more, size exponent, start offset), or None."""
    b = request.opt.block1
    return None if b is None else (b.block_number, b.more, b.size_exponent, b.start)


# ---------------------------------------------------------------------------------------------- observe
class ObserveFromOne:
    """Observe numbers go out one higher: the first answer carries 1, not 0. Legal for any server,
    and node-coap (under lwm2m-node-lib 1.4.0) drops a first answer numbered 0. Wraps the pipe
    aiocoap 0.4.17 hands to ``render_to_pipe``."""

    def __init__(self, pipe):
        self._pipe = pipe

    def __getattr__(self, name):
        return getattr(self._pipe, name)

    def add_response(self, response, is_last=False):
        if response.opt.observe is not None:
            response.opt.observe = (response.opt.observe + 1) % (1 << 24)
        self._pipe.add_response(response, is_last=is_last)


def decline_observation(serverobservation) -> None:
    """Decline an Observe (the request is answered without the option). aiocoap 0.4.17 calls the
    cancellation callback of a declined observation too (AttributeError, then a TypeError in its own
    logging): decline by accepting with a no-op callback and deregistering at once."""
    serverobservation.accept(lambda: None)
    serverobservation.deregister()


class NotifyTracker:
    """Sees, in aiocoap's message layer, whether a confirmable notification was acknowledged.

    aiocoap 0.4.17 keeps outstanding CON exchanges in its MessageManager: we wrap the three
    places an exchange starts and ends (sent, ACK/RST received, retransmissions exhausted).
    ``on_result(path, "ACK" | "NACK")`` is called once per tracked notification.
    """

    def __init__(self, on_result):
        self.on_result = on_result
        self.pending: dict[tuple, tuple] = {}

    def install(self, ctx: aiocoap.Context) -> None:
        for mman in message_managers(ctx):
            if not hasattr(mman, "_send_initially") or getattr(mman, "_lwm2m_hooked", False):
                continue
            mman._lwm2m_hooked = True
            self._wrap(mman)

    def _wrap(self, mman) -> None:
        send, remove, retransmit = mman._send_initially, mman._remove_exchange, mman._retransmit
        pending = self.pending
        con = numbers.types.CON
        ack = numbers.types.ACK

        def _send_initially(message, messageerror_monitor=None):
            send(message, messageerror_monitor)
            req = getattr(message, "request", None)
            if message.mtype is con and message.code.is_response() and message.opt.observe is not None \
                    and req is not None:
                pending[(message.remote, message.mid)] = tuple(req.opt.uri_path)
                while len(pending) > 64:                # never more than NSTART allows in flight
                    pending.pop(next(iter(pending)))

        def _remove_exchange(message):
            key = (message.remote, message.mid)
            remove(message)
            path = pending.pop(key, None)
            if path is not None:
                self.on_result(path, "ACK" if message.mtype is ack else "NACK")

        def _retransmit(message, timeout, counter):
            key = (message.remote, message.mid)
            retransmit(message, timeout, counter)
            if key in pending and key not in mman._active_exchanges:
                self.on_result(pending.pop(key), "NACK")

        mman._send_initially = _send_initially
        mman._remove_exchange = _remove_exchange
        mman._retransmit = _retransmit


# ---------------------------------------------------------------------------------------------- DTLS
def dtls_interfaces(ctx: aiocoap.Context) -> list:
    """The context's tinydtls message interfaces (MessageInterfaceTinyDTLS)."""
    from aiocoap.transports.tinydtls import MessageInterfaceTinyDTLS
    return [m.message_interface for m in message_managers(ctx)
            if isinstance(m.message_interface, MessageInterfaceTinyDTLS)]


def hold_dtls_sessions(ctx: aiocoap.Context) -> None:
    """Make the tinydtls pool hold its sessions strongly.

    aiocoap 0.4.17 keeps them in ``MessageInterfaceTinyDTLS._pool``, a WeakValueDictionary; a session
    removes itself from it when it fails or shuts down, and the context's shutdown closes what is left, so
    a plain dict only changes *when* an idle session goes: never while the context lives.
    """
    for mi in dtls_interfaces(ctx):
        pool = getattr(mi, "_pool", None)
        if isinstance(pool, weakref.WeakValueDictionary):
            mi._pool = dict(pool.items())
        elif not isinstance(pool, dict):
            log.warning("aiocoap's tinydtls pool changed (%s): DTLS sessions may close when idle", type(pool))


def drop_dtls_sessions(ctx: aiocoap.Context | None) -> int:
    """Close the context's DTLS sessions (also half-open handshakes). Returns how many closed."""
    if ctx is None:
        return 0
    closed = 0
    for mi in dtls_interfaces(ctx):
        for conn in list(getattr(mi, "_pool", {}).values()):
            try:
                conn.shutdown()
            except Exception:
                log.debug("closing a DTLS session failed", exc_info=True)
            closed += 1
    return closed


# ---------------------------------------------------------------------------------------------- sockets
async def resolve(server: ServerUri) -> tuple[Peer, str]:
    """The server's address (host, port) and the local address that routes to it (a connected UDP
    socket's getsockname: 127.0.0.1 for a loopback server)."""
    loop = asyncio.get_running_loop()
    try:                                  # an IP literal needs no resolver thread (a stepped clock
        ip = ipaddress.ip_address(server.host)     # could move on while one runs)
        infos = [(socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM, 0, "",
                  (server.host, server.port))]
    except ValueError:
        infos = await loop.getaddrinfo(server.host, server.port, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"{server.host} does not resolve")
    family, _, _, _, sockaddr = infos[0]
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.connect(sockaddr)
        local = s.getsockname()[0]
    return _peer(sockaddr), local


def exclusive_ports() -> None:
    """Make aiocoap's udp6 transport bind without SO_REUSEPORT, and quiet its log of late errors of
    requests already settled (see the module docstring). Idempotent."""
    from aiocoap.transports import udp6
    if udp6.defaults.has_reuse_port is not _no_reuse_port:
        udp6.defaults.has_reuse_port = _no_reuse_port
    for name in ("coap", "coap-server"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _SettledRequestFilter) for f in logger.filters):
            logger.addFilter(_SettledRequestFilter())


class _SettledRequestFilter(logging.Filter):
    """Drops aiocoap 0.4.17's traceback for an error of a request whose response was already settled."""

    MARK = "neither went to response nor to observation"

    def filter(self, record: logging.LogRecord) -> bool:
        if self.MARK in str(record.msg):
            log.debug("late error of a settled CoAP request: %s", record.args)
            return False
        return True


def _no_reuse_port(*_args, **_kw) -> bool:
    return False


def bind_address(local: str) -> tuple[str, int]:
    """The ``bind`` for an aiocoap udp6 context on the local address ``local`` (any free port)."""
    return (f"::ffff:{local}" if ":" not in local else local, 0)
