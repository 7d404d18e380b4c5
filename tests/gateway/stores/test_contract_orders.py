"""The OrderBook role: orders placed through the gateway (SPEC §6).

What every Store implementation must do, written against the interface only; ``store`` is
parametrized over the implementations in ``conftest.STORES``.
"""

from __future__ import annotations

from gateway.stores.base import (
    Store,
)
from rules.orders import KnownOrder
from rules.types import Side

# known orders ----------------------------------------------------------------------------


async def test_remembered_order_is_known(store: Store) -> None:
    order = KnownOrder(order_id="o-1", user_id="u1", instrument_key="NSE_EQ|X", side=Side.SELL)
    assert await store.known_order("o-1") is None
    await store.remember_order(order)
    assert await store.known_order("o-1") == order
    assert await store.known_order("o-2") is None
