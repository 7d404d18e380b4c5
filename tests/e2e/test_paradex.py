"""The paradex dialect against a real gateway and paper broker."""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness, Login

PERP = "BTC-USD-PERP"


def order(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "market": PERP,
        "side": "BUY",
        "type": "MARKET",
        "size": "0.1",
        "client_id": "c1",
        "signature": "0xabc",
        "signature_timestamp": 1794801600000,
    }
    body.update(overrides)
    return body


async def place(gw: Harness, login: Login, ip: str | None = None, **overrides: Any) -> Any:
    return await gw.request(
        "POST", "/v1/orders", ip=ip or login.ip, json=order(**overrides), headers=login.bearer
    )


async def test_an_order_is_forwarded_unchanged_with_the_algo_id(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await place(gw, trader)

    assert reply.status == 201, reply.body
    assert "X-Gateway-Order-Type" not in reply.headers
    [got] = await gw.upstream_orders()
    assert got["body"] == order()
    assert got["headers"]["x-algo-id"] == "99999"
    assert got["headers"]["x-gateway-user-id"] == trader.user_id
    assert "authorization" not in got["headers"]


@pytest.mark.parametrize(
    ("headers", "ip", "status", "code"),
    [
        ({"Authorization": "Bearer nope"}, "127.0.0.2", 401, "INVALID_TOKEN"),
        ({}, "127.0.0.2", 401, "INVALID_TOKEN"),
        (None, "127.0.0.3", 403, "IP_NOT_REGISTERED"),
    ],
)
async def test_refusals_reach_nothing_upstream(
    gw: Harness, headers: dict[str, str] | None, ip: str, status: int, code: str
) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.request(
        "POST",
        "/v1/orders",
        ip=ip,
        json=order(),
        headers=trader.bearer if headers is None else headers,
    )

    assert reply.status == status, reply.body
    assert reply.data["error"] == code
    assert reply.data["message"]
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (order(side="HOLD"), "side must be BUY or SELL"),
        (order(size=0.1), "size must be a decimal string"),
        (order(size="1e3"), "size must be a decimal string"),
        (order(size="0"), "size must be positive"),
        (order(surprise=1), "unknown field 'surprise'"),
        ({"market": PERP}, "missing side, type, size"),
        ([order()], "order must be a JSON object"),
    ],
)
async def test_bad_orders_are_refused(gw: Harness, body: Any, named: str) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.request("POST", "/v1/orders", json=body, headers=trader.bearer)

    assert reply.status == 400, reply.body
    assert reply.data["error"] == "BAD_REQUEST"
    assert named in reply.data["message"]
    assert await gw.upstream_requests() == []


