"""DTLS with pre-shared keys (coaps://) for the LwM2M client, on aiocoap 0.4.17's tinydtls transport.

Use::

    ctx = await make_context(site, "coaps://127.0.0.1:5684", identity, key)
    resp = await ctx.request(aiocoap.Message(code=POST, uri="coaps://127.0.0.1:5684/rd?ep=...")).response

The context registers over coaps and serves the server's requests (Read, Write, ...) from ``site`` over
the same DTLS session. It is an ordinary server context with the transports ``udp6`` and ``tinydtls``, so
the same context still reaches coap:// peers (a NoSec bootstrap server, say).

Facts this module relies on (checked against Leshan 2.0.0-M4, see tests/test_dtls.py):

* **DTLSSocket must be 0.1.19.** DTLSSocket 0.2.x bundles a tinydtls that *insists* on the extended master
  secret (RFC 7627) and renegotiation_info extensions: when the ServerHello lacks them it sends a fatal
  handshake_failure alert and the request then hangs. Leshan 2.0.0-M4 runs Californium/Scandium 2.6.3, which
  implements neither, and its demo server has no option to add them. The tinydtls inside DTLSSocket 0.1.19
  does not ask for them, and Leshan 2.0.0-M4 accepts it (TLS_PSK_WITH_AES_128_CCM_8).
* **tinydtls limits**: a PSK of at most 16 bytes (``DTLS_PSK_MAX_KEY_LEN``) and an identity of at most 32
  bytes (``DTLS_PSK_MAX_CLIENT_IDENTITY_LEN``). DTLSSocket copies the key into tinydtls' 16-byte buffer
  without checking its length (a longer key overflows it), so longer ones are refused here with
  :class:`DtlsError`. A longer identity makes the handshake fail and hang. (The module's
  ``#LWM2MINJKEYS`` accepts up to 64 characters for both.)
* **Sessions must be held.** aiocoap keeps its DTLS sessions in a weak dictionary: once no message refers to
  the session any more, it is closed, and the server's next request to the client goes nowhere (Leshan
  answers its REST read with 504). :func:`make_context` therefore makes the context hold its sessions until
  they fail or the context shuts down.
* **A wrong key does not fail, it hangs**: Scandium drops the client's Finished silently, so no alert
  arrives. The request ends only by the caller's timeout or when CoAP gives up retransmitting
  (``ConRetransmitsExceeded``, about 62-93 s with the default timing). The half-open session stays in the
  context and every later request to that server would wait on it: call :func:`drop_sessions` after a
  failed exchange (or close the context) so that the next attempt starts a fresh handshake.
* **Logs**: aiocoap logs the PSK identity (not the key) at INFO when it opens a session. tinydtls writes its
  own log with printf, WARN and above to *stdout* (the emulator's stdout carries its ``port:`` line) and at
  DEBUG it hex-dumps the PSK. :func:`make_context` lowers the tinydtls level to CRIT (stderr only, never the
  key). Nothing here logs the key or puts it in an exception message.
"""
from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import aiocoap

from . import coap

log = logging.getLogger("emulator.lwm2m.dtls")

#: Longest PSK tinydtls can use (bytes).
KEY_MAX_BYTES = 16
#: Longest PSK identity tinydtls can send (bytes).
IDENTITY_MAX_BYTES = 32
#: The DTLSSocket release known to work with Leshan 2.0.0-M4 (see the module docstring).
DTLSSOCKET_VERSION = "0.1.19"
COAPS_PORT = 5684

_HEX = frozenset("0123456789abcdefABCDEF")


class DtlsError(ValueError):
    """DTLS cannot be set up: DTLSSocket missing, not a coaps:// URI, or an identity/key tinydtls can't use."""


# ---------------------------------------------------------------------------------------------- keys
def psk_bytes(key: str | bytes) -> bytes:
    """The PSK bytes of a ``#LWM2MINJKEYS`` secret key.

    The guide only calls it a "secret key" (a string of up to 64 characters). Public host code writes it
    as hex (``AT#LWM2MINJKEYS=0,1,"<ep>","<psk id>","<psk key in hex>"``), the LwM2M Security object's
    Secret Key (/0/x/5) is opaque and LwM2M servers such as Leshan take PSKs in hex; 64 characters are
    then 32 bytes. So: surrounding blanks are ignored; a non-empty, even-length string of hex digits is
    decoded as hex; anything else is taken as its UTF-8 bytes. (A key such as ``"1234"`` is therefore
    the two bytes 12 34, not four ASCII digits.) ``bytes`` are returned unchanged.
    """
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    k = key.strip()
    if k and len(k) % 2 == 0 and all(c in _HEX for c in k):
        return bytes.fromhex(k)
    return k.encode("utf-8")


def identity_bytes(identity: str | bytes) -> bytes:
    """The PSK identity as sent in the handshake: the string's UTF-8 bytes (``bytes`` unchanged)."""
    if isinstance(identity, (bytes, bytearray, memoryview)):
        return bytes(identity)
    return identity.encode("utf-8")


def check_psk(identity: bytes, key: bytes) -> None:
    """:class:`DtlsError` unless tinydtls can use this identity and key (never quotes the key)."""
    if not identity:
        raise DtlsError("DTLS-PSK needs an identity")
    if len(identity) > IDENTITY_MAX_BYTES:
        raise DtlsError(f"PSK identity is {len(identity)} bytes; tinydtls sends at most {IDENTITY_MAX_BYTES}")
    if not key:
        raise DtlsError("DTLS-PSK needs a key")
    if len(key) > KEY_MAX_BYTES:
        raise DtlsError(f"PSK key is {len(key)} bytes; tinydtls handles at most {KEY_MAX_BYTES}")


