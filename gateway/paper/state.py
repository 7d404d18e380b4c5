"""What the paper broker remembers: prices on each instrument's tick grid, and every request.

Prices move by a random walk that stays on the tick grid and never below one tick, so converted
limit prices can be checked against a moving market. Only accepted order requests become orders.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from itertools import count
from typing import Any

from gateway.instruments import InstrumentMaster

DEFAULT_TICK = Decimal("0.05")
_WALK_FRACTION = Decimal("0.0005")


@dataclass(slots=True)
class Quote:
    price: Decimal
    close: Decimal
    volume: int = 0


class PriceBook:
    """Last traded prices by instrument key; unknown keys pushed by tests walk on a ₹0.05 grid."""

    def __init__(self, instruments: InstrumentMaster) -> None:
        self._instruments = instruments
        self._quotes: dict[str, Quote] = {}

    def tick(self, key: str) -> Decimal:
        instrument = self._instruments.get(key)
        return instrument.tick_size if instrument is not None else DEFAULT_TICK

    def set(self, key: str, price: Decimal) -> None:
        if not price.is_finite() or price <= 0:
            raise ValueError(f"{key}: price must be a positive number")
        quote = self._quotes.get(key)
        if quote is None:
            self._quotes[key] = Quote(price=price, close=price)
        else:
            quote.price = price

    def get(self, key: str) -> Quote | None:
        return self._quotes.get(key)

    def __iter__(self) -> Iterator[tuple[str, Quote]]:
        return iter(list(self._quotes.items()))

    def step(self, rng: random.Random) -> None:
        """One move of every price: a few ticks up or down, on the grid, at least one tick."""
        for key, quote in self._quotes.items():
            tick = self.tick(key)
            on_grid = (quote.price / tick).to_integral_value(ROUND_HALF_EVEN) * tick
            reach = max(1, int(quote.price * _WALK_FRACTION / tick))
            moved = on_grid + rng.randint(-reach, reach) * tick
            quote.price = max(moved, tick)
            quote.volume += rng.randint(1, 50)


class OrderIds:
    """Order numbers shaped like the brokers': upstox/kotak ``yymmdd`` + sequence digits."""

    def __init__(self) -> None:
        self._seq = count(1)

    def _next(self) -> int:
        return next(self._seq)

    def numeric(self) -> str:
        return f"{datetime.now(UTC):%y%m%d}{self._next():09d}"

    def gtt(self) -> str:
        return f"GTT-C{datetime.now(UTC):%y%m%d}{self._next():08d}"

    def paradex(self) -> str:
        return f"{int(datetime.now(UTC).timestamp() * 1000)}{self._next():06d}"


@dataclass(slots=True)
class OpenOrder:
    dialect: str
    tag: str | None = None


@dataclass(slots=True)
class Ledger:
    """Every request received (``/paper/requests``) and the accepted orders (``/paper/orders``)."""

    requests: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    open_orders: dict[str, OpenOrder] = field(default_factory=dict)
    _seq: Iterator[int] = field(default_factory=lambda: count(1))

    def record(
        self,
        *,
        dialect: str,
        method: str,
        path: str,
        query: Mapping[str, Any],
        headers: Mapping[str, str],
        body: Any,
        source_ip: str | None = None,
    ) -> dict[str, Any]:
        entry = {
            "seq": next(self._seq),
            "dialect": dialect,
            "method": method,
            "path": path,
            "query": dict(query),
            "headers": dict(headers),
            "body": body,
            "received_at": datetime.now(UTC).isoformat(),
            # what a broker checks against the account's registered static IP (SPEC §14)
            "source_ip": source_ip,
        }
        self.requests.append(entry)
        return entry

    def accept(self, entry: Mapping[str, Any], order_ids: list[str]) -> None:
        self.orders.append(
            {**entry, "order_id": order_ids[0] if order_ids else None, "order_ids": order_ids}
        )

    def clear(self) -> None:
        self.requests.clear()
        self.orders.clear()
        self.open_orders.clear()
