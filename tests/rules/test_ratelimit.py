from __future__ import annotations

import pytest

from rules.ratelimit import SlidingWindowLimiter


def burst(limiter: SlidingWindowLimiter, key: str, now: float, n: int) -> list[float | None]:
    return [limiter.try_acquire(key, now) for _ in range(n)]


def test_rolling_window_not_clock_seconds() -> None:
    limiter = SlidingWindowLimiter(10)
    assert burst(limiter, "U1", 0.990, 10) == [None] * 10
    refused = burst(limiter, "U1", 1.010, 10)
    assert all(r == pytest.approx(0.98) for r in refused)
    assert limiter.try_acquire("U1", 1.989999) == pytest.approx(0.000001, abs=1e-6)
    assert burst(limiter, "U1", 1.990, 10) == [None] * 10
    assert limiter.try_acquire("U1", 1.990) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("limit", "schedule", "expected"),
    [
        # (time, admitted?) in order; at most `limit` in any window of 1 s
        (1, [0.0, 0.5, 0.999, 1.0, 1.5, 2.0], [True, False, False, True, False, True]),
        (2, [0.0, 0.1, 0.2, 1.0, 1.05, 1.1, 1.2], [True, True, False, True, False, True, False]),
        (3, [0.0, 0.0, 0.0, 0.0, 0.5, 1.0], [True, True, True, False, False, True]),
        # refused attempts are not recorded: they do not push the window forward
        (1, [0.0, 0.9, 0.95, 1.0], [True, False, False, True]),
        (10, [0.1 * i for i in range(20)], [True] * 20),
    ],
)
def test_schedule(limit: int, schedule: list[float], expected: list[bool]) -> None:
    limiter = SlidingWindowLimiter(limit)
    assert [limiter.try_acquire("k", t) is None for t in schedule] == expected


def test_ten_per_second_steady_and_bursty() -> None:
    limiter = SlidingWindowLimiter(10)
    admitted = [t / 100 for t in range(0, 300) if limiter.try_acquire("k", t / 100) is None]
    assert len(admitted) == 30
    for start in admitted:
        assert sum(1 for t in admitted if start <= t < start + 1.0) <= 10


def test_retry_after_is_until_the_oldest_leaves() -> None:
    limiter = SlidingWindowLimiter(3, window=1.0)
    for t in (0.0, 0.2, 0.4):
        assert limiter.try_acquire("k", t) is None
    assert limiter.try_acquire("k", 0.5) == pytest.approx(0.5)
    assert limiter.try_acquire("k", 0.9) == pytest.approx(0.1)
    assert limiter.try_acquire("k", 1.0) is None  # 0.0 left; 0.2, 0.4, 1.0 remain
    assert limiter.try_acquire("k", 1.1) == pytest.approx(0.1)


def test_retry_after_is_never_zero() -> None:
    limiter = SlidingWindowLimiter(1, window=0.3)
    assert limiter.try_acquire("k", 0.1) is None
    wait = limiter.try_acquire("k", 0.39999999999999997)
    assert wait is not None
    assert wait > 0


def test_keys_are_independent() -> None:
    limiter = SlidingWindowLimiter(1)
    assert limiter.try_acquire("U1", 0.0) is None
    assert limiter.try_acquire("U2", 0.0) is None
    assert limiter.try_acquire("U1", 0.5) is not None
    assert limiter.try_acquire("U2", 0.5) is not None


def test_other_windows() -> None:
    limiter = SlidingWindowLimiter(2, window=0.5)
    assert limiter.try_acquire("k", 0.0) is None
    assert limiter.try_acquire("k", 0.1) is None
    assert limiter.try_acquire("k", 0.4) == pytest.approx(0.1)
    assert limiter.try_acquire("k", 0.5) is None


def test_memory_is_bounded() -> None:
    limiter = SlidingWindowLimiter(10)
    for i in range(10_000):
        limiter.try_acquire("k", i * 0.001)
    assert len(limiter._hits["k"]) == 10
    for i in range(100):
        limiter.try_acquire(f"user-{i}", 5.0)
    assert len(limiter) == 101  # one key per account, each at most ``limit`` long


