from __future__ import annotations

from ..harness import RELIANCE, Harness


async def test_market_buy_arrives_as_limit_at_the_grid_price(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})

    reply = await gw.place(trader)

    assert reply.status == 200, reply.body
    assert reply.headers["X-Gateway-Order-Type"] == "LIMIT"
    assert (
        reply.headers["X-Gateway-Limit-Price"] == "1408.5"
    )  # 1401.5 + 0.5% = 1408.5075, tick 0.10
    assert reply.headers["X-Gateway-LTP"] == "1401.5"
    [order] = await gw.upstream_orders()
    assert order["body"]["order_type"] == "LIMIT"
    assert order["body"]["price"] == 1408.5
    assert order["headers"]["x-algo-id"] == "99999"
    assert order["headers"]["x-gateway-user-id"] == trader.user_id
