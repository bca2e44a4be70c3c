"""Our decoders against bytes Leshan really sends: a bare CoAP device records Leshan's writes."""
import asyncio
import uuid

import aiocoap
import pytest
from aiocoap import resource

from emulator.lwm2m import formats as fmt
from emulator.lwm2m.models import ModelRegistry

pytestmark = pytest.mark.leshan


class Recorder(resource.Resource):
    def __init__(self):
        super().__init__()
        self.got = []

    async def render(self, request):
        self.got.append((request.code, tuple(request.opt.uri_path), request.opt.content_format, request.payload))
        return aiocoap.Message(code=aiocoap.CHANGED)


class Catchall(resource.Site):
    def __init__(self, rec):
        super().__init__()
        self.rec = rec

    async def render_to_pipe(self, pipe):
        pipe.add_response(await self.rec.render(pipe.request), is_last=True)


def test_decoders_read_what_leshan_writes(leshan):
    models = ModelRegistry.builtin()
    device = models.get(3)
    types = lambda rid: device.resources[rid].type if rid in device.resources else None   # noqa: E731
    ep = f"cap-{uuid.uuid4().hex[:8]}"
    rec = Recorder()

    async def go():
        ctx = await aiocoap.Context.create_server_context(Catchall(rec), bind=("127.0.0.1", 0),
                                                          transports=["udp6"])
        try:
            reg = aiocoap.Message(code=aiocoap.POST, uri=f"{leshan.coap_uri}/rd?ep={ep}&lt=60&lwm2m=1.0&b=U",
                                  payload=b"</3/0>", content_format=40)
            resp = await ctx.request(reg).response
            assert resp.code == aiocoap.CREATED
            await asyncio.to_thread(leshan.wait_client, ep, 30)
            for f in ("TLV", "JSON"):
                r = await asyncio.to_thread(leshan.write, ep, "3/0", {14: "+05:30", 15: "Asia/Kolkata"},
                                            None, format=f, replace=False)
                assert r["success"], r
            r = await asyncio.to_thread(leshan.write, ep, "3/0/13", 1700000000, "time", format="TLV")
            assert r["success"], r
            r = await asyncio.to_thread(leshan.write, ep, "3/0/15", "Europe/Paris", "string", format="TEXT")
            assert r["success"], r
        finally:
            await ctx.shutdown()

    asyncio.run(go())
    writes = [g for g in rec.got if g[0] in (aiocoap.PUT, aiocoap.POST)]
    assert len(writes) == 4, rec.got
    (_, p1, cf1, tlv), (_, p2, cf2, js), (_, p3, cf3, t13), (_, p4, cf4, txt) = writes
    assert fmt.normalize(cf1) == fmt.TLV and fmt.normalize(cf2) == fmt.JSON
    assert fmt.decode(cf1, (3, 0), tlv, types) == {14: "+05:30", 15: "Asia/Kolkata"}
    assert fmt.decode(cf2, (3, 0), js, types) == {14: "+05:30", 15: "Asia/Kolkata"}
    value = fmt.decode(cf3, (3, 0, 13), t13, types)
    assert value == 1700000000
    assert fmt.decode(cf4, (3, 0, 15), txt, types) == "Europe/Paris"
