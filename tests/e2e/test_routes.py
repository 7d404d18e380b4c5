"""The route tables at work (SPEC §2, §10): no order route unguarded, no write forwarded that
the table does not know, and the upstream sees only the order id the gateway checked."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import upstox_client

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness, Login, form
from .conftest import Kotak, kotak_headers

TWAP = {
    "algo_type": "TWAP",
    "duration_seconds": 600,
    "market": "BTC-USD-PERP",
    "side": "BUY",
    "size": "0.5",
    "type": "MARKET",
    "signature": "[1,2]",
    "signature_timestamp": 1794801600000,
}


def headers_for(dialect: str, login: Login) -> dict[str, str]:
    return kotak_headers(login) if dialect == "kotak" else login.bearer


def envelope_code(dialect: str, data: Any) -> object:
    if dialect == "upstox":
        return data["errors"][0]["error_code"]
    if dialect == "kotak":
        return data["stCode"]
    return data["error"]


# fail closed (SPEC §2) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dialect", "method", "path", "code"),
    [
        ("upstox", "POST", "/v2/order/unknown", "UDAPI9404"),
        ("upstox", "DELETE", "/v3/order/gtt/unknown", "UDAPI9404"),
        ("kotak", "POST", "/quick/order/rule/xx/place", 9404),
        ("paradex", "POST", "/v1/orders/unknown/x", "NOT_FOUND"),
        ("paradex", "PATCH", "/v1/orders/abc", "NOT_FOUND"),
        ("paradex", "POST", "/v1/algo/orders/abc/amend", "NOT_FOUND"),
        ("paradex", "PUT", "/v1/block-trades/b1", "NOT_FOUND"),
    ],
)
async def test_an_unknown_write_under_an_order_prefix_is_refused_not_forwarded(
    gw: Harness, dialect: str, method: str, path: str, code: object
) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.request(
        method, path, ip=trader.ip, data=b"{}", headers=headers_for(dialect, trader)
    )

    assert reply.status == 404, reply.body
    assert envelope_code(dialect, reply.data) == code
    assert "never forwarded" in reply.message
    assert await gw.upstream_requests() == []


async def test_a_listed_read_under_an_order_prefix_is_forwarded(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.request(
        "POST",
        "/quick/order/history",
        ip=trader.ip,
        data=form({"nOrdNo": "260101000001"}),
        headers={**kotak_headers(trader), "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert reply.status == 200, reply.body
    [got] = await gw.upstream_requests()
    assert (got["path"], got["body"]) == (
        "/quick/order/history",
        {"jData": {"nOrdNo": "260101000001"}},
    )
    assert got["headers"]["x-gateway-user-id"] == trader.user_id
    assert "x-algo-id" not in got["headers"]  # a read, not an order


# new order routes: IP-enforced, tagged (SPEC §2) -----------------------------------------------


@pytest.mark.parametrize("path", ["/quick/order/co/exit", "/quick/order/bo/exit"])
async def test_kotak_cover_and_bracket_exits_are_order_routes(
    gw: Harness, kotak: Kotak, path: str
) -> None:
    trader = await gw.trader("127.0.0.2")
    stranger = await gw.login(trader, ip="127.0.0.4")
    exit_body = form({"on": "260101000009", "am": "NO"})

    refused = await kotak.post(stranger, path, exit_body)
    assert refused.status == 403 and refused.data["stCode"] == 100008
    assert await gw.upstream_requests() == []

    reply = await kotak.post(trader, path, exit_body)
    assert reply.status == 200, reply.body
    [got] = await gw.upstream_requests()
    assert got["path"] == path
    assert got["body"] == {"jData": {"on": "260101000009", "am": "NO"}}
    assert got["headers"]["x-algo-id"] == "99999"


async def test_a_paradex_twap_is_an_order_route(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    refused = await gw.request(
        "POST", "/v1/algo/orders", ip="127.0.0.3", json=TWAP, headers=trader.bearer
    )
    assert refused.status == 403 and refused.data["error"] == "IP_NOT_REGISTERED"
    assert await gw.upstream_requests() == []

    placed = await gw.request(
        "POST", "/v1/algo/orders", ip=trader.ip, json=TWAP, headers=trader.bearer
    )
    assert placed.status == 201, placed.body
    [got] = await gw.upstream_orders()
    assert got["body"] == TWAP  # forwarded as signed: the grid is off for paradex by default
    assert got["headers"]["x-algo-id"] == "99999"

    algo_id = placed.data["id"]
    other = await gw.trader("127.0.0.3")
    foreign = await gw.request(
        "DELETE", f"/v1/algo/orders/{algo_id}", ip=other.ip, headers=other.bearer
    )
    assert foreign.status == 403 and foreign.data["error"] == "FOREIGN_ORDER"
    cancelled = await gw.request(
        "DELETE", f"/v1/algo/orders/{algo_id}", ip=trader.ip, headers=trader.bearer
    )
    assert cancelled.status == 204, cancelled.body


async def test_the_grid_refuses_a_twap_it_would_have_to_price(
    make_gateway: GatewayFactory,
) -> None:
    # with rules.paradex_grid on, a market the instrument master knows is priced by the grid;
    # a TWAP's MARKET children cannot be, so it is refused rather than forwarded unpriced
    gw = await make_gateway(rules_paradex_grid="true")
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})

    reply = await gw.request(
        "POST",
        "/v1/algo/orders",
        ip=trader.ip,
        json={**TWAP, "market": RELIANCE},
        headers=trader.bearer,
    )

    assert reply.status == 422, reply.body
    assert reply.data["error"] == "MARKET_REJECTED"
    assert RELIANCE in reply.message
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/block-trades", {"nonce": "n1", "block_expiration": 1, "trades": {}}),
        ("POST", "/v1/block-trades/b1/execute", {"execution_nonce": "e1", "signatures": {}}),
        ("DELETE", "/v1/block-trades/b1", None),
        ("POST", "/v1/block-trades/b1/offers", {"nonce": "n2", "trades": {}}),
        ("POST", "/v1/block-trades/b1/offers/o1/execute", {"execution_nonce": "e2"}),
        ("DELETE", "/v1/block-trades/b1/offers/o1", None),
    ],
)
async def test_block_trade_writes_are_order_routes(
    gw: Harness, method: str, path: str, body: Any
) -> None:
    trader = await gw.trader("127.0.0.2")

    refused = await gw.request(method, path, ip="127.0.0.3", json=body, headers=trader.bearer)
    assert refused.status == 403 and refused.data["error"] == "IP_NOT_REGISTERED"
    assert await gw.upstream_requests() == []

    reply = await gw.request(method, path, ip=trader.ip, json=body, headers=trader.bearer)
    assert reply.status < 300, reply.body
    [got] = await gw.upstream_requests()
    assert (got["method"], got["path"], got["body"]) == (method, path, body)
    assert got["headers"]["x-algo-id"] == "99999"


# the query string rebuilt (SPEC §10) ---------------------------------------------------------


async def _own_upstox_order(gw: Harness, trader: Login) -> str:
    placed = await gw.place(trader, order_type="LIMIT", price=1400)
    assert placed.status == 200, placed.body
    return str(placed.data["data"]["order_id"])


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("/v2/order/cancel?order_id={own}&order_id={other}", "given twice"),
        ("/v2/order/cancel?order_id={own}&tag=x", "unknown query parameter 'tag'"),
        ("/v3/order/cancel?order_id={own}&order_id={own}", "given twice"),
    ],
)
async def test_a_cancel_query_that_could_reach_another_order_is_refused(
    gw: Harness, target: str, says: str
) -> None:
    trader = await gw.trader("127.0.0.2")
    own = await _own_upstox_order(gw, trader)
    before = len(await gw.upstream_requests())

    reply = await gw.request(
        "DELETE", target.format(own=own, other="OTHER1"), ip=trader.ip, headers=trader.bearer
    )

    assert reply.status == 400, reply.body
    assert reply.error_code == "UDAPI9400"
    assert says in reply.message
    assert len(await gw.upstream_requests()) == before


async def test_an_upstox_modify_with_the_order_id_also_in_the_query_is_refused(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    own = await _own_upstox_order(gw, trader)
    before = len(await gw.upstream_requests())
    modify = {
        "order_id": own,
        "order_type": "LIMIT",
        "price": 1401,
        "quantity": 1,
        "validity": "DAY",
    }

    reply = await gw.request(
        "PUT", "/v2/order/modify?order_id=OTHER1", ip=trader.ip, json=modify, headers=trader.bearer
    )

    assert reply.status == 400, reply.body
    assert "'order_id' is given in both the body and the query string" in reply.message
    assert len(await gw.upstream_requests()) == before


async def test_a_paradex_cancel_with_a_second_id_in_the_query_is_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    before = len(await gw.upstream_requests())

    reply = await gw.request(
        "DELETE", "/v1/orders/OWN1?id=OTHER1", ip=trader.ip, headers=trader.bearer
    )

    assert reply.status == 400, reply.body
    assert reply.data["error"] == "BAD_REQUEST"
    assert "given in both the path and the query string" in reply.message
    assert len(await gw.upstream_requests()) == before


async def test_the_upstream_gets_the_rebuilt_target(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    own = await _own_upstox_order(gw, trader)

    # the Upstox SDK sends {} as the body of every cancel (SPEC §2)
    reply = await gw.request(
        "DELETE",
        f"/v2/order/cancel?order_id={own}",
        ip=trader.ip,
        data=b"{}",
        headers={**trader.bearer, "Content-Type": "application/json"},
    )

    assert reply.status == 200, reply.body
    got = (await gw.upstream_requests())[-1]
    assert (got["method"], got["path"], got["query"]) == (
        "DELETE",
        "/v2/order/cancel",
        {"order_id": own},
    )
    assert got["body"] is None


# market_protection (SPEC §2) -----------------------------------------------------------------


async def test_market_protection_is_forwarded_as_sent(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.place(
        trader, path="/v3/order/place", order_type="LIMIT", price=1400, market_protection=-1
    )

    assert reply.status == 200, reply.body
    [got] = await gw.upstream_orders()
    assert got["body"]["market_protection"] == -1


@pytest.mark.parametrize("value", [26, "5", 2.5, True])
async def test_a_bad_market_protection_is_refused_naming_the_field(
    gw: Harness, value: object
) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.place(trader, path="/v3/order/place", market_protection=value)

    assert reply.status == 400, reply.body
    assert "market_protection" in reply.message
    assert await gw.upstream_requests() == []


# the real Upstox SDK (upstox-python-sdk 2.30): its {} body on every cancel (SPEC §2) ---------


@pytest.mark.sdk
@pytest.mark.parametrize("version", ["2.0", "3.0"])
async def test_the_upstox_sdk_cancels_with_its_empty_json_body(gw: Harness, version: str) -> None:
    # the SDK connects from 127.0.0.1, so that is the IP the account registers
    trader = await gw.trader("127.0.0.1")
    own = await _own_upstox_order(gw, trader)
    configuration = upstox_client.Configuration()
    configuration.host = configuration.order_host = gw.url
    configuration.access_token = trader.token
    client = upstox_client.ApiClient(configuration)

    if version == "2.0":
        cancelled = await asyncio.to_thread(
            upstox_client.OrderApi(client).cancel_order, own, version
        )
    else:
        cancelled = await asyncio.to_thread(upstox_client.OrderApiV3(client).cancel_order, own)

    assert cancelled.status == "success"
    assert cancelled.data.order_id == own
    got = (await gw.upstream_requests())[-1]
    assert (got["method"], got["query"], got["body"]) == ("DELETE", {"order_id": own}, None)
