from __future__ import annotations

from decimal import Decimal

import pytest

from rules.decisions import Reason, Refused
from rules.grid import default_grid
from rules.orders import (
    Conversion,
    KnownOrder,
    MarketPolicy,
    OrderIntent,
    convert,
    needs_conversion,
    needs_ltp,
    resolve_for_account,
)
from rules.types import Action, Instrument, InstrumentKind, OrderType, Side

GRID = default_grid()
D = Decimal
KEY = "NSE_EQ|INE002A01018"
RELIANCE = Instrument(key=KEY, kind=InstrumentKind.EQ, tick_size=D("0.05"), symbol="RELIANCE")
OPTION = Instrument(key="NSE_FO|12345", kind=InstrumentKind.OPT, tick_size=D("0.05"))
PLACE, MODIFY, CANCEL = Action.PLACE, Action.MODIFY, Action.CANCEL
MARKET, LIMIT, SL, SL_M = OrderType.MARKET, OrderType.LIMIT, OrderType.SL, OrderType.SL_M
BUY, SELL = Side.BUY, Side.SELL
CONVERT, REJECT = MarketPolicy.CONVERT, MarketPolicy.REJECT


def intent(
    action: Action = PLACE,
    order_type: OrderType | None = MARKET,
    side: Side | None = BUY,
    key: str | None = KEY,
    trigger: str | None = None,
) -> OrderIntent:
    return OrderIntent(
        action=action,
        instrument_key=key,
        side=side,
        order_type=order_type,
        trigger_price=None if trigger is None else D(trigger),
        order_id="250101000001",
    )


@pytest.mark.parametrize(
    ("action", "order_type", "conversion", "ltp"),
    [
        (PLACE, MARKET, True, True),
        (PLACE, SL_M, True, False),
        (PLACE, LIMIT, False, False),
        (PLACE, SL, False, False),
        (PLACE, None, False, False),
        (MODIFY, MARKET, True, True),
        (MODIFY, SL_M, True, False),
        (MODIFY, LIMIT, False, False),
        (MODIFY, None, False, False),
        (CANCEL, MARKET, False, False),
        (CANCEL, None, False, False),
    ],
)
def test_needs(action: Action, order_type: OrderType | None, conversion: bool, ltp: bool) -> None:
    i = intent(action, order_type)
    assert needs_conversion(i) is conversion
    assert needs_ltp(i) is ltp


MINE = KnownOrder("250101000001", "U1", "NSE_EQ|INE467B01029", SELL)
THEIRS = KnownOrder("250101000001", "U2", KEY, BUY)


@pytest.mark.parametrize(
    ("given", "known", "expected"),
    [
        # placements are never resolved against a known order
        (intent(PLACE), THEIRS, intent(PLACE)),
        (intent(PLACE, key=None, side=None), None, intent(PLACE, key=None, side=None)),
        # cancels and LIMIT modifies pass unchanged, known or not
        (intent(CANCEL, None, None, None), None, intent(CANCEL, None, None, None)),
        (intent(CANCEL, None, None, None), MINE, intent(CANCEL, None, None, None)),
        (intent(MODIFY, LIMIT, None, None), None, intent(MODIFY, LIMIT, None, None)),
        (intent(MODIFY, SL, None, None), MINE, intent(MODIFY, SL, None, None)),
        # a market modify takes instrument and side from the order the gateway recorded
        (
            intent(MODIFY, MARKET, None, None),
            MINE,
            intent(MODIFY, MARKET, SELL, MINE.instrument_key),
        ),
        (
            intent(MODIFY, SL_M, None, None, "10"),
            MINE,
            intent(MODIFY, SL_M, SELL, MINE.instrument_key, "10"),
        ),
        (intent(MODIFY, MARKET, BUY, KEY), MINE, intent(MODIFY, MARKET, SELL, MINE.instrument_key)),
    ],
)
def test_resolve_for_account(
    given: OrderIntent, known: KnownOrder | None, expected: OrderIntent
) -> None:
    assert resolve_for_account(given, known, user_id="U1") == expected


@pytest.mark.parametrize(
    ("given", "known", "reason"),
    [
        (intent(CANCEL, None, None, None), THEIRS, Reason.FOREIGN_ORDER),
        (intent(MODIFY, LIMIT, None, None), THEIRS, Reason.FOREIGN_ORDER),
        (intent(MODIFY, MARKET, None, None), THEIRS, Reason.FOREIGN_ORDER),
        (intent(MODIFY, MARKET, None, None), None, Reason.UNKNOWN_ORDER),
        (intent(MODIFY, MARKET, BUY, None), None, Reason.UNKNOWN_ORDER),
        (intent(MODIFY, MARKET, None, KEY), None, Reason.UNKNOWN_ORDER),
        # SPEC §6: an unknown order is refused even when the request names instrument and side
        (intent(MODIFY, MARKET, BUY, KEY), None, Reason.UNKNOWN_ORDER),
        (intent(MODIFY, SL_M, BUY, KEY, "10"), None, Reason.UNKNOWN_ORDER),
    ],
)
def test_resolve_refuses(given: OrderIntent, known: KnownOrder | None, reason: Reason) -> None:
    with pytest.raises(Refused) as info:
        resolve_for_account(given, known, user_id="U1")
    assert info.value.refusal.reason is reason
    assert "250101000001" in info.value.refusal.message
    if reason is Reason.UNKNOWN_ORDER:
        assert "not placed through this gateway" in info.value.refusal.message
        assert "send a LIMIT modify instead" in info.value.refusal.message


