"""Orders placed through the gateway (the OrderBook role), SPEC §6.

Remembered in the cache at once and written in the audit flusher's batches: a modify on
this process finds the order before its row is written.
"""

from __future__ import annotations

from rules.orders import KnownOrder
from rules.types import Side

from .core import SQLiteCore


class SQLiteOrders(SQLiteCore):
    async def remember_order(self, order: KnownOrder) -> None:
        self._orders[order.order_id] = order
        self._pending_orders.append(order)

    async def known_order(self, order_id: str) -> KnownOrder | None:
        if order_id in self._orders:
            return self._orders[order_id]
        row = await self._one(
            "SELECT order_id, user_id, instrument_key, side FROM orders WHERE order_id = ?",
            (order_id,),
        )
        if row is None:
            return None
        order = KnownOrder(
            order_id=row[0], user_id=row[1], instrument_key=row[2], side=Side(row[3])
        )
        self._orders[order_id] = order
        return order
