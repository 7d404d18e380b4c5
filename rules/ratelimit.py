"""Orders per second per account, over any rolling window (SPEC §7).

The SEBI retail algo framework caps an account at 10 orders per second before an algo needs
exchange registration; brokers enforce it per rolling second, not per clock second, so 10
orders at t=0.990 and 10 more at t=1.010 are 20 within 20 ms and the second ten are refused.

- At most ``limit`` admissions per key in any window of length ``window``: an admission at
  ``t`` counts while ``now - t < window``.
- Place, modify and cancel all count; refused attempts are not recorded.
- A refusal says how long until the oldest counted admission leaves the window
  (``Retry-After``).
- Memory is bounded: a key (an account) keeps at most ``limit`` timestamps.

``now`` is a monotonic reading in seconds supplied by the caller.  This is the in-process
limiter; the Redis store runs the same algorithm atomically in Lua across instances.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SlidingWindowLimiter"]

_MIN_WAIT = 1e-6


class SlidingWindowLimiter:
    def __init__(self, limit: int, window: float = 1.0) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, not {limit}")
        if not window > 0:
            raise ValueError(f"window must be positive, not {window}")
        self.limit = limit
        self.window = window
        self._hits: dict[str, deque[float]] = {}

    def __len__(self) -> int:
        """Keys currently tracked."""
        return len(self._hits)

    def _wait(self, hits: deque[float] | None, now: float) -> float | None:
        """Seconds until an admission fits, or None if one fits now; drops expired hits."""
        if hits is None:
            return None
        while hits and now - hits[0] >= self.window:
            hits.popleft()
        if len(hits) < self.limit:
            return None
        # Float rounding must not turn "wait a moment" into "wait 0 s" (Retry-After: 0).
        return max(hits[0] + self.window - now, _MIN_WAIT)

    def try_acquire(self, key: str, now: float) -> float | None:
        """None: admitted and recorded; else the seconds (> 0) until a slot frees."""
        hits = self._hits.get(key)
        wait = self._wait(hits, now)
        if wait is not None:
            return wait
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.limit)
        hits.append(now)
        return None
