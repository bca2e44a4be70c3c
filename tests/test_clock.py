"""The modem clock's wait_for behaves like asyncio.wait_for on module time."""
import asyncio

from emulator.clock import ManualClock


def test_cancelling_wait_for_cancels_the_awaited_work():
    async def go():
        clock = ManualClock()
        inner_cancelled = asyncio.Event()

        async def work():
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                inner_cancelled.set()
                raise
        outer = asyncio.ensure_future(clock.wait_for(work(), 60))
        await clock.advance(1)
        outer.cancel()
        await clock.advance(1)
        assert outer.cancelled() and inner_cancelled.is_set()
        # and a timeout on module time cancels it too, with no real waiting
        inner_cancelled.clear()
        waiting = asyncio.ensure_future(clock.wait_for(work(), 30))
        await clock.advance(31)
        assert isinstance(waiting.exception(), asyncio.TimeoutError) and inner_cancelled.is_set()
    asyncio.new_event_loop().run_until_complete(go())
