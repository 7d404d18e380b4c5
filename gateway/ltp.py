"""Last traded prices (SPEC §10): pushed by a feed, or fetched from the upstream's quote API.

Each instrument's price is kept with the monotonic time it was seen.  A MARKET order needs a
price no older than ``rules.ltp_max_age_s``; when the cached one is older the upstream is asked,
with at most one request in flight per instrument (concurrent orders wait for the same answer).
A failed fetch leaves the order without a price, which refuses it: never a guess.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

from cachetools import LRUCache

from rules.types import Instrument

Fetch = Callable[[Instrument], Awaitable[Decimal | None]]


class LtpBook:
    def __init__(
        self, monotonic: Callable[[], float], *, max_age: float, size: int = 50_000
    ) -> None:
        self._monotonic = monotonic
        self._max_age = max_age
        self._prices: LRUCache[str, tuple[Decimal, float]] = LRUCache(size)
        self._inflight: dict[str, asyncio.Future[Decimal | None]] = {}

    def push(self, key: str, price: Decimal) -> None:
        self._prices[key] = (price, self._monotonic())

    def get(self, key: str) -> tuple[Decimal, float] | None:
        """(price, age in seconds) of the last price seen, however old."""
        entry = self._prices.get(key)
        if entry is None:
            return None
        return entry[0], self._monotonic() - entry[1]

    def cached(self, key: str) -> tuple[Decimal, float] | None:
        """The price and its age when it is fresh enough to use without asking anyone."""
        seen = self.get(key)
        return seen if seen is not None and seen[1] <= self._max_age else None

    async def fresh(self, instrument: Instrument, fetch: Fetch) -> tuple[Decimal, float] | None:
        """A price no older than max_age, fetching once if needed; else the last one seen."""
        seen = self.cached(instrument.key)
        if seen is not None:
            return seen
        pending = self._inflight.get(instrument.key)
        if pending is not None:
            await asyncio.shield(pending)
            return self.get(instrument.key)
        pending = asyncio.get_running_loop().create_future()
        self._inflight[instrument.key] = pending
        price: Decimal | None = None
        try:
            price = await fetch(instrument)
        except Exception:  # a failed quote means "no price", which refuses the order
            price = None
        finally:
            del self._inflight[instrument.key]
            if price is not None:
                self.push(instrument.key, price)
            pending.set_result(price)
        return self.get(instrument.key)
