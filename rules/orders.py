"""Order normalisation: market orders become protected limit orders (SPEC §6).

Plain market orders are not accepted from retail API clients under the SEBI retail algo
framework; brokers (Upstox UDAPI1158) refuse them or demand market protection.  So:

- ``rules.market_orders = "convert"``: a MARKET order (AMO included) is forwarded as LIMIT,
  priced from the instrument's LTP through the protection grid; SL-M becomes SL priced the same
  way from its trigger.  LIMIT, SL and cancels pass unchanged.  ``"reject"`` refuses them.
- No LTP, an LTP older than ``rules.ltp_max_age_s``, or an instrument missing from the
  instrument master: refused (422) with the instrument and the reason; never forwarded as
  MARKET.
- Modifies are converted like placements, priced from the instrument and side the gateway
  recorded when it placed the order; a MARKET / SL-M modify of an order it did not place is
  refused (422), and a modify or cancel of another account's order is refused (403).

Orders are counted, not requests (SPEC §7): the exchange's 10 orders per second is a count of
orders, so a request carrying several takes that many rate-limit slots at once or none.  A
multi-order or batch counts its orders; an Upstox v3 place with ``"slice": true`` is split by the
broker into ceil(quantity / freeze quantity) orders (1 when the instrument master has no freeze
quantity); a request with no order body (cancel all, exit positions) counts 1.  A request that
alone carries more orders than the limit can never be admitted: refused (422) naming both.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from rules.decisions import Reason, Refused
from rules.grid import Grid, protect
from rules.types import Action, Instrument, OrderType, Side

__all__ = [
    "Conversion",
    "KnownOrder",
    "MarketPolicy",
    "OrderIntent",
    "convert",
    "needs_conversion",
    "needs_ltp",
    "orders_carried",
    "resolve_for_account",
]

_CONVERTED = {OrderType.MARKET: OrderType.LIMIT, OrderType.SL_M: OrderType.SL}


class MarketPolicy(enum.Enum):
    CONVERT = "convert"
    REJECT = "reject"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """What an order-route request asks for, decoded from any dialect."""

    action: Action
    instrument_key: str | None = None
    side: Side | None = None
    order_type: OrderType | None = None
    price: Decimal | None = None
    trigger_price: Decimal | None = None
    order_id: str | None = None
    tag: str | None = None
    quantity: int | None = None  # what a sliced order is split by
    sliced: bool = False  # upstox v3 "slice": true: the broker splits it by freeze quantity


@dataclass(frozen=True, slots=True)
class KnownOrder:
    """An order the gateway placed, as recorded from the upstream's answer."""

    order_id: str
    user_id: str
    instrument_key: str
    side: Side


@dataclass(frozen=True, slots=True)
class Conversion:
    original_type: OrderType
    order_type: OrderType
    limit_price: Decimal
    reference: Decimal
    band: Decimal
    ltp: Decimal | None  # None for SL-M, priced from its trigger


def needs_conversion(intent: OrderIntent) -> bool:
    return intent.action is not Action.CANCEL and intent.order_type in _CONVERTED


def needs_ltp(intent: OrderIntent) -> bool:
    return needs_conversion(intent) and intent.order_type is OrderType.MARKET


def resolve_for_account(
    intent: OrderIntent, known: KnownOrder | None, *, user_id: str
) -> OrderIntent:
    """Check ownership of a modified or cancelled order and fill in what pricing needs."""
    if intent.action is Action.PLACE:
        return intent
    if known is not None and known.user_id != user_id:
        raise Refused(
            Reason.FOREIGN_ORDER,
            f"order {intent.order_id} belongs to another account",
        )
    if intent.action is Action.CANCEL or not needs_conversion(intent):
        return intent
    if known is None:
        # SPEC §6: without the recorded instrument and side there is nothing safe to price from.
        raise Refused(
            Reason.UNKNOWN_ORDER,
            f"order {intent.order_id} was not placed through this gateway, so its instrument "
            "and side are unknown and a market modify cannot be priced; send a LIMIT modify "
            "instead",
        )
    # The recorded order wins: a modify cannot move an order to another instrument or side,
    # and pricing from a client-supplied instrument would use the wrong LTP.
    return replace(intent, instrument_key=known.instrument_key, side=known.side)


