"""Unit tests of the observation timing rules (pmin, pmax, gt, lt, st) on the stepped clock.

The site and the aiocoap server observation are replaced by small stand-ins here: this tests one
module (emulator/lwm2m/observe.py); the real path is covered against Leshan in the ETS tests.
"""
import asyncio

from emulator.clock import ManualClock
from emulator.lwm2m.models import ModelRegistry
from emulator.lwm2m.observe import Observation
from emulator.lwm2m.store import Store


class ServObs:
    def __init__(self):
        self.sent = []

    def trigger(self, response=None):
        self.sent.append(response)


class Agent:
    def __init__(self, clock):
        self.clock = clock

    def notify_due(self, obs):
        obs.send()


class Site:
    def __init__(self, clock):
        self.agent = Agent(clock)
        self.store = Store(ModelRegistry.builtin())
        self.store.create_instance(3303, 0, {5700: 20.0})
        self.store.create_instance(1, 0, {0: 1, 1: 300})
        self.attributes = {}

    def _read_node(self, path):
        return self.store.get(*path)

    def notification(self, obs):
        return ("notify", self._read_node(obs.path))


def setup(attrs):
    clock = ManualClock()
    site = Site(clock)
    site.attributes[(3303, 0, 5700)] = attrs
    so = ServObs()
    obs = Observation(site, (3303, 0, 5700), so, request=None)
    return clock, site, so, obs


def change(site, obs, value):
    site.store.set(3303, 0, 5700, value)
    obs.changed()


def run(coro):
    asyncio.new_event_loop().run_until_complete(coro)


def test_pmin_spaces_notifications():
    async def go():
        clock, site, so, obs = setup({"pmin": "10"})
        await clock.advance(1)
        change(site, obs, 21.0)               # within pmin of the observe: waits
        assert so.sent == []
        await clock.advance(8.9)
        assert so.sent == []
        await clock.advance(0.2)
        assert so.sent == [("notify", 21.0)]
        change(site, obs, 22.0)
        change(site, obs, 23.0)               # coalesced: one notification with the latest value
        await clock.advance(10)
        assert so.sent[1:] == [("notify", 23.0)]
    run(go())


def test_pmax_notifies_without_change():
    async def go():
        clock, site, so, obs = setup({"pmax": "30"})
        await clock.advance(29.9)
        assert so.sent == []
        await clock.advance(0.2)
        assert so.sent == [("notify", 20.0)]
        await clock.advance(30)
        assert len(so.sent) == 2
    run(go())


def test_gt_lt_crossings_and_step():
    async def go():
        clock, site, so, obs = setup({"gt": "25", "lt": "10"})
        change(site, obs, 24.0)               # no crossing
        change(site, obs, 26.0)               # crosses gt
        change(site, obs, 27.0)               # stays above: nothing
        change(site, obs, 9.0)                # crosses gt down and lt down
        await clock.advance(0)
        assert so.sent == [("notify", 26.0), ("notify", 9.0)]
        clock2, site2, so2, obs2 = setup({"st": "2"})
        change(site2, obs2, 21.0)             # step 1 < 2
        change(site2, obs2, 22.5)             # 2.5 from the last notified value (20)
        await clock2.advance(0)
        assert so2.sent == [("notify", 22.5)]
    run(go())


def test_default_periods_come_from_the_server_object():
    async def go():
        clock, site, so, obs = setup({})
        site.store.set(1, 0, 3, 50)           # /1/0/3 default maximum period
        obs._arm()
        await clock.advance(50.1)
        assert len(so.sent) == 1
    run(go())


def test_cancel_stops_everything():
    async def go():
        clock, site, so, obs = setup({"pmax": "5"})
        obs.cancel()
        change(site, obs, 30.0)
        await clock.advance(60)
        assert so.sent == []
    run(go())


def test_ack_mode_starts_periodic_notifications_a_guard_time_early():
    async def go():
        clock, site, so, obs = setup({"pmax": "30"})
        site.agent.notify_lead = lambda: 5.0          # ACK mode, <guardRequestTime> 5 s
        obs._arm()
        await clock.advance(24.9)
        assert so.sent == []
        await clock.advance(0.2)
        assert len(so.sent) == 1
    run(go())