# ---------------------------------------------------------------------------------------------- URIs
def _hostinfo(host: str, port: int | None) -> str:
    host = host.lower()
    if ":" in host:
        host = f"[{host}]"
    return host if port is None else f"{host}:{port}"


def uri_patterns(server_uri: str) -> list[str]:
    """Credential-map keys that match every request to ``server_uri``'s host and port (and no other port).

    aiocoap matches ``Message.get_request_uri()`` (lower-case host, the port as given) against the keys,
    so both ``coaps://h:5684/...`` and ``coaps://h/...`` are listed for the default port.
    """
    parts = urlsplit(server_uri)
    if parts.scheme != "coaps" or not parts.hostname:
        raise DtlsError(f"not a coaps:// server URI: {server_uri!r}")
    port = parts.port
    infos = [_hostinfo(parts.hostname, port)]
    if port in (None, COAPS_PORT):
        infos = [_hostinfo(parts.hostname, None), _hostinfo(parts.hostname, COAPS_PORT)]
    out = []
    for info in infos:
        base = urlunsplit(("coaps", info, "", "", ""))
        out += [base, base + "/*"]
    return out


def credentials(server_uri: str, identity: str | bytes, key: str | bytes) -> dict:
    """The ``client_credentials.load_from_dict`` mapping for one server (checked with :func:`check_psk`)."""
    ident, psk = identity_bytes(identity), psk_bytes(key)
    check_psk(ident, psk)
    entry = {"dtls": {"psk": psk, "client-identity": ident}}
    return {pattern: entry for pattern in uri_patterns(server_uri)}


# ---------------------------------------------------------------------------------------------- tinydtls
def available() -> bool:
    """True when aiocoap's tinydtls transport can be loaded (the ``dtls`` extra is installed)."""
    try:
        import DTLSSocket.dtls  # noqa: F401
        import aiocoap.transports.tinydtls  # noqa: F401
    except ImportError:
        return False
    return True


def dtlssocket_version() -> str | None:
    try:
        from importlib.metadata import version
        return version("DTLSSocket")
    except Exception:
        return None


def _require() -> None:
    if not available():
        raise DtlsError("coaps:// needs DTLSSocket (pip install -e '.[dtls]'; tools/setup.sh installs it)")
    ver = dtlssocket_version()
    if ver and not ver.startswith("0.1."):
        log.warning("DTLSSocket %s insists on the extended master secret, which Leshan 2.0.0-M4 lacks; "
                    "DTLSSocket==%s is known to work", ver, DTLSSOCKET_VERSION)


def quiet_tinydtls() -> None:
    """Keep tinydtls' own printf log off stdout and away from the PSK: level CRIT at most."""
    from DTLSSocket import dtls
    try:
        if dtls.dtlsGetLogLevel() > dtls.DTLS_LOG_CRIT:
            dtls.setLogLevel(dtls.DTLS_LOG_CRIT)
    except AttributeError:                       # an older DTLSSocket without the getter
        dtls.setLogLevel(dtls.DTLS_LOG_CRIT)


def _dtls_interfaces(ctx: aiocoap.Context) -> list:
    """The context's tinydtls message interfaces (aiocoap internals: see emulator/lwm2m/coap.py)."""
    return coap.dtls_interfaces(ctx)


def _hold_sessions(ctx: aiocoap.Context) -> None:
    """Make the context hold its DTLS sessions (see the module docstring and coap.hold_dtls_sessions)."""
    coap.hold_dtls_sessions(ctx)


def drop_sessions(ctx: aiocoap.Context | None) -> int:
    """Close the context's DTLS sessions (also half-open handshakes), so that the next coaps request starts
    a fresh handshake. Requests still waiting on them end by their own timeout. Returns how many closed."""
    return coap.drop_dtls_sessions(ctx)


# ---------------------------------------------------------------------------------------------- context
def set_psk(ctx: aiocoap.Context, server_uri: str, identity: str | bytes, key: str | bytes) -> None:
    """Load the PSK for ``server_uri`` into ``ctx.client_credentials`` (replacing an earlier one)."""
    ctx.client_credentials.load_from_dict(credentials(server_uri, identity, key))


async def make_context(site, server_uri: str, identity: str | bytes, key: str | bytes, *,
                       ctx: aiocoap.Context | None = None, bind=("::", 0)) -> aiocoap.Context:
    """A context that reaches ``server_uri`` (coaps://) with DTLS-PSK and serves ``site`` on that session.

    ``identity`` and ``key`` are ``#LWM2MINJKEYS`` strings (the key maps to bytes by :func:`psk_bytes`) or
    bytes. Without ``ctx`` it creates ``Context.create_server_context(site, bind=bind,
    transports=["udp6", "tinydtls"])``; with ``ctx`` (which must have been created with the ``tinydtls``
    transport) it adds the credentials to it and gives it ``site`` if it has none. Raises
    :class:`DtlsError` (a ValueError) for a missing DTLSSocket, a non-coaps URI or an identity/key that
    tinydtls cannot use; the key is never part of a message or a log.
    """
    creds = credentials(server_uri, identity, key)      # validate before opening sockets
    _require()
    quiet_tinydtls()
    if ctx is None:
        ctx = await aiocoap.Context.create_server_context(site, bind=bind, transports=["udp6", "tinydtls"])
    else:
        if not _dtls_interfaces(ctx):
            raise DtlsError("the context has no tinydtls transport: create it with transports "
                            "[..., \"tinydtls\"]")
        if ctx.serversite is None and site is not None:
            ctx.serversite = site
    ctx.client_credentials.load_from_dict(creds)
    _hold_sessions(ctx)
    return ctx

