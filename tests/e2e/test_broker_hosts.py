"""The brokers' hosts (SPEC §14): with ``upstream.upstox_orders`` set, upstox place, modify
and cancel go to that host (Upstox's HFT host) and everything else stays on
``upstream.upstox``; unset, everything goes to ``upstream.upstox`` as before."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from gateway.config import load_config
from gateway.paper.app import create_paper_app

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}
OPT = "NSE_FO|53115"  # no pushed price: its quote is fetched upstream


async def paths(server: TestServer) -> list[tuple[str, str]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(str(server.make_url("/paper/requests"))) as resp,
    ):
        return [(r["method"], r["path"]) for r in (await resp.json())["requests"]]


async def test_place_modify_cancel_go_to_the_orders_host_and_the_rest_stays(
    aiohttp_server: Any, make_gateway: GatewayFactory, paper: TestServer
) -> None:
    hft: TestServer = await aiohttp_server(create_paper_app(move_interval_s=0))
    gw: Harness = await make_gateway(upstream_upstox_orders=str(hft.make_url("")).rstrip("/"))
    trader = await gw.trader("127.0.0.2")
    await gw.set_upstream_ltp({OPT: "612.00"})

    placed = await gw.place(trader, **LIMIT)
    assert placed.status == 200, placed.body
    order_id = placed.data["data"]["order_id"]
    v3 = await gw.place(trader, path="/v3/order/place", **LIMIT)
    assert v3.status == 200, v3.body
    modify = {"order_id": order_id, "order_type": "LIMIT", "price": 1401, "quantity": 1}
    modify["validity"] = "DAY"
    for path in ("/v2/order/modify", "/v3/order/modify"):
        reply = await gw.request("PUT", path, json=modify, headers=trader.bearer)
        assert reply.status == 200, reply.body
    for path in ("/v2/order/cancel", "/v3/order/cancel"):
        reply = await gw.request("DELETE", f"{path}?order_id={order_id}", headers=trader.bearer)
        assert reply.status == 200, reply.body
    # multi-order, a read and the quote fetched for a MARKET order stay on upstream.upstox
    multi = [{**gw_order(RELIANCE), "correlation_id": "a"}]
    reply = await gw.request("POST", "/v2/order/multi/place", json=multi, headers=trader.bearer)
    assert reply.status == 200, reply.body
    read = await gw.request("GET", "/v2/order/retrieve-all", headers=trader.bearer)
    assert read.status == 200, read.body
    market = await gw.place(trader, instrument_token=OPT)
    assert market.status == 200, market.body

    assert await paths(hft) == [
        ("POST", "/v2/order/place"),
        ("POST", "/v3/order/place"),
        ("PUT", "/v2/order/modify"),
        ("PUT", "/v3/order/modify"),
        ("DELETE", "/v2/order/cancel"),
        ("DELETE", "/v3/order/cancel"),
        ("POST", "/v2/order/place"),
    ]
    assert await paths(paper) == [
        ("POST", "/v2/order/multi/place"),
        ("GET", "/v2/order/retrieve-all"),
        ("GET", "/v3/market-quote/ltp"),
    ]


async def test_the_orders_host_gets_the_accounts_egress_too(
    aiohttp_server: Any, make_gateway: GatewayFactory
) -> None:
    hft: TestServer = await aiohttp_server(create_paper_app(move_interval_s=0))
    gw: Harness = await make_gateway(upstream_upstox_orders=str(hft.make_url("")).rstrip("/"))
    trader = await gw.trader("127.0.0.2")
    await gw.admin("PUT", f"/accounts/{trader.user_id}/egress", {"ip": "127.0.0.9"})
    assert (await gw.place(trader, **LIMIT)).status == 200
    async with (
        aiohttp.ClientSession() as session,
        session.get(str(hft.make_url("/paper/orders"))) as resp,
    ):
        orders = (await resp.json())["orders"]
    assert [o["source_ip"] for o in orders] == ["127.0.0.9"]


async def test_without_an_orders_host_everything_goes_to_upstream_upstox(
    gw: Harness, paper: TestServer
) -> None:
    trader = await gw.trader("127.0.0.2")
    assert (await gw.place(trader, **LIMIT)).status == 200
    assert await paths(paper) == [("POST", "/v2/order/place")]


def test_the_hosts_are_configured_and_default_to_the_dialects_own() -> None:
    plain = load_config(None, {"GATEWAY_UPSTREAM_UPSTOX": "https://api.upstox.com"})
    assert (plain.upstream.upstox_orders, plain.upstream.kotak_login) == (None, None)
    assert plain.upstream.hosts == {}
    assert plain.upstream.login_relay is False
    both = load_config(
        None,
        {
            "GATEWAY_UPSTREAM_UPSTOX": "https://api.upstox.com",
            "GATEWAY_UPSTREAM_UPSTOX_ORDERS": "https://api-hft.upstox.com",
            "GATEWAY_UPSTREAM_KOTAK_LOGIN": "https://mis.kotaksecurities.com",
            "GATEWAY_UPSTREAM_LOGIN_RELAY": "true",
        },
    )
    assert both.upstream.hosts == {
        "upstox.orders": "https://api-hft.upstox.com",
        "kotak.login": "https://mis.kotaksecurities.com",
    }
    assert both.upstream.login_relay is True
    assert not both.upstream.embedded


def gw_order(instrument: str) -> dict[str, Any]:
    return {
        "quantity": 1,
        "product": "D",
        "validity": "DAY",
        "price": 1400,
        "tag": "t",
        "instrument_token": instrument,
        "order_type": "LIMIT",
        "transaction_type": "BUY",
        "disclosed_quantity": 0,
        "trigger_price": 0,
        "is_amo": False,
    }