@pytest.mark.parametrize(("limit", "window"), [(0, 1.0), (-1, 1.0), (10, 0.0), (10, -1.0)])
def test_invalid_configuration(limit: int, window: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        SlidingWindowLimiter(limit, window)


@pytest.mark.parametrize(
    ("limit", "held", "count", "admitted"),
    [
        # (slots a window holds already, orders in one request) -> all taken, or none
        (10, 0, 10, True),  # count == limit fits an empty window
        (10, 0, 11, False),  # count > limit never fits, even an empty window
        (10, 7, 3, True),
        (10, 7, 4, False),  # all or none: 3 free slots are not taken for 4 orders
        (10, 9, 1, True),
        (10, 10, 1, False),
        (1, 0, 1, True),
        (1, 0, 2, False),
    ],
)
def test_a_request_of_count_orders_takes_count_slots_or_none(
    limit: int, held: int, count: int, admitted: bool
) -> None:
    limiter = SlidingWindowLimiter(limit)
    for _ in range(held):
        assert limiter.try_acquire("k", 0.0) is None
    assert (limiter.try_acquire("k", 0.5, count) is None) is admitted
    # A refused request took nothing: exactly the free slots are still free.
    free = limit - held - (count if admitted else 0)
    oldest = 0.0 if held else 0.5
    assert burst(limiter, "k", 0.5, free + 1) == [None] * free + [pytest.approx(oldest + 0.5)]


def test_retry_after_for_count_is_until_enough_leave() -> None:
    limiter = SlidingWindowLimiter(4)
    for t in (0.0, 0.25, 0.5, 0.75):
        assert limiter.try_acquire("k", t) is None
    # Three slots are needed: 0.0, 0.25 and 0.5 must leave, the last of them at 1.5.
    assert limiter.try_acquire("k", 0.875, 3) == 0.625
    assert limiter.try_acquire("k", 1.375, 3) == 0.125
    assert limiter.try_acquire("k", 1.5, 3) is None
    assert limiter.try_acquire("k", 1.5) == 0.25  # 0.75 leaves at 1.75


def test_more_than_limit_at_once_is_refused_for_a_window() -> None:
    limiter = SlidingWindowLimiter(3, window=0.5)
    assert limiter.try_acquire("k", 0.0, 4) == 0.5
    assert len(limiter) == 0  # nothing recorded, not even the key


def test_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        SlidingWindowLimiter(3).try_acquire("k", 0.0, 0)


def test_expiry_is_decided_on_the_subtracted_cutoff() -> None:
    # now - t >= window and t <= now - window differ in floating point; the Lua script can
    # only remove by a score bound, so both sides use the bound.
    limiter = SlidingWindowLimiter(1, window=0.1)
    t, now = 0.30000000000000004, 0.4
    assert (now - t >= 0.1) != (t <= now - 0.1)
    assert limiter.try_acquire("k", t) is None
    assert (limiter.try_acquire("k", now) is None) is (t <= now - 0.1)


def test_peek_answers_as_try_acquire_would_and_records_nothing() -> None:
    limiter = SlidingWindowLimiter(3)
    assert limiter.peek("U1", 0.0) == (0, None)
    assert limiter.peek("U1", 0.0, count=4) == (0, 1.0)  # more than the limit never fits
    assert burst(limiter, "U1", 0.0, 2) == [None, None]
    assert limiter.peek("U1", 0.5) == (2, None)
    assert limiter.peek("U1", 0.5, count=2) == pytest.approx((2, 0.5))
    # eleven peeks later the window still holds two: the third admission still fits
    for _ in range(11):
        limiter.peek("U1", 0.5)
    assert limiter.try_acquire("U1", 0.5) is None
    assert limiter.peek("U1", 0.6) == pytest.approx((3, 0.4))
    assert limiter.peek("U1", 1.0) == (1, None)  # the two at 0.0 left the window
    assert limiter.peek("U1", 1.5) == (0, None)
    with pytest.raises(ValueError, match="count"):
        limiter.peek("U1", 1.0, count=0)
