"""The Admission role: the rolling rate window (SPEC §7).

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

import pytest

from gateway.stores.base import (
    Store,
)

from .values import (
    accounts,
    login,
)

# admission rate --------------------------------------------------------------------------


async def test_admit_allows_limit_per_window_then_says_when(store: Store) -> None:
    await accounts(store, "u1", "u2")
    snap = await login(store, "a", "u1")
    other = await login(store, "b", "u2")

    for now in (100.0, 100.1, 100.2):
        assert await store.admit(snap, now=now, limit=3) is None
    retry = await store.admit(snap, now=100.3, limit=3)
    assert retry is not None
    assert 0 < retry <= 1.0
    assert retry == pytest.approx(0.7)
    # Another account has its own window.
    assert await store.admit(other, now=100.3, limit=3) is None
    # The oldest admission leaves the rolling window after one second.
    assert await store.admit(snap, now=101.0, limit=3) is None
    assert await store.admit(snap, now=101.05, limit=3) is not None


async def test_admit_takes_count_slots_at_once_or_none(store: Store) -> None:
    await accounts(store, "u1")
    snap = await login(store, "a", "u1")

    assert await store.admit(snap, now=100.0, limit=4, count=3) is None
    # Two more do not fit in the one slot left: refused whole, and nothing is taken.
    assert await store.admit(snap, now=100.25, limit=4, count=2) == pytest.approx(0.75)
    assert await store.admit(snap, now=100.25, limit=4) is None  # the last slot was still free
    assert await store.admit(snap, now=100.5, limit=4) == pytest.approx(0.5)
    # count == limit fits once the window is empty; count > limit never does.
    assert await store.admit(snap, now=101.25, limit=4, count=4) is None
    assert await store.admit(snap, now=105.0, limit=4, count=5) is not None
    assert await store.admit(snap, now=105.0, limit=4, count=4) is None


async def test_peek_admit_reads_the_window_and_takes_nothing(store: Store) -> None:
    await accounts(store, "u1")
    snap = await login(store, "a", "u1")

    assert await store.peek_admit(snap, now=100.0, limit=3) == (0, None)
    assert await store.admit(snap, now=100.0, limit=3, count=2) is None
    for _ in range(5):  # as often as anyone asks: the window is unchanged
        assert await store.peek_admit(snap, now=100.25, limit=3) == (2, None)
    count, wait = await store.peek_admit(snap, now=100.25, limit=3, count=2)
    assert count == 2
    assert wait == pytest.approx(0.75)
    assert await store.admit(snap, now=100.25, limit=3) is None  # the slot peeked at was free
    count, wait = await store.peek_admit(snap, now=100.5, limit=3)
    assert count == 3
    assert wait == pytest.approx(0.5)
    assert await store.peek_admit(snap, now=101.0, limit=3) == (1, None)  # two left the window
