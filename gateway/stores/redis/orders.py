"""Orders placed through the gateway (the OrderBook role), SPEC §6."""

from __future__ import annotations

import orjson

from rules.orders import KnownOrder
from rules.types import Side

from .core import RedisCore

_ORDER_TTL_S = 7 * 86_400


class RedisOrders(RedisCore):
    async def remember_order(self, order: KnownOrder) -> None:
        # Written at once, not batched: a modify may arrive at another instance next.
        value = orjson.dumps([order.user_id, order.instrument_key, order.side.value])
        await self._cmd("SET", self._key("order", order.order_id), value, "EX", _ORDER_TTL_S)
        self._orders[order.order_id] = order

    async def known_order(self, order_id: str) -> KnownOrder | None:
        if order_id in self._orders:  # an order's owner, instrument and side never change
            return self._orders[order_id]
        value = await self._cmd("GET", self._key("order", order_id))
        if value is None:
            return None
        user_id, instrument_key, side = orjson.loads(value)
        order = KnownOrder(order_id, user_id, instrument_key, Side(side))
        self._orders[order_id] = order
        return order
