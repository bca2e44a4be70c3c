"""The CoAP side of the agent: one aiocoap context that registers with the server and serves its
requests from the site, on one UDP socket. Timeouts run on the modem clock."""
from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlsplit

import aiocoap
from aiocoap import numbers

from . import formats as fmt
from .dtls import psk_bytes as psk_key_bytes  # noqa: F401  (#LWM2MINJKEYS secret key -> PSK bytes)

log = logging.getLogger("emulator.lwm2m.client")
C = numbers.codes.Code

# CoAP MAX_TRANSMIT_WAIT (RFC 7252): how long one confirmable request may take
EXCHANGE_TIMEOUT = 93.0


_STRING_OPTIONS = frozenset({3, 8, 11, 15, 20, 35, 39})      # Uri-Host/-Path/-Query, Location-*, Proxy-*


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


def strict_datagrams(ctx) -> None:
    """Drop malformed datagrams before aiocoap parses them (silently: RFC 7252 4.2/4.3 allow it)."""
    for ri in ctx.request_interfaces:
        proto = getattr(getattr(ri, "token_interface", None), "message_interface", None)
        received = getattr(proto, "datagram_msg_received", None)
        if received is None:
            continue

        def filtered(data, ancdata, flags, address, _received=received):
            if format_error(data) is None:
                _received(data, ancdata, flags, address)
        proto.datagram_msg_received = filtered


def _no_shared_ports() -> None:
    """aiocoap 0.4.17 (pinned) sets SO_REUSEPORT on every UDP socket it binds. With port 0, Linux may
    then hand two such sockets the same ephemeral port and spread the server's answers between them:
    in a fleet a few modems never see their 2.01, and any process of the same user could bind the
    client's port and read its traffic. The client binds without SO_REUSEPORT."""
    from aiocoap import defaults
    from aiocoap.transports import udp6
    if getattr(udp6.defaults, "has_reuse_port", None) is not _never:
        udp6.defaults.has_reuse_port = _never


def _never(*_args, **_kw) -> bool:
    return False


class ClientError(Exception):
    pass


def scaled_tuning(clock, reliable: bool | None = None) -> aiocoap.numbers.TransportTuning:
    """CoAP retransmission timing that follows the modem clock's time scale."""
    scale = float(getattr(clock, "scale", 1.0) or 1.0)

    class Tuning(aiocoap.numbers.TransportTuning):
        ACK_TIMEOUT = 2.0 / scale
        reliability = reliable
    return Tuning()


def default_port(uri: str) -> str:
    """coap://host -> coap://host:5683 (coaps: 5684)."""
    parts = urlsplit(uri)
    if parts.port is None and parts.hostname:
        port = 5684 if parts.scheme == "coaps" else 5683
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return f"{parts.scheme}://{host}:{port}"
    return uri.rstrip("/")


class CoapClient:
    def __init__(self, clock, site, psk: tuple[bytes, bytes] | None = None, tracker=None):
        self.clock = clock
        self.site = site
        self.psk = psk
        self.tracker = tracker
        self.tuning = scaled_tuning(clock)
        self.ctx: aiocoap.Context | None = None
        self.location: tuple[str, ...] | None = None
        self.server: str | None = None

    async def open(self, uri: str | None = None) -> None:
        if self.ctx is None:
            if self.psk is not None and uri is not None and uri.startswith("coaps://"):
                from . import dtls
                try:
                    self.ctx = await dtls.make_context(self.site, uri, *self.psk)
                except dtls.DtlsError as exc:
                    raise ClientError(f"DTLS: {exc}") from None
            else:
                _no_shared_ports()
                self.ctx = await aiocoap.Context.create_server_context(self.site, bind=("::", 0),
                                                                       transports=["udp6"])
                strict_datagrams(self.ctx)
            if self.tracker is not None:
                self.tracker.install(self.ctx)

    async def close(self) -> None:
        ctx, self.ctx = self.ctx, None
        if ctx is not None:
            try:
                await ctx.shutdown()
            except Exception:
                log.debug("shutdown failed", exc_info=True)

    async def request(self, code, uri: str, payload: bytes = b"", cf: int | None = None,
                      timeout: float = EXCHANGE_TIMEOUT) -> aiocoap.Message:
        await self.open(uri)
        msg = aiocoap.Message(code=code, uri=uri, payload=payload, transport_tuning=self.tuning)
        if cf is not None:
            msg.opt.content_format = cf
        req = self.ctx.request(msg)
        # a request abandoned (timeout, reboot) may still fail later inside aiocoap: consume that
        req.response.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await self.clock.wait_for(req.response, timeout)
        except asyncio.TimeoutError:
            self._drop_dtls()
            raise ClientError("timeout") from None
        except aiocoap.error.Error as exc:
            self._drop_dtls()
            raise ClientError(str(exc) or type(exc).__name__) from None

    def _drop_dtls(self) -> None:
        """A failed exchange over DTLS (a wrong key hangs the handshake): the next attempt starts afresh."""
        if self.psk is not None and self.ctx is not None:
            from . import dtls
            dtls.drop_sessions(self.ctx)

    # ------------------------------------------------------------------ registration interface
    async def register(self, server: str, ep: str, lifetime: int, links: str, binding: str = "U") -> None:
        server = default_port(server)
        uri = f"{server}/rd?ep={ep}&lt={lifetime}&lwm2m=1.0&b={binding}"
        resp = await self.request(C.POST, uri, links.encode(), fmt.LINK)
        if resp.code != C.CREATED:
            raise ClientError(f"register answered {resp.code}")
        self.server = server
        self.location = tuple(resp.opt.location_path)
        log.info("registered at %s/%s", server, "/".join(self.location))

    async def update(self, lifetime: int | None = None, links: str | None = None,
                     binding: str | None = None) -> None:
        """Update (LwM2M 1.0.2 5.3.2): lt and b only when they changed, links when the list did."""
        if not self.location:
            raise ClientError("not registered")
        uri = f"{self.server}/{'/'.join(self.location)}"
        query = ([f"lt={lifetime}"] if lifetime is not None else []) + ([f"b={binding}"] if binding else [])
        if query:
            uri += "?" + "&".join(query)
        resp = await self.request(C.POST, uri, links.encode() if links else b"", fmt.LINK if links else None)
        if resp.code != C.CHANGED:
            raise ClientError(f"update answered {resp.code}")

    async def deregister(self, timeout: float = EXCHANGE_TIMEOUT) -> None:
        if not self.location:
            return
        uri = f"{self.server}/{'/'.join(self.location)}"
        self.location = None
        resp = await self.request(C.DELETE, uri, timeout=timeout)
        if resp.code != C.DELETED:
            raise ClientError(f"deregister answered {resp.code}")

    async def bootstrap_request(self, server: str, ep: str) -> None:
        server = default_port(server)
        resp = await self.request(C.POST, f"{server}/bs?ep={ep}")
        if resp.code != C.CHANGED:
            raise ClientError(f"bootstrap request answered {resp.code}")
