from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from gateway.dialects.paradex import ParadexDialect
from rules.decisions import Reason, Refuse, Refused
from rules.orders import Conversion
from rules.routes import Route, load_routes
from rules.types import Action, Instrument, InstrumentKind, OrderType, Side

DIALECT = ParadexDialect(load_routes("paradex"))
PERP = Instrument("BTC-USD-PERP", InstrumentKind.FUT, Decimal("0.1"))


def route(method: str, path: str) -> Route:
    match = DIALECT.match(method, path)
    assert match is not None
    return match.route


def body(value: Any) -> bytes:
    return json.dumps(value).encode()


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("POST", "/v1/orders", Action.PLACE),
        ("POST", "/v1/orders/batch", Action.PLACE),
        ("DELETE", "/v1/orders/abc", Action.CANCEL),
        ("DELETE", "/v1/orders", Action.CANCEL),
        ("DELETE", "/v1/orders/batch", Action.CANCEL),
        ("PUT", "/v1/orders/abc", Action.MODIFY),
        ("DELETE", "/v1/orders/by_client_id/c1", Action.CANCEL),
    ],
)
def test_order_routes(method: str, path: str, action: Action) -> None:
    assert route(method, path).action is action


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/v1/orders"), ("GET", "/v1/orders/abc"), ("GET", "/v1/markets")]
)
def test_reads_are_not_order_routes(method: str, path: str) -> None:
    assert DIALECT.match(method, path) is None
    assert not DIALECT.is_order_path(path)


def test_stop_market_is_priced_like_sl_m() -> None:
    doc = {"market": "X", "side": "SELL", "type": "STOP_MARKET", "size": "1", "trigger_price": "9"}
    decoded = DIALECT.decode(route("POST", "/v1/orders"), body(doc), {})
    intent = decoded.docs[0].intent
    assert (intent.order_type, intent.side, intent.trigger_price) == (
        OrderType.SL_M,
        Side.SELL,
        Decimal("9"),
    )
    DIALECT.apply(
        decoded.docs[0],
        Conversion(
            OrderType.SL_M, OrderType.SL, Decimal("8.9"), Decimal("9"), Decimal("0.1"), None
        ),
    )
    assert json.loads(DIALECT.encode(decoded)[0]) == {**doc, "type": "STOP_LIMIT", "price": "8.9"}


def test_take_profit_orders_are_not_converted() -> None:
    doc = {"market": "X", "side": "SELL", "type": "TAKE_PROFIT_MARKET", "size": "1"}
    decoded = DIALECT.decode(route("POST", "/v1/orders"), body(doc), {})
    assert decoded.docs[0].intent.order_type is None


@pytest.mark.parametrize(
    ("path", "payload", "named"),
    [
        ("/v1/orders/batch", [], "1 to 10"),
        ("/v1/orders/batch", [{"market": "X"}] * 11, "1 to 10"),
        ("/v1/orders/batch", {"market": "X"}, "1 to 10"),
    ],
)
def test_batch_limits(path: str, payload: Any, named: str) -> None:
    with pytest.raises(Refused, match=named):
        DIALECT.decode(route("POST", path), body(payload), {})


def test_cancels() -> None:
    one = DIALECT.decode(route("DELETE", "/v1/orders/abc"), b"", {"id": "abc"})
    assert one.order_id == "abc"
    assert one.docs[0].intent.order_id == "abc"
    assert DIALECT.encode(one) == (b"", "")
    with pytest.raises(Refused, match="takes no request body"):
        DIALECT.decode(route("DELETE", "/v1/orders/abc"), b"{}", {"id": "abc"})
    every = DIALECT.decode(route("DELETE", "/v1/orders"), b"", {"market": "X"})
    assert every.docs == []
    with pytest.raises(Refused, match="market"):
        DIALECT.decode(route("DELETE", "/v1/orders"), b"", {"market": ""})
    ids = {"order_ids": ["a", "b"], "client_order_ids": ["c"]}
    batch = DIALECT.decode(route("DELETE", "/v1/orders/batch"), body(ids), {})
    # the order ids are checked for ownership; every id, client ids too, counts (SPEC §7)
    assert [d.intent.order_id for d in batch.docs if d.intent.order_id] == ["a", "b"]
    assert [d.intent.order_id for d in batch.docs] == ["a", "b", None]
    assert json.loads(DIALECT.encode(batch)[0]) == ids


def test_modify_names_its_order_in_the_path() -> None:
    doc = {"market": "X", "side": "BUY", "type": "LIMIT", "size": "1", "price": "2"}
    decoded = DIALECT.decode(route("PUT", "/v1/orders/abc"), body(doc), {"id": "abc"})
    assert decoded.docs[0].intent.order_id == "abc"
    assert json.loads(DIALECT.encode(decoded)[0]) == doc


@pytest.mark.parametrize(
    ("template", "answer", "ids"),
    [
        ("/v1/orders", {"id": "1"}, ["1"]),
        ("/v1/orders", {"id": ""}, []),
        ("/v1/orders", [], []),
        (
            "/v1/orders/batch",
            {"orders": [{"id": "1"}, {"id": "2"}], "errors": [None, None]},
            ["1", "2"],
        ),
        ("/v1/orders/batch", {"orders": [{"id": "2"}], "errors": [{"error": "X"}, None]}, []),
        ("/v1/orders/batch", {"orders": [{"id": 2}]}, []),
        ("/v1/orders/batch", {"orders": None}, []),
    ],
)
def test_order_ids(template: str, answer: Any, ids: list[str]) -> None:
    assert DIALECT.order_ids(route("POST", template), body(answer)) == ids


