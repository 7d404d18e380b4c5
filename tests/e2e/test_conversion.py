"""SPEC §6 end to end: MARKET → LIMIT and SL-M → SL at the protection-grid price."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import pytest

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness

IDEA = "NSE_EQ|INE669E01016"  # tick ₹0.01
OPT_050 = "NSE_FO|53110"  # CE, tick ₹0.05
OPT_3 = "NSE_FO|53111"
OPT_600 = "NSE_FO|53115"


@pytest.mark.parametrize(
    ("instrument", "ltp", "side", "limit"),
    [
        (RELIANCE, "1401.5", "BUY", 1408.5),  # 0.5% = 7.0075, floored to the 0.10 tick
        (RELIANCE, "1401.5", "SELL", 1394.5),  # ceiled toward the LTP
        (IDEA, "7.42", "BUY", 7.56),  # 2% under ₹100
        (IDEA, "7.42", "SELL", 7.28),
        (OPT_050, "0.50", "BUY", 0.6),  # options under ₹1: ₹0.10 absolute
        (OPT_050, "0.50", "SELL", 0.4),
        (OPT_3, "3.00", "BUY", 3.3),  # 10% from ₹1 to ₹5
        (OPT_600, "600", "SELL", 594.0),  # 1% over ₹500
    ],
)
async def test_market_orders_arrive_as_limit_orders_at_the_grid_price(
    gw: Harness, instrument: str, ltp: str, side: str, limit: float
) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({instrument: ltp})

    reply = await gw.place(trader, instrument_token=instrument, transaction_type=side)

    assert reply.status == 200, reply.body
    assert reply.headers["X-Gateway-Order-Type"] == "LIMIT"
    assert float(reply.headers["X-Gateway-Limit-Price"]) == limit
    assert reply.headers["X-Gateway-LTP"] == ltp
    [order] = await gw.upstream_orders()
    assert order["body"]["order_type"] == "LIMIT"
    assert order["body"]["price"] == limit


async def test_sl_m_becomes_sl_with_the_limit_from_the_trigger(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader, order_type="SL-M", transaction_type="SELL", trigger_price=1400)
    assert reply.status == 200, reply.body
    assert reply.headers["X-Gateway-Order-Type"] == "SL"
    assert reply.headers["X-Gateway-Limit-Price"] == "1393.0"
    assert "X-Gateway-LTP" not in reply.headers  # priced from the trigger, no LTP used
    [order] = await gw.upstream_orders()
    assert order["body"]["order_type"] == "SL"
    assert order["body"]["trigger_price"] == 1400
    assert order["body"]["price"] == 1393.0  # 1400 − 0.5%


async def test_limit_orders_pass_unchanged(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader, order_type="LIMIT", price=1399.95, tag="keep")
    assert reply.status == 200
    assert "X-Gateway-Order-Type" not in reply.headers
    [order] = await gw.upstream_orders()
    assert order["body"]["price"] == 1399.95 and order["body"]["order_type"] == "LIMIT"


async def test_the_ltp_is_fetched_from_the_upstream_once_for_concurrent_orders(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.set_upstream_ltp({OPT_600: "612.00"})

    replies = await asyncio.gather(*(gw.place(trader, instrument_token=OPT_600) for _ in range(5)))

    assert [r.status for r in replies] == [200] * 5
    assert {Decimal(r.headers["X-Gateway-LTP"]) for r in replies} == {Decimal("612")}
    quotes = [r for r in await gw.upstream_requests() if r["path"] == "/v3/market-quote/ltp"]
    assert len(quotes) == 1
    assert quotes[0]["query"]["instrument_key"] == OPT_600


async def test_unknown_instrument_is_refused_naming_it(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader, instrument_token="NSE_EQ|NOPE")
    assert reply.status == 422 and reply.error_code == "UDAPI1158"
    assert "NSE_EQ|NOPE" in reply.message
    assert await gw.upstream_requests() == []


@pytest.fixture
def unquoted_master(tmp_path: Path) -> Path:
    """An instrument the gateway knows but the paper broker has no price for."""
    path = tmp_path / "instruments.json"
    rows = [
        {
            "segment": "NSE_EQ",
            "instrument_type": "EQ",
            "instrument_key": "NSE_EQ|INE000TEST01",
            "trading_symbol": "TESTCO",
            "tick_size": 5.0,
            "lot_size": 1,
            "exchange_token": "1",
        },
        {
            "segment": "NSE_EQ",
            "instrument_type": "EQ",
            "instrument_key": RELIANCE,
            "trading_symbol": "RELIANCE",
            "tick_size": 10.0,
            "lot_size": 1,
            "exchange_token": "2885",
        },
    ]
    path.write_text(json.dumps(rows))
    return path


async def test_no_ltp_refuses_the_order_and_nothing_reaches_the_order_route(
    make_gateway: GatewayFactory, unquoted_master: Path
) -> None:
    gw = await make_gateway(instruments_files=str(unquoted_master))
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader, instrument_token="NSE_EQ|INE000TEST01")
    assert reply.status == 422 and reply.error_code == "UDAPI1158"
    assert "NSE_EQ|INE000TEST01" in reply.message and "no last traded price" in reply.message
    assert await gw.upstream_orders() == []
    assert [r["path"] for r in await gw.upstream_requests()] == ["/v3/market-quote/ltp"]


async def test_a_stale_ltp_refuses_the_order_naming_its_age(
    make_gateway: GatewayFactory, unquoted_master: Path
) -> None:
    gw = await make_gateway(instruments_files=str(unquoted_master))
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({"NSE_EQ|INE000TEST01": "250"})
    assert (await gw.place(trader, instrument_token="NSE_EQ|INE000TEST01")).status == 200
    gw.clock.advance(3.0)
    reply = await gw.place(trader, instrument_token="NSE_EQ|INE000TEST01")
    assert reply.status == 422 and reply.error_code == "UDAPI1158"
    assert "NSE_EQ|INE000TEST01" in reply.message and "3.0 s old" in reply.message
    assert len(await gw.upstream_orders()) == 1


async def test_reject_policy_refuses_market_orders(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(rules_market_orders="reject")
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader)
    assert reply.status == 422 and reply.error_code == "UDAPI1158"
    assert await gw.upstream_requests() == []


async def test_market_modify_of_a_known_order_is_priced_from_its_instrument(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({IDEA: "7.42"})
    placed = await gw.place(trader, instrument_token=IDEA, order_type="LIMIT", price=7.0)
    order_id = placed.data["data"]["order_id"]

    modify = {
        "order_id": order_id,
        "order_type": "MARKET",
        "quantity": 1,
        "validity": "DAY",
        "price": 0,
        "disclosed_quantity": 0,
        "trigger_price": 0,
    }
    reply = await gw.request("PUT", "/v2/order/modify", json=modify, headers=trader.bearer)

    assert reply.status == 200, reply.body
    assert reply.headers["X-Gateway-Limit-Price"] == "7.56"
    modified = (await gw.upstream_orders())[-1]
    assert modified["path"] == "/v2/order/modify"
    assert modified["body"]["order_type"] == "LIMIT" and modified["body"]["price"] == 7.56


async def test_market_modify_of_an_unknown_order_is_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    modify = {"order_id": "999", "order_type": "MARKET", "price": 0}
    reply = await gw.request("PUT", "/v2/order/modify", json=modify, headers=trader.bearer)
    assert reply.status == 422
    assert await gw.upstream_orders() == []


async def test_modify_or_cancel_of_another_accounts_order_is_refused(gw: Harness) -> None:
    owner = await gw.trader("127.0.0.2")
    other = await gw.trader("127.0.0.3")
    placed = await gw.place(owner, order_type="LIMIT", price=1400)
    order_id = placed.data["data"]["order_id"]

    modify = {"order_id": order_id, "order_type": "LIMIT", "price": 1390}
    modified = await gw.request(
        "PUT", "/v2/order/modify", ip="127.0.0.3", json=modify, headers=other.bearer
    )
    cancelled = await gw.request(
        "DELETE", f"/v2/order/cancel?order_id={order_id}", ip="127.0.0.3", headers=other.bearer
    )

    assert modified.status == 403 and cancelled.status == 403
    assert len(await gw.upstream_orders()) == 1
    own = await gw.request("DELETE", f"/v2/order/cancel?order_id={order_id}", headers=owner.bearer)
    assert own.status == 200


async def test_algo_headers_are_sent_with_every_order(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(rules_algo_id="12345", rules_algo_name="momentum")
    trader = await gw.trader("127.0.0.2")
    await gw.place(trader, order_type="LIMIT", price=1400)
    await gw.request("DELETE", "/v2/order/cancel?order_id=1", headers=trader.bearer)
    for order in await gw.upstream_orders():
        assert order["headers"]["x-algo-id"] == "12345"
        assert order["headers"]["x-algo-name"] == "momentum"


async def test_multi_place_converts_each_order(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5", IDEA: "7.42"})
    base = {
        "quantity": 1,
        "product": "D",
        "validity": "DAY",
        "price": 0,
        "tag": "m",
        "order_type": "MARKET",
        "transaction_type": "BUY",
        "disclosed_quantity": 0,
        "trigger_price": 0,
        "is_amo": False,
    }
    orders = [
        {**base, "instrument_token": RELIANCE, "correlation_id": "a"},
        {
            **base,
            "instrument_token": IDEA,
            "correlation_id": "b",
            "order_type": "LIMIT",
            "price": 7,
        },
    ]
    reply = await gw.request("POST", "/v2/order/multi/place", json=orders, headers=trader.bearer)
    assert reply.status == 200, reply.body
    [arrived] = await gw.upstream_orders()
    assert [o["price"] for o in arrived["body"]] == [1408.5, 7]
    assert [o["order_type"] for o in arrived["body"]] == ["LIMIT", "LIMIT"]
