"""Write-behind for the audit log and known orders, shared by the stores.

Records are appended in memory on the request path and written in batches by one background
task: every ``interval`` seconds, or at once when a batch fills up (``wake``), so no request
ever waits for a commit.  A failed write keeps the batch for the next round (the store's
``flush`` puts it back); ``stop`` leaves the final flush to the store's ``close``.

``stop`` does not rely on cancellation alone: a cancellation that lands as an await inside
the flush completes can be swallowed on Python 3.11 (``asyncio.wait_for`` returns the inner
result then, and redis-py sends with it), and the flusher ran on while the store's ``close``
waited for it forever.  The loop also checks a stop flag after each step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from .base import StoreUnavailable

BATCH = 512  # records that wake the flusher before its interval is up
INTERVAL_S = 0.1


class Flusher:
    def __init__(
        self, flush: Callable[[], Awaitable[None]], *, interval: float = INTERVAL_S
    ) -> None:
        self._flush = flush
        self._interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def wake(self) -> None:
        self._wake.set()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller is being cancelled too: not ours to swallow

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):  # asyncio.timeout: see the module's text
                async with asyncio.timeout(self._interval):
                    await self._wake.wait()
            if self._stopping:
                return
            self._wake.clear()
            with contextlib.suppress(StoreUnavailable):
                await self._flush()