async def test_batch_then_cancel_one_and_cancel_all(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    batch = await gw.request(
        "POST",
        "/v1/orders/batch",
        json=[order(client_id="a"), order(client_id="b", side="SELL")],
        headers=trader.bearer,
    )
    assert batch.status == 201, batch.body
    first, second = (o["id"] for o in batch.data["orders"])

    cancel = await gw.request("DELETE", f"/v1/orders/{first}", headers=trader.bearer)
    assert cancel.status == 204, cancel.body
    cancel_all = await gw.request("DELETE", f"/v1/orders?market={PERP}", headers=trader.bearer)
    assert cancel_all.status == 204, cancel_all.body

    got = await gw.upstream_orders()
    assert [(o["method"], o["path"]) for o in got] == [
        ("POST", "/v1/orders/batch"),
        ("DELETE", f"/v1/orders/{first}"),
        ("DELETE", "/v1/orders"),
    ]
    assert got[2]["order_ids"] == [second]
    assert all(o["headers"]["x-algo-id"] == "99999" for o in got)


async def test_another_accounts_order_cannot_be_cancelled(gw: Harness) -> None:
    alice = await gw.trader("127.0.0.2")
    bob = await gw.trader("127.0.0.3")
    placed = await place(gw, alice)
    order_id = placed.data["id"]

    reply = await gw.request("DELETE", f"/v1/orders/{order_id}", ip="127.0.0.3", headers=bob.bearer)

    assert reply.status == 403, reply.body
    assert reply.data["error"] == "FOREIGN_ORDER"
    assert len(await gw.upstream_orders()) == 1


async def test_modify_is_an_order_route(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    placed = await place(gw, trader, type="LIMIT", price="100")
    order_id = placed.data["id"]
    body = order(type="LIMIT", price="101", id=order_id)

    outside = await gw.request(
        "PUT", f"/v1/orders/{order_id}", ip="127.0.0.3", json=body, headers=trader.bearer
    )
    mismatched = await gw.request("PUT", "/v1/orders/other", json=body, headers=trader.bearer)

    assert outside.status == 403
    assert mismatched.status == 400
    assert len(await gw.upstream_requests()) == 1


async def test_reads_are_forwarded_with_authentication_only(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    reply = await gw.request("GET", "/v1/orders", ip="127.0.0.9", headers=trader.bearer)

    assert reply.status == 200, reply.body
    [seen] = await gw.upstream_requests()
    assert (seen["method"], seen["path"]) == ("GET", "/v1/orders")


async def test_rate_limited(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    for i in range(10):
        assert (await place(gw, trader, client_id=f"c{i}")).status == 201

    reply = await place(gw, trader, client_id="c10")

    assert reply.status == 429
    assert reply.data["error"] == "RATE_LIMITED"
    assert int(reply.headers["Retry-After"]) >= 1
    assert len(await gw.upstream_orders()) == 10


async def test_api_tokens_place_orders_from_registered_ips_inside_the_allowlist(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    created = await gw.request(
        "POST",
        "/v1/account/tokens",
        json={
            "name": "bot",
            "token_type": "api_key",
            "expiry_duration": 3600,
            "allowed_cidrs": ["127.0.0.0/29"],
        },
        headers=trader.bearer,
    )
    token = Login(trader.user_id, "", "", created.data["token"])

    inside = await place(gw, token, ip="127.0.0.2")
    unregistered = await place(gw, token, ip="127.0.0.3")
    outside = await place(gw, token, ip="127.0.0.9")

    assert inside.status == 201, inside.body
    assert (unregistered.status, unregistered.data["error"]) == (403, "IP_NOT_REGISTERED")
    assert "came from 127.0.0.3" in unregistered.data["message"]
    assert "registered IPs: 127.0.0.2" in unregistered.data["message"]
    assert (outside.status, outside.data["error"]) == (403, "CIDR_NOT_ALLOWED")
    assert len(await gw.upstream_orders()) == 1


async def test_the_grid_is_off_by_default_even_for_known_instruments(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})

    reply = await place(gw, trader, market=RELIANCE)

    assert reply.status == 201, reply.body
    [got] = await gw.upstream_orders()
    assert got["body"]["type"] == "MARKET"


async def test_with_the_grid_on_only_master_instruments_convert(
    make_gateway: GatewayFactory,
) -> None:
    gw = await make_gateway(rules_paradex_grid="true")
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({RELIANCE: "1401.5"})

    known = await place(gw, trader, market=RELIANCE)
    unknown = await place(gw, trader, client_id="c2")

    assert known.status == 201, known.body
    assert known.headers["X-Gateway-Order-Type"] == "LIMIT"
    assert known.headers["X-Gateway-Limit-Price"] == "1408.5"
    assert unknown.status == 201, unknown.body
    converted, unchanged = await gw.upstream_orders()
    assert (converted["body"]["type"], converted["body"]["price"]) == ("LIMIT", "1408.5")
    assert unchanged["body"]["type"] == "MARKET"


async def test_with_the_grid_on_no_ltp_is_refused(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(rules_paradex_grid="true")
    trader = await gw.trader("127.0.0.2")

    reply = await place(gw, trader, market=RELIANCE)

    assert reply.status == 422, reply.body
    assert reply.data["error"] == "LTP_UNAVAILABLE"
    assert RELIANCE in reply.data["message"]
    assert await gw.upstream_orders() == []
