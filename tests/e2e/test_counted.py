"""Orders, not requests (SPEC §7): a request takes one rate-limit slot per order it carries, all
at once or none, on a real gateway in front of the paper broker (and two gateways on one
Redis).  Bad input takes no slot: the window is filled to 9 first, so a slot taken by mistake
would turn the good order after it into a 429."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import GatewayFactory
from ..harness import Harness, Login, Reply, market_order

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}
MULTI = "/v2/order/multi/place"
V3 = "/v3/order/place"
NIFTY_FUT = "NSE_FO|52977"  # freeze quantity 1820 in the shipped instrument master
FREEZE = 1820


def legs(count: int, **overrides: Any) -> list[dict[str, Any]]:
    return [
        market_order(correlation_id=f"c{i}", tag=f"leg{i}", **{**LIMIT, **overrides})
        for i in range(count)
    ]


async def multi(gw: Harness, login: Login, orders: list[dict[str, Any]]) -> Reply:
    return await gw.request("POST", MULTI, ip=login.ip, json=orders, headers=login.bearer)


async def orders_upstream(gw: Harness) -> int:
    """Orders the paper broker took: a multi-order counts its legs."""
    return sum(len(o["order_ids"]) for o in await gw.upstream_orders())


async def fill_to(gw: Harness, login: Login, count: int) -> None:
    for _ in range(count):
        reply = await gw.place(login, **LIMIT)
        assert reply.status == 200, reply.body


async def test_a_multi_order_over_the_limit_is_refused_whole(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    refused = await multi(gw, trader, legs(25))

    assert refused.status == 422
    assert refused.error_code == "UDAPI94222"
    assert "25 orders" in refused.message and "limit of 10" in refused.message
    assert await gw.upstream_requests() == []
    # nothing was counted: the whole window is still free
    await fill_to(gw, trader, 10)
    assert (await gw.place(trader, **LIMIT)).status == 429


async def test_a_multi_order_takes_all_its_slots_or_none(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    six = await multi(gw, trader, legs(6))
    five = await multi(gw, trader, legs(5))

    assert six.status == 200, six.body
    assert five.status == 429
    assert five.error_code == "UDAPI10005"
    assert "these 5 orders" in five.message
    assert int(five.headers["Retry-After"]) >= 1
    assert await orders_upstream(gw) == 6
    # the refused five took nothing: four single orders still fit, the fifth does not
    await fill_to(gw, trader, 4)
    assert (await gw.place(trader, **LIMIT)).status == 429
    assert await orders_upstream(gw) == 10


async def test_the_window_frees_one_second_later(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    assert (await multi(gw, trader, legs(10))).status == 200
    assert (await gw.place(trader, **LIMIT)).status == 429

    gw.clock.advance(1.001)

    assert (await multi(gw, trader, legs(10))).status == 200
    assert await orders_upstream(gw) == 20


async def test_queue_mode_holds_a_multi_order_until_all_its_slots_are_free(
    make_gateway: GatewayFactory,
) -> None:
    gw = await make_gateway(rules_rate_limit_mode="queue", rules_queue_max_wait_ms="1500")
    trader = await gw.trader("127.0.0.2")
    assert (await multi(gw, trader, legs(6))).status == 200
    before = gw.clock.monotonic()

    held = await multi(gw, trader, legs(5))

    assert held.status == 200, held.body
    assert gw.clock.monotonic() - before >= 1.0  # five slots were free only after a second
    assert await orders_upstream(gw) == 11


@pytest.mark.redis
async def test_orders_are_counted_across_two_gateways_on_one_redis(
    redis_store_url: str, make_gateway: GatewayFactory
) -> None:
    a = await make_gateway(store_url=redis_store_url)
    b = await make_gateway(store_url=redis_store_url)
    trader = await a.trader("127.0.0.2")

    six = await multi(a, trader, legs(6))
    five = await multi(b, trader, legs(5))

    assert six.status == 200, six.body
    assert five.status == 429
    assert five.error_code == "UDAPI10005"
    assert await orders_upstream(a) == 6
    assert (await multi(b, trader, legs(4))).status == 200  # exactly the four left
    assert (await a.place(trader, **LIMIT)).status == 429
    assert await orders_upstream(b) == 10


async def test_a_sliced_place_counts_its_slices(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    sliced = await gw.place(
        trader,
        path=V3,
        instrument_token=NIFTY_FUT,
        quantity=3 * FREEZE,
        slice=True,
        order_type="LIMIT",
        price=25000,
    )

    assert sliced.status == 200, sliced.body
    # 3 slices + 7 single orders fill the 10; the 8th single order is over the limit
    await fill_to(gw, trader, 7)
    assert (await gw.place(trader, **LIMIT)).status == 429


@pytest.mark.parametrize(
    ("quantity", "counted"),
    [(FREEZE, 1), (FREEZE + 1, 2), (10 * FREEZE, 10)],
)
async def test_slices_round_up(gw: Harness, quantity: int, counted: int) -> None:
    trader = await gw.trader("127.0.0.2")
    order = {"instrument_token": NIFTY_FUT, "quantity": quantity, "slice": True, **LIMIT}

    assert (await gw.place(trader, path=V3, **order)).status == 200

    await fill_to(gw, trader, 10 - counted)
    assert (await gw.place(trader, **LIMIT)).status == 429


async def test_a_sliced_place_over_the_limit_is_refused_whole(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    order = {"instrument_token": NIFTY_FUT, "quantity": 10 * FREEZE + 1, "slice": True, **LIMIT}

    refused = await gw.place(trader, path=V3, **order)

    assert refused.status == 422
    assert refused.error_code == "UDAPI94222"
    assert "11 orders" in refused.message
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    "order",
    [
        # an instrument the master does not know: its freeze quantity is unknown
        {"instrument_token": "NSE_EQ|INE000UNKNOWN", "quantity": 10 * FREEZE, "slice": True},
        # not sliced: the broker places it as one order whatever its quantity
        {"instrument_token": NIFTY_FUT, "quantity": 5 * FREEZE, "slice": False},
        {"instrument_token": NIFTY_FUT, "quantity": 5 * FREEZE},
    ],
)
async def test_a_place_counts_one_when_it_is_not_split(gw: Harness, order: dict[str, Any]) -> None:
    trader = await gw.trader("127.0.0.2")

    assert (await gw.place(trader, path=V3, **order, **LIMIT)).status == 200

    await fill_to(gw, trader, 9)
    assert (await gw.place(trader, **LIMIT)).status == 429


async def test_sliced_legs_of_a_multi_order_count_their_slices(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    orders = legs(2, instrument_token=NIFTY_FUT, quantity=2 * FREEZE, slice=True)

    assert (await multi(gw, trader, orders)).status == 200

    await fill_to(gw, trader, 6)  # 2 legs x 2 slices + 6 = 10
    assert (await gw.place(trader, **LIMIT)).status == 429


async def test_a_cancel_counts_one(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await fill_to(gw, trader, 9)

    cancel = await gw.request(
        "DELETE", "/v2/order/cancel?order_id=1", ip=trader.ip, headers=trader.bearer
    )

    assert cancel.status == 200, cancel.body
    assert (await gw.place(trader, **LIMIT)).status == 429


def _wrong_type_in_the_seventh(orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    orders[6]["quantity"] = "5"
    return orders


BAD_INPUT: list[Any] = [
    pytest.param(MULTI, _wrong_type_in_the_seventh(legs(7)), "order 6: quantity", id="multi-7th"),
    pytest.param(
        V3,
        market_order(instrument_token=NIFTY_FUT, quantity=-3 * FREEZE, slice=True, **LIMIT),
        "quantity must be positive",
        id="slice-negative-quantity",
    ),
    pytest.param(
        V3,
        market_order(instrument_token=NIFTY_FUT, quantity=0, slice=True, **LIMIT),
        "quantity must be positive",
        id="slice-zero-quantity",
    ),
    pytest.param(
        V3,
        market_order(slice="yes", **LIMIT),
        "slice must be true or false",
        id="slice-not-a-boolean",
    ),
    pytest.param(
        V3, market_order(market_protection=26, **LIMIT), "market_protection", id="protection-26"
    ),
    pytest.param(
        V3,
        market_order(market_protection="5", **LIMIT),
        "market_protection",
        id="protection-string",
    ),
    pytest.param(
        MULTI,
        [*legs(2), market_order(correlation_id="c9", market_protection=26, **LIMIT)],
        "order 2: market_protection",
        id="multi-protection-26",
    ),
]


@pytest.mark.parametrize(("path", "body", "says"), BAD_INPUT)
async def test_bad_input_is_refused_with_nothing_upstream_and_no_slot(
    gw: Harness, path: str, body: Any, says: str
) -> None:
    trader = await gw.trader("127.0.0.2")
    await fill_to(gw, trader, 9)
    before = await gw.upstream_requests()

    refused = await gw.request("POST", path, ip=trader.ip, json=body, headers=trader.bearer)

    assert refused.status == 400, refused.body
    assert refused.error_code == "UDAPI9400"
    assert says in refused.message
    assert await gw.upstream_requests() == before
    assert (await gw.place(trader, **LIMIT)).status == 200  # the tenth: no slot was taken
    assert (await gw.place(trader, **LIMIT)).status == 429


def paradex_order(client_id: str) -> dict[str, Any]:
    return {
        "market": "BTC-USD-PERP",
        "side": "BUY",
        "type": "LIMIT",
        "size": "0.1",
        "price": "90000",
        "client_id": client_id,
        "signature": "0xabc",
        "signature_timestamp": 1794801600000,
    }


async def test_a_paradex_batch_counts_its_orders(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    batch = "/v1/orders/batch"

    six = await gw.request(
        "POST", batch, json=[paradex_order(f"a{i}") for i in range(6)], headers=trader.bearer
    )
    five = await gw.request(
        "POST", batch, json=[paradex_order(f"b{i}") for i in range(5)], headers=trader.bearer
    )

    assert six.status == 201, six.body
    assert five.status == 429
    assert five.data["error"] == "RATE_LIMITED"
    assert await orders_upstream(gw) == 6


@pytest.mark.parametrize(
    ("ids", "status"),
    [
        ({"order_ids": [f"o{i}" for i in range(6)], "client_order_ids": ["x"] * 5}, 422),
        ({"client_order_ids": [f"c{i}" for i in range(11)]}, 422),
        ({"order_ids": [f"o{i}" for i in range(10)]}, None),
    ],
)
async def test_a_paradex_batch_cancel_counts_its_ids(
    gw: Harness, ids: dict[str, list[str]], status: int | None
) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.request("DELETE", "/v1/orders/batch", json=ids, headers=trader.bearer)

    if status == 422:
        assert reply.status == 422
        assert reply.data["error"] == "TOO_MANY_ORDERS"
        assert "11 orders" in reply.data["message"]
        assert await gw.upstream_requests() == []
    else:  # ten ids: admitted, and the window is full
        assert reply.status < 300, reply.body
        assert (await gw.place(trader, **LIMIT)).status == 429
