"""Orders, not requests (SPEC §7): how many rate-limit slots a request takes."""

from __future__ import annotations

import pytest

from rules.decisions import Reason, Refused
from rules.orders import OrderIntent, orders_carried
from rules.types import Action

KEY = "NSE_FO|NIFTY-FUT"
FREEZE = {KEY: 1800, "NSE_EQ|ZERO": 0}


def place(quantity: int | None = 1, *, sliced: bool = False, key: str | None = KEY) -> OrderIntent:
    return OrderIntent(Action.PLACE, instrument_key=key, quantity=quantity, sliced=sliced)


def count(intents: list[OrderIntent], limit: int = 10) -> int:
    return orders_carried(intents, limit=limit, freeze_quantity=FREEZE.get)


@pytest.mark.parametrize(
    ("intents", "expected"),
    [
        ([], 1),  # cancel all / exit positions: no order body, still one request's worth
        ([place()], 1),
        ([place(), place(), place()], 3),  # a multi-order counts its orders
        ([place(5400, sliced=False)], 1),  # not sliced: one order whatever the quantity
        ([place(1800, sliced=True)], 1),  # exactly the freeze quantity: one slice
        ([place(1801, sliced=True)], 2),  # one more share: a second slice
        ([place(5400, sliced=True)], 3),  # 3 x freeze quantity counts 3
        ([place(5401, sliced=True)], 4),
        ([place(10_000, sliced=True, key="NSE_EQ|UNKNOWN")], 1),  # unknown freeze: 1
        ([place(10_000, sliced=True, key="NSE_EQ|ZERO")], 1),  # a zero freeze is no freeze
        ([place(None, sliced=True)], 1),  # no quantity to split
        ([place(5000, sliced=True, key=None)], 1),  # no instrument to look up
        ([place(3600, sliced=True), place()], 3),  # slices and plain orders add up
        ([OrderIntent(Action.CANCEL, order_id="1")] * 2, 2),  # a batch cancel counts its ids
    ],
)
def test_orders_carried(intents: list[OrderIntent], expected: int) -> None:
    assert count(intents) == expected


def test_exactly_the_limit_is_carried() -> None:
    assert count([place()] * 10, limit=10) == 10


@pytest.mark.parametrize(
    ("intents", "limit", "carried"),
    [
        ([place()] * 11, 10, 11),
        ([place()] * 25, 10, 25),
        ([place(18_001, sliced=True)], 10, 11),  # 11 slices of one order
        ([place(), place()], 1, 2),
    ],
)
def test_a_request_over_the_limit_alone_is_refused_naming_both(
    intents: list[OrderIntent], limit: int, carried: int
) -> None:
    with pytest.raises(Refused) as exc:
        count(intents, limit=limit)
    assert exc.value.refusal.reason is Reason.TOO_MANY_ORDERS
    assert exc.value.refusal.status == 422
    message = exc.value.refusal.message
    assert f"{carried} orders" in message
    assert f"limit of {limit}" in message
