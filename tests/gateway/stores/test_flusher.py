"""The write-behind flusher both stores use: it flushes on its interval or when woken, and it
stops when told, even when the stop lands just as a wake-up does."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from gateway.stores.flusher import Flusher


async def test_a_wake_up_flushes_before_the_interval() -> None:
    flushed = asyncio.Event()

    async def flush() -> None:
        flushed.set()

    flusher = Flusher(flush, interval=60)
    flusher.start()
    try:
        flusher.wake()
        async with asyncio.timeout(1):
            await flushed.wait()
    finally:
        await flusher.stop()


@pytest.mark.parametrize("turns", range(4))
async def test_a_stop_that_lands_with_a_wake_up_still_stops(turns: int) -> None:
    # Python 3.11's asyncio.wait_for returns the inner result when a cancellation arrives as
    # the inner wait completes, swallowing the cancellation: the flusher then ran on and its
    # store's close waited for it forever (seen as a hung test teardown).
    flushes = 0

    async def flush() -> None:
        nonlocal flushes
        flushes += 1

    flusher = Flusher(flush, interval=0.01)
    flusher.start()
    await asyncio.sleep(0)  # the flusher is waiting
    flusher.wake()
    for _ in range(turns):
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async with asyncio.timeout(1):
        await flusher.stop()

    assert loop.time() - started < 0.5
    stopped_at = flushes
    await asyncio.sleep(0.05)
    assert flushes == stopped_at  # nothing runs on after stop


async def test_a_stop_whose_caller_is_cancelled_is_cancelled_too() -> None:
    started = asyncio.Event()

    async def slow_flush() -> None:
        started.set()
        await asyncio.sleep(10)

    flusher = Flusher(slow_flush, interval=60)
    flusher.start()
    flusher.wake()
    await started.wait()
    stopping = asyncio.create_task(flusher.stop())
    await asyncio.sleep(0)
    stopping.cancel()

    with pytest.raises(asyncio.CancelledError):
        await stopping


async def test_a_flush_that_swallows_the_cancellation_still_lets_it_stop() -> None:
    # what redis-py's sends under asyncio.wait_for can do on Python 3.11
    started = asyncio.Event()
    flushes = 0

    async def swallowing_flush() -> None:
        nonlocal flushes
        flushes += 1
        started.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(10)

    flusher = Flusher(swallowing_flush, interval=0.01)
    flusher.start()
    flusher.wake()
    await started.wait()

    async with asyncio.timeout(1):
        await flusher.stop()

    assert flushes == 1
