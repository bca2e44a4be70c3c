"""A minimal LwM2M server for tests that need what Leshan's REST API cannot send or hold back.

It plays the registered server with plain aiocoap on one UDP socket bound to 127.0.0.1: it answers
Register with 2.01 and Location ``rd/x``, Update with 2.04 and De-register with 2.02, records each of
them, and sends its own requests (Read, Write, Observe ...) from that same socket to the address and
port the client registered from, as a real server does. ``hold("register")`` / ``hold("update")``
keep the next answer back until ``release()``: the client's request is then in flight for as long as
the test wants.

The aiocoap context runs in a thread of its own, so test code stays synchronous (the AT host blocks).
Used as a context manager::

    with RawServer() as srv:
        ... --lwm2m-server srv.uri ...
        reg = srv.wait_register()
        code, payload, opts = srv.request("GET", "/3/0/0")
"""
from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import aiocoap
import aiocoap.resource as resource
from aiocoap import numbers

C = numbers.codes.Code
_CODES = {"GET": C.GET, "PUT": C.PUT, "POST": C.POST, "DELETE": C.DELETE}


@dataclass
class Received:
    """One registration-interface request the server got: kind is register / update / deregister."""
    kind: str
    query: tuple[str, ...]
    payload: bytes
    remote: Any = field(repr=False, default=None)
    at: float = 0.0

    @property
    def params(self) -> dict[str, str]:
        return dict(q.partition("=")[::2] for q in self.query)


class _Rd(resource.Resource):
    def __init__(self, srv: "RawServer", kind: str):
        super().__init__()
        self.srv, self.kind = srv, kind

    async def render_post(self, request):
        kind = self.kind if self.kind == "register" else "update"
        await self.srv._received(kind, request)
        if kind == "register":
            return aiocoap.Message(code=C.CREATED, location_path=("rd", "x"))
        return aiocoap.Message(code=C.CHANGED)

    async def render_delete(self, request):
        await self.srv._received("deregister", request)
        return aiocoap.Message(code=C.DELETED)


class RawServer:
    def __init__(self, host: str = "127.0.0.1", port: int | None = None):
        from .leshan import free_port
        self.host = host
        self.port = port or free_port("udp", host)
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._holds: dict[str, asyncio.Event] = {}
        self.loop = asyncio.new_event_loop()
        self.ctx: aiocoap.Context | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="raw-lwm2m-server", daemon=True)

    @property
    def uri(self) -> str:
        return f"coap://{self.host}:{self.port}"

    # -- life cycle ------------------------------------------------------------------------------
    def start(self) -> "RawServer":
        self._thread.start()
        site = resource.Site()
        site.add_resource(["rd"], _Rd(self, "register"))
        site.add_resource(["rd", "x"], _Rd(self, "location"))
        self.ctx = self._run(aiocoap.Context.create_server_context(site, bind=(self.host, self.port)))
        return self

    def stop(self) -> None:
        if self.ctx is not None:
            try:
                self._run(self.ctx.shutdown(), timeout=5)
            except Exception:
                pass
            self.ctx = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> "RawServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    # -- the registration interface --------------------------------------------------------------
    def hold(self, kind: str) -> None:
        """Keep the answer to the next ``kind`` ("register" or "update") back until release()."""
        async def make():
            self._holds[kind] = asyncio.Event()
        self._run(make())

    def release(self, kind: str) -> None:
        async def go():
            ev = self._holds.pop(kind, None)
            if ev is not None:
                ev.set()
        self._run(go())

    async def _received(self, kind: str, request) -> None:
        rec = Received(kind, tuple(request.opt.uri_query), bytes(request.payload), request.remote, time.monotonic())
        with self._cond:
            self.received.append(rec)
            self._cond.notify_all()
        ev = self._holds.get(kind)
        if ev is not None:
            await ev.wait()

    def wait(self, kind: str, count: int = 1, timeout: float = 30.0, predicate=None) -> Received:
        """The count-th request of that kind (1 = the first), waiting for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                seen = [r for r in self.received if r.kind == kind and (predicate is None or predicate(r))]
                if len(seen) >= count:
                    return seen[count - 1]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {kind} #{count} within {timeout}s: {self.received}")
                self._cond.wait(left)

    def wait_register(self, timeout: float = 30.0) -> Received:
        return self.wait("register", timeout=timeout)

    def of_kind(self, kind: str) -> list[Received]:
        with self._cond:
            return [r for r in self.received if r.kind == kind]

    @property
    def client(self):
        regs = self.of_kind("register")
        if not regs:
            raise RuntimeError("nobody registered")
        return regs[-1].remote

    # -- requests to the client ------------------------------------------------------------------
    def _message(self, method: str, path: str, payload: bytes, cf, accept, query, observe):
        msg = aiocoap.Message(code=_CODES[method], payload=payload)
        msg.opt.uri_path = tuple(p for p in path.strip("/").split("/") if p)
        if query:
            msg.opt.uri_query = tuple(query)
        if cf is not None:
            msg.opt.content_format = cf
        if accept is not None:
            msg.opt.accept = accept
        if observe is not None:
            msg.opt.observe = observe
        msg.remote = self.client
        return msg

    def request(self, method: str, path: str, payload: bytes = b"", *, cf: int | None = None,
                accept: int | None = None, query: tuple[str, ...] = (), timeout: float = 10.0):
        """Send one request from the registered socket; returns (code as "2.05", payload, response)."""
        async def go():
            req = self.ctx.request(self._message(method, path, payload, cf, accept, query, None))
            return await asyncio.wait_for(req.response, timeout)
        resp = self._run(go(), timeout + 5)
        return _dotted(resp.code), bytes(resp.payload), resp

    def observe(self, path: str, *, accept: int | None = None) -> "Observation":
        """Start an observation; its first answer and every notification land in .answers."""
        obs = Observation(self)

        async def go():
            req = self.ctx.request(self._message("GET", path, b"", None, accept, (), 0))
            obs._request = req
            first = await asyncio.wait_for(req.response, 10)
            obs._add(first)

            async def follow():
                try:
                    async for note in req.observation:
                        obs._add(note)
                except Exception as exc:            # the observation ended (e.g. a 4.04 notification)
                    obs._end(exc)
                else:
                    obs._end(None)
            if req.observation is not None:
                asyncio.ensure_future(follow())
        self._run(go(), 20)
        return obs


class Observation:
    def __init__(self, srv: RawServer):
        self.srv = srv
        self.answers: list[tuple[str, bytes, Any]] = []
        self.ended: Any = False
        self._request = None

    def _add(self, msg) -> None:
        with self.srv._cond:
            self.answers.append((_dotted(msg.code), bytes(msg.payload), msg))
            self.srv._cond.notify_all()

    def _end(self, exc) -> None:
        with self.srv._cond:
            self.ended = exc if exc is not None else True
            self.srv._cond.notify_all()

    def wait(self, count: int, timeout: float = 30.0) -> tuple[str, bytes, Any]:
        """The count-th answer (1 = the answer to the Observe itself)."""
        deadline = time.monotonic() + timeout
        with self.srv._cond:
            while len(self.answers) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {len(self.answers)} answers within {timeout}s: {self.answers}")
                self.srv._cond.wait(left)
            return self.answers[count - 1]


def _dotted(code) -> str:
    return f"{int(code) >> 5}.{int(code) & 0x1F:02d}"
