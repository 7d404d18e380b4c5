"""The rate window (the Admission role), SPEC §7: the in-process limiter, failing closed."""

from __future__ import annotations

from rules.ratelimit import SlidingWindowLimiter

from ..base import Snapshot, StoreUnavailable
from .core import SQLiteCore


class SQLiteAdmission(SQLiteCore):
    async def admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> float | None:
        # The caches could answer alone, but an order whose audit record and known-order
        # entry cannot be written must not go upstream: fail closed (SPEC §12).
        if self._db is None or not self._healthy:
            raise StoreUnavailable("the sqlite store is not answering")
        limiter = self._limiters.get((limit, window))
        if limiter is None:
            limiter = self._limiters[(limit, window)] = SlidingWindowLimiter(limit, window)
        return limiter.try_acquire(snapshot.account.user_id, now, count)

    async def peek_admit(
        self, snapshot: Snapshot, *, now: float, limit: int, window: float = 1.0, count: int = 1
    ) -> tuple[int, float | None]:
        if self._db is None or not self._healthy:
            raise StoreUnavailable("the sqlite store is not answering")
        limiter = self._limiters.get((limit, window)) or SlidingWindowLimiter(limit, window)
        return limiter.peek(snapshot.account.user_id, now, count)