def test_order_ids_of_a_broken_answer() -> None:
    assert DIALECT.order_ids(route("POST", "/v1/orders"), b"not json") == []


@pytest.mark.parametrize(
    ("answer", "price"),
    [
        ({"results": [{"symbol": "BTC-USD-PERP", "last_traded_price": "60000.5"}]}, "60000.5"),
        ({"results": [{"symbol": "ETH-USD-PERP", "last_traded_price": "3000"}]}, None),
        ({"results": [{"symbol": "BTC-USD-PERP", "last_traded_price": "0"}]}, None),
        ({"results": [{"symbol": "BTC-USD-PERP", "last_traded_price": 60000}]}, None),
        ({"results": None}, None),
        ({"results": {}}, None),
        ([], None),
    ],
)
def test_parse_ltp(answer: Any, price: str | None) -> None:
    parsed = DIALECT.parse_ltp(PERP, body(answer))
    assert parsed == (None if price is None else Decimal(price))
    assert DIALECT.ltp_path(PERP) == "/v1/markets/summary?market=BTC-USD-PERP"


@pytest.mark.parametrize(
    "reason", [Reason.INVALID_TOKEN, Reason.LTP_UNAVAILABLE, Reason.RATE_LIMITED]
)
def test_spec_codes(reason: Reason) -> None:
    response = DIALECT.refusal(Refuse(reason, "why", retry_after=0.2))
    assert response.status == reason.status
    assert isinstance(response.body, bytes)
    assert json.loads(response.body) == {"error": reason.name, "message": "why"}


# algo orders and block trades (SPEC §2) -----------------------------------------------------

TWAP = {
    "algo_type": "TWAP",
    "duration_seconds": 600,
    "market": "BTC-USD-PERP",
    "side": "BUY",
    "size": "0.5",
    "type": "MARKET",
    "signature": "[1,2]",
    "signature_timestamp": 1767225600000,
}


@pytest.mark.parametrize(
    ("method", "path", "action"),
    [
        ("POST", "/v1/algo/orders", Action.PLACE),
        ("DELETE", "/v1/algo/orders/a1", Action.CANCEL),
        ("POST", "/v1/block-trades", Action.PLACE),
        ("POST", "/v1/block-trades/b1/execute", Action.PLACE),
        ("DELETE", "/v1/block-trades/b1", Action.CANCEL),
        ("POST", "/v1/block-trades/b1/offers", Action.PLACE),
        ("POST", "/v1/block-trades/b1/offers/o1/execute", Action.PLACE),
        ("DELETE", "/v1/block-trades/b1/offers/o1", Action.CANCEL),
    ],
)
def test_algo_and_block_trade_writes_are_order_routes(
    method: str, path: str, action: Action
) -> None:
    assert route(method, path).action is action


def test_a_twap_is_one_market_order_on_its_market() -> None:
    decoded = DIALECT.decode(route("POST", "/v1/algo/orders"), body(TWAP), {})
    [doc] = decoded.docs
    assert doc.fields == TWAP
    assert (doc.intent.instrument_key, doc.intent.side) == ("BTC-USD-PERP", Side.BUY)
    assert doc.intent.order_type is OrderType.MARKET
    encoded, content_type = DIALECT.encode(decoded)
    assert (json.loads(encoded), content_type) == (TWAP, "application/json")


@pytest.mark.parametrize(
    ("overrides", "says"),
    [
        ({"type": "LIMIT"}, "type must be MARKET"),
        ({"algo_type": "VWAP"}, "algo_type must be TWAP"),
        ({"duration_seconds": 0}, "duration_seconds must be positive"),
        ({"duration_seconds": "600"}, "duration_seconds must be an integer"),
        ({"size": "0"}, "size must be positive"),
        ({"price": "1"}, "unknown field 'price'"),
    ],
)
def test_a_malformed_twap_is_refused(overrides: dict[str, Any], says: str) -> None:
    with pytest.raises(Refused, match=says):
        DIALECT.decode(route("POST", "/v1/algo/orders"), body({**TWAP, **overrides}), {})


def test_the_grid_refuses_a_twap_rather_than_forward_it_unpriced() -> None:
    [doc] = DIALECT.decode(route("POST", "/v1/algo/orders"), body(TWAP), {}).docs
    conversion = Conversion(
        original_type=OrderType.MARKET,
        order_type=OrderType.LIMIT,
        limit_price=Decimal("100.1"),
        reference=Decimal("100"),
        band=Decimal("0.1"),
        ltp=Decimal("100"),
    )
    with pytest.raises(Refused) as refused:
        DIALECT.apply(doc, conversion)
    assert refused.value.refusal.reason is Reason.MARKET_REJECTED
    assert doc.fields == TWAP  # nothing rewritten


def test_an_algo_cancel_names_the_algo_and_takes_no_body() -> None:
    decoded = DIALECT.decode(route("DELETE", "/v1/algo/orders/a1"), b"", {"id": "a1"})
    assert decoded.order_id == "a1"
    assert decoded.docs[0].intent.action is Action.CANCEL


def test_block_trade_bodies_are_json_objects_forwarded_as_signed() -> None:
    trade = {"nonce": "n1", "block_expiration": 1, "required_signers": ["0x1"], "trades": {}}
    decoded = DIALECT.decode(route("POST", "/v1/block-trades"), body(trade), {})
    assert decoded.docs == [] and decoded.body == trade
    with pytest.raises(Refused, match="takes a JSON object"):
        DIALECT.decode(route("POST", "/v1/block-trades/b1/execute"), body([1]), {})
    cancel = DIALECT.decode(route("DELETE", "/v1/block-trades/b1"), b"{}", {"block_trade_id": "b1"})
    assert cancel.docs == [] and cancel.body is None
