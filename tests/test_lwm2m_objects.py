"""Object behaviour lives in one class per object (emulator/lwm2m/objects/), registered by object id;
the access rules come from those classes, in one place (issue 10, item 3 of "the shape to reach")."""
from __future__ import annotations

import asyncio
import sys

from emulator.clock import ManualClock
from emulator.lwm2m import objects
from emulator.lwm2m.objects.base import REGISTRY, LwM2MObject
from emulator.modem.core import Modem
from emulator.port import MemoryPort


def test_objects_with_behaviour_are_registered_by_id_each_with_its_docstring():
    assert {0, 1, 2, 3, 4, 5, 6, 11, 33211} <= set(REGISTRY)
    for oid, cls in REGISTRY.items():
        assert issubclass(cls, LwM2MObject) and cls.oid == oid
        assert cls.__doc__ or sys.modules[cls.__module__].__doc__, cls


def test_access_rules_in_one_place():
    # the host's #LWM2MR/W/E: not Security, Server, Access Control, Firmware Update
    assert [o for o in (0, 1, 2, 3, 4, 5, 6, 26251) if not objects.host_may(o)] == [0, 1, 2, 5]
    # a DM server: no operation on /0 (4.01), no Create of /0 /1 /2 /3 /5, no Delete of /0 /1 /3
    assert [o for o in (0, 1, 3, 4, 26251) if not objects.server_may(o, False)] == [0]
    assert [o for o in (0, 1, 2, 3, 4, 5, 6, 26251) if not objects.server_may_create(o, False)] == [0, 1, 2, 3, 5]
    assert [o for o in (0, 1, 2, 3, 4, 5, 26251) if not objects.server_may_delete(o, False)] == [0, 1, 3]
    # the bootstrap server may do anything during bootstrap
    assert all(objects.server_may(o, True) and objects.server_may_create(o, True) for o in (0, 1, 2, 3, 5))


def test_each_modem_gets_its_own_object_instances(tmp_path):
    async def go():
        clock = ManualClock()
        modems = [Modem(MemoryPort(), tmp_path / str(n), clock=clock, ephemeral=True) for n in range(2)]
        for m in modems:
            m.start()
        a, b = (m.agent.objects for m in modems)
        assert set(a) == set(REGISTRY) and all(a[o] is not b[o] and a[o].agent is modems[0].agent for o in a)
        # the Device object's rules hold through the agent: a UTC offset that is not whole quarters
        dev = a[3]
        assert dev.clock_write(14, "+01:10") is False and dev.clock_write(14, "+02:00") is True
        assert modems[0].agent.store.get(3, 0, 14) == "+02:00" and modems[1].agent.store.get(3, 0, 14) == "+00:00"
        for m in modems:
            m.close()
    asyncio.run(go())