def run(
    given: OrderIntent,
    *,
    instrument: Instrument | None = RELIANCE,
    ltp: str | None = "1000",
    age: float | None = 0.5,
    policy: MarketPolicy = CONVERT,
) -> Conversion | None:
    return convert(
        given,
        instrument=instrument,
        ltp=None if ltp is None else D(ltp),
        ltp_age=age,
        max_age=2.0,
        grid=GRID,
        policy=policy,
    )


@pytest.mark.parametrize(
    ("given", "instrument", "ltp", "expected"),
    [
        (
            intent(),
            RELIANCE,
            "1000",
            Conversion(MARKET, LIMIT, D("1005.00"), D(1000), D(5), D(1000)),
        ),
        (
            intent(side=SELL),
            RELIANCE,
            "1000",
            Conversion(MARKET, LIMIT, D("995.00"), D(1000), D(5), D(1000)),
        ),
        (
            intent(MODIFY),
            RELIANCE,
            "250",
            Conversion(MARKET, LIMIT, D("252.50"), D(250), D("2.5"), D(250)),
        ),
        (
            intent(key=OPTION.key, side=SELL),
            OPTION,
            "0.10",
            Conversion(MARKET, LIMIT, D("0.05"), D("0.10"), D("0.10"), D("0.10")),
        ),
        # SL-M: the trigger is the reference and no LTP is needed
        (
            intent(order_type=SL_M, trigger="200"),
            RELIANCE,
            None,
            Conversion(SL_M, SL, D("202.00"), D(200), D(2), None),
        ),
        (
            intent(MODIFY, SL_M, SELL, trigger="200"),
            RELIANCE,
            "999",  # an LTP, if any, is ignored for SL-M
            Conversion(SL_M, SL, D("198.00"), D(200), D(2), None),
        ),
    ],
)
def test_convert(
    given: OrderIntent, instrument: Instrument, ltp: str | None, expected: Conversion
) -> None:
    assert run(given, instrument=instrument, ltp=ltp) == expected


@pytest.mark.parametrize(
    "given",
    [
        intent(order_type=LIMIT),
        intent(order_type=SL),
        intent(order_type=None),
        intent(CANCEL),
        intent(MODIFY, LIMIT),
    ],
)
def test_no_conversion(given: OrderIntent) -> None:
    # Nothing is looked at, not even the policy, the LTP or the instrument.
    assert run(given, instrument=None, ltp=None, age=None, policy=REJECT) is None


def test_sl_m_needs_no_ltp_age() -> None:
    conversion = run(intent(order_type=SL_M, trigger="200"), ltp=None, age=None)
    assert conversion is not None
    assert conversion.limit_price == D("202.00")


def test_ltp_exactly_max_age_is_fresh() -> None:
    assert run(intent(), age=2.0) is not None


@pytest.mark.parametrize(
    ("given", "kwargs", "reason", "fragments"),
    [
        (
            intent(),
            {"policy": REJECT},
            Reason.MARKET_REJECTED,
            ["MARKET orders are not accepted", "order type LIMIT"],
        ),
        (
            intent(order_type=SL_M, trigger="1"),
            {"policy": REJECT},
            Reason.MARKET_REJECTED,
            ["SL-M orders", "order type SL with a price"],
        ),
        (intent(side=None), {}, Reason.BAD_REQUEST, ["side"]),
        (intent(key=None), {}, Reason.BAD_REQUEST, ["instrument"]),
        (intent(key=""), {}, Reason.BAD_REQUEST, ["instrument"]),
        (
            intent(key="NSE_EQ|X"),
            {"instrument": None},
            Reason.LTP_UNAVAILABLE,
            ["NSE_EQ|X is not in the instrument master"],
        ),
        (
            intent(order_type=SL_M, trigger="1"),
            {"instrument": None},
            Reason.LTP_UNAVAILABLE,
            ["instrument master"],
        ),
        (
            intent(),
            {"ltp": None},
            Reason.LTP_UNAVAILABLE,
            [f"no last traded price for {KEY}", "need a fresh LTP"],
        ),
        (intent(), {"ltp": None, "age": None}, Reason.LTP_UNAVAILABLE, ["no last traded price"]),
        (
            intent(),
            {"age": 3.2},
            Reason.LTP_UNAVAILABLE,
            [f"last traded price for {KEY} is 3.2 s old (max 2.0 s)"],
        ),
        (intent(), {"age": 2.0001}, Reason.LTP_UNAVAILABLE, ["s old"]),
        (intent(), {"age": None}, Reason.LTP_UNAVAILABLE, ["of unknown age"]),
        (intent(), {"ltp": "0"}, Reason.LTP_UNAVAILABLE, [KEY]),
        (intent(), {"ltp": "-5"}, Reason.LTP_UNAVAILABLE, [KEY]),
        (intent(order_type=SL_M), {}, Reason.BAD_REQUEST, ["trigger_price"]),
        (intent(order_type=SL_M, trigger="0"), {}, Reason.BAD_REQUEST, ["trigger_price"]),
        (intent(order_type=SL_M, trigger="-1"), {}, Reason.BAD_REQUEST, ["trigger_price"]),
        (intent(order_type=SL_M, trigger="NaN"), {}, Reason.BAD_REQUEST, ["trigger_price"]),
        (intent(order_type=SL_M, trigger="Infinity"), {}, Reason.BAD_REQUEST, ["trigger_price"]),
    ],
)
def test_convert_refuses(
    given: OrderIntent, kwargs: dict[str, object], reason: Reason, fragments: list[str]
) -> None:
    with pytest.raises(Refused) as info:
        run(given, **kwargs)  # type: ignore[arg-type]
    assert info.value.refusal.reason is reason
    for fragment in fragments:
        assert fragment in info.value.refusal.message
