"""Orders per second per account, over any rolling window (SPEC §7).

The SEBI retail algo framework caps an account at 10 orders per second before an algo needs
exchange registration; brokers enforce it per rolling second, not per clock second, so 10
orders at t=0.990 and 10 more at t=1.010 are 20 within 20 ms and the second ten are refused.

- At most ``limit`` admissions per key in any window of length ``window``: an admission at
  ``t`` counts while ``now - t < window``.
- Place, modify and cancel all count; a request carrying ``count`` orders takes ``count``
  slots at once or none (SPEC §7); refused attempts are not recorded.  More than ``limit`` at
  once never fits, whatever the window holds (the caller answers that with 422 first).
- A refusal says how long until enough counted admissions leave the window (``Retry-After``):
  until the one that must leave last for ``count`` slots to be free.
- An admission at ``t`` has expired when ``t <= now - window``, computed exactly so (one
  subtraction, then a comparison): the Redis store's Lua script removes by that score bound,
  and the two agree bit for bit.
- Memory is bounded: a key (an account) keeps at most ``limit`` timestamps.

``now`` is a monotonic reading in seconds supplied by the caller.  This is the in-process
limiter; the Redis store runs the same algorithm atomically in Lua across instances.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

__all__ = ["SlidingWindowLimiter", "wait_for"]

_MIN_WAIT = 1e-6


def wait_for(
    in_window: Sequence[float], *, now: float, limit: int, window: float, count: int
) -> float | None:
    """Seconds until ``count`` admissions fit beside ``in_window`` (the unexpired admission
    times, oldest first), or None if they fit now.  The one place the answer is computed:
    the limiter below, and the stores' read-only look at a window (explain), use it."""
    if count > limit:
        return window  # never fits; the caller refuses it before asking
    excess = len(in_window) + count - limit
    if excess <= 0:
        return None
    # Float rounding must not turn "wait a moment" into "wait 0 s" (Retry-After: 0).
    return max(in_window[excess - 1] + window - now, _MIN_WAIT)


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

    def _wait(self, hits: deque[float] | None, now: float, count: int) -> float | None:
        """Seconds until ``count`` admissions fit, or None if they fit now; drops expired hits."""
        if hits is not None:
            cutoff = now - self.window
            while hits and hits[0] <= cutoff:
                hits.popleft()
        return wait_for(hits or (), now=now, limit=self.limit, window=self.window, count=count)

    def peek(self, key: str, now: float, count: int = 1) -> tuple[int, float | None]:
        """The admissions in ``key``'s window and what :meth:`try_acquire` would answer,
        recording nothing (an explain must leave the window as it found it)."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        hits = self._hits.get(key)
        wait = self._wait(hits, now, count)
        return (0 if hits is None else len(hits)), wait

    def try_acquire(self, key: str, now: float, count: int = 1) -> float | None:
        """None: ``count`` admissions made and recorded; else the seconds (> 0) until they fit."""
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        hits = self._hits.get(key)
        wait = self._wait(hits, now, count)
        if wait is not None:
            return wait
        if hits is None:
            hits = self._hits[key] = deque(maxlen=self.limit)
        hits.extend([now] * count)
        return None