def convert(
    intent: OrderIntent,
    *,
    instrument: Instrument | None,
    ltp: Decimal | None,
    ltp_age: float | None,
    max_age: float,
    grid: Grid,
    policy: MarketPolicy,
) -> Conversion | None:
    """The LIMIT / SL pricing for a MARKET / SL-M order, or None when nothing changes."""
    if not needs_conversion(intent):
        return None
    assert intent.order_type is not None
    original = intent.order_type
    if policy is MarketPolicy.REJECT:
        raise Refused(
            Reason.MARKET_REJECTED,
            f"{original.value} orders are not accepted here; send order type "
            f"{_CONVERTED[original].value} with a price",
        )
    if intent.side is None:
        raise Refused(Reason.BAD_REQUEST, f"a {original.value} order needs a side (BUY or SELL)")
    key = intent.instrument_key
    if not key:
        raise Refused(Reason.BAD_REQUEST, f"a {original.value} order needs an instrument")
    if instrument is None:
        raise Refused(
            Reason.LTP_UNAVAILABLE,
            f"instrument {key} is not in the instrument master; {original.value} orders are "
            "converted to limit orders and need a known instrument",
        )
    if original is OrderType.SL_M:
        trigger = intent.trigger_price
        if trigger is None or not trigger.is_finite() or trigger <= 0:
            raise Refused(Reason.BAD_REQUEST, "an SL-M order needs a positive trigger_price")
        reference, ltp = trigger, None
    else:
        reference = _fresh_ltp(key, ltp, ltp_age, max_age)
    protection = protect(grid, instrument, intent.side, reference)
    return Conversion(
        original_type=original,
        order_type=_CONVERTED[original],
        limit_price=protection.limit_price,
        reference=protection.reference,
        band=protection.band,
        ltp=ltp,
    )


def _fresh_ltp(key: str, ltp: Decimal | None, age: float | None, max_age: float) -> Decimal:
    if ltp is None:
        raise Refused(
            Reason.LTP_UNAVAILABLE,
            f"no last traded price for {key}; market orders are converted to limit orders "
            "and need a fresh LTP",
        )
    # An LTP of unknown age could be from yesterday: fail closed.
    if age is None or age > max_age:
        shown = "of unknown age" if age is None else f"{age:.1f} s old"
        raise Refused(
            Reason.LTP_UNAVAILABLE,
            f"last traded price for {key} is {shown} (max {max_age:.1f} s); market orders "
            "are converted to limit orders and need a fresh LTP",
        )
    return ltp


def orders_carried(
    intents: Sequence[OrderIntent],
    *,
    limit: int,
    freeze_quantity: Callable[[str], int | None],
) -> int:
    """The orders a request counts against the rate limit; refuses one that alone exceeds it.

    ``freeze_quantity`` answers the instrument master's freeze quantity of an instrument key
    (None when unknown).
    """
    count = 0
    for intent in intents:
        count += _slices(intent, freeze_quantity)
    count = max(count, 1)
    if count > limit:
        raise Refused(
            Reason.TOO_MANY_ORDERS,
            f"this request carries {count} orders, more than the limit of {limit} orders per"
            " second; send them in smaller requests",
        )
    return count


def _slices(intent: OrderIntent, freeze_quantity: Callable[[str], int | None]) -> int:
    if not intent.sliced or not intent.quantity or not intent.instrument_key:
        return 1
    freeze = freeze_quantity(intent.instrument_key)
    if not freeze or freeze <= 0:
        return 1
    return -(-intent.quantity // freeze)
