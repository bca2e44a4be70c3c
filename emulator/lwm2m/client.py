"""The CoAP side of the agent: one aiocoap context that registers with the server and serves its
requests from the site, on one UDP socket. Timeouts run on the modem clock."""
from __future__ import annotations

import asyncio
import logging
import aiocoap
from aiocoap import numbers

from . import coap
from . import formats as fmt
from .coap import ServerUriError, format_error, parse_server_uri  # noqa: F401  (re-exported)
from .dtls import psk_bytes as psk_key_bytes  # noqa: F401  (#LWM2MINJKEYS secret key -> PSK bytes)

log = logging.getLogger("emulator.lwm2m.client")
C = numbers.codes.Code

# CoAP MAX_TRANSMIT_WAIT (RFC 7252): how long one confirmable request may take
EXCHANGE_TIMEOUT = 93.0


class ClientError(Exception):
    pass


def default_port(uri: str) -> str:
    """coap://host -> coap://host:5683 (coaps: 5684); raises ServerUriError for a URI the client
    cannot use."""
    return parse_server_uri(uri).uri


class CoapClient:
    """One aiocoap context per server session, bound to the local address that routes to the server.

    Only the server it was opened for (:meth:`open`) may send it requests; answers from peers it sent
    requests to (a FOTA file server) are taken too; every other datagram is ignored (:class:`coap.Seam`).
    CoAP timers run on ``clock``."""

    def __init__(self, clock, site, psk: tuple[bytes, bytes] | None = None, tracker=None, link=None):
        self.clock = clock
        self.site = site
        self.psk = psk
        self.tracker = tracker
        self.tuning = coap.tuning()
        self.ctx: aiocoap.Context | None = None
        self.seam = coap.Seam(clock)
        self.link = link
        if link is not None:                 # the module's data path (emulator/modem/link.py): faults, trace
            link.attach(self.seam)
        self.location: tuple[str, ...] | None = None
        self.server: str | None = None

    async def open(self, server: str | None = None) -> None:
        """Open the context for ``server`` (a server URI: coap[s]://host[:port]); raises ClientError."""
        if self.ctx is not None:
            return
        if server is None:
            raise ClientError("no server to open the CoAP context for")
        try:
            srv = parse_server_uri(server)
            peer, local = await coap.resolve(srv)
        except (ServerUriError, OSError) as exc:
            raise ClientError(f"server {server!r}: {exc}") from None
        bind = coap.bind_address(local)
        self.seam.allow_server(peer)
        coap.exclusive_ports()                  # for the udp6 socket under DTLS too
        if srv.scheme == "coaps" and self.psk is not None:
            from . import dtls
            try:
                self.ctx = await dtls.make_context(self.site, srv.uri, *self.psk, bind=bind)
            except dtls.DtlsError as exc:
                raise ClientError(f"DTLS: {exc}") from None
        else:
            try:
                self.ctx = await aiocoap.Context.create_server_context(self.site, bind=bind, transports=["udp6"])
            except OSError as exc:
                raise ClientError(f"cannot bind {bind}: {exc}") from None
        self.seam.install(self.ctx)
        coap.follow_clock(self.ctx, self.clock, rng=self.seam.rng)
        if self.tracker is not None:
            self.tracker.install(self.ctx)

    async def close(self) -> None:
        ctx, self.ctx = self.ctx, None
        if self.link is not None:
            self.link.detach(self.seam)      # the data path forgets this client's session
        if ctx is not None:
            try:
                await ctx.shutdown()
            except Exception:
                log.debug("shutdown failed", exc_info=True)

    async def request(self, code, uri: str, payload: bytes = b"", cf: int | None = None,
                      timeout: float = EXCHANGE_TIMEOUT) -> aiocoap.Message:
        await self.open(self.server or uri)
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
            coap.drop_dtls_sessions(self.ctx)

    # ------------------------------------------------------------------ registration interface
    async def register(self, server: str, ep: str, lifetime: int, links: str, binding: str = "U") -> None:
        server = default_port(server)
        await self.open(server)
        self.server = server
        uri = f"{server}/rd?ep={ep}&lt={lifetime}&lwm2m=1.0&b={binding}"
        resp = await self.request(C.POST, uri, links.encode(), fmt.LINK)
        if resp.code != C.CREATED:
            raise ClientError(f"register answered {resp.code}")
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
        await self.open(server)
        self.server = server
        resp = await self.request(C.POST, f"{server}/bs?ep={ep}")
        if resp.code != C.CHANGED:
            raise ClientError(f"bootstrap request answered {resp.code}")
