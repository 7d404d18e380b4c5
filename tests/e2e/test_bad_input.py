"""Bad input gets a clear 4xx in the dialect's envelope; nothing goes upstream, no state changes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ..conftest import GatewayFactory
from ..harness import Harness, market_order

LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


async def raw_request(gw: Harness, request: bytes, *, ip: str = "127.0.0.2") -> tuple[int, bytes]:
    """Send bytes as they are: no client library normalises the target."""
    host, port = gw.gateway.host, gw.gateway.port
    assert port is not None
    reader, writer = await asyncio.open_connection(host, port, local_addr=(ip, 0))
    writer.write(request)
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    status_line, _, rest = data.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def order_json(**fields: Any) -> bytes:
    import json

    return json.dumps(market_order(**fields)).encode()


BAD_BODIES: list[tuple[str, bytes, str]] = [
    ("malformed", b'{"quantity": 1,', "not valid JSON"),
    ("not an object", b"[]", "must be a JSON object"),
    ("duplicate key", order_json(**LIMIT)[:-1] + b', "price": 1}', "duplicate JSON key 'price'"),
    ("NaN", order_json(**LIMIT).replace(b'"price": 1400', b'"price": NaN'), "NaN"),
    ("Infinity", order_json(**LIMIT).replace(b'"price": 1400', b'"price": Infinity'), "Infinity"),
    ("bool quantity", order_json(quantity=True, **LIMIT), "quantity must be an integer"),
    ("string quantity", order_json(quantity="1", **LIMIT), "quantity must be an integer"),
    ("bool price", order_json(order_type="LIMIT", price=True), "price must be a number"),
    ("unknown order type", order_json(order_type="STOP"), "order_type must be"),
    ("unknown side", order_json(transaction_type="HOLD", **LIMIT), "transaction_type must be"),
    ("unknown field", order_json(colour="red", **LIMIT), "unknown field 'colour'"),
    ("missing field", order_json(**LIMIT).replace(b'"validity": "DAY", ', b""), "missing validity"),
    ("negative price", order_json(order_type="LIMIT", price=-1), "must not be negative"),
    ("zero quantity", order_json(quantity=0, **LIMIT), "quantity must be positive"),
    ("not utf-8", b'{"tag": "\xff"}', "UTF-8"),
]


@pytest.mark.parametrize(("name", "body", "says"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
async def test_bad_order_bodies_get_400_in_the_upstox_envelope(
    gw: Harness, name: str, body: bytes, says: str
) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.request(
        "POST",
        "/v2/order/place",
        data=body,
        headers={**trader.bearer, "Content-Type": "application/json"},
    )
    assert reply.status == 400
    assert reply.error_code == "UDAPI9400"
    assert says in reply.message
    assert await gw.upstream_requests() == []


async def test_bad_input_changes_no_state(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    for _, body, _ in BAD_BODIES:
        await gw.request("POST", "/v2/order/place", data=body, headers=trader.bearer)
    # the rate window is untouched and the session still trades
    assert [(await gw.place(trader, **LIMIT)).status for _ in range(10)] == [200] * 10


async def test_a_body_over_the_limit_is_refused(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(server_max_body_bytes="1024")
    trader = await gw.trader("127.0.0.2")
    big = order_json(tag="x" * 2000, **LIMIT)
    reply = await gw.request("POST", "/v2/order/place", data=big, headers=trader.bearer)
    assert reply.status == 413 and reply.error_code == "UDAPI9413"
    assert await gw.upstream_requests() == []


async def test_a_chunked_body_over_the_limit_is_refused(make_gateway: GatewayFactory) -> None:
    gw = await make_gateway(server_max_body_bytes="1024")
    trader = await gw.trader("127.0.0.2")

    async def chunks() -> Any:
        for _ in range(4):
            yield b" " * 600

    reply = await gw.request("POST", "/v2/order/place", data=chunks(), headers=trader.bearer)
    assert reply.status == 413
    assert await gw.upstream_requests() == []


async def test_duplicate_authorization_headers_are_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    body = order_json(**LIMIT)
    request = (
        b"POST /v2/order/place HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
        + f"Authorization: Bearer {trader.token}\r\n".encode() * 2
        + b"Content-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    status, response = await raw_request(gw, request)
    assert status == 400 and b"UDAPI9400" in response and b"more than once" in response
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    "target",
    [
        "/v2/order/../order/place",
        "/v2/order/%2e%2e/order/place",
        "/v2/order/%2E%2E/order/place",
        "/v2/order%2fplace",
        "/v2/order/place%00",
        "//v2/order/place",
        "/v2//order/place",
        "/v2/order/./place",
        "/v2/order\\place",
        "/v2/order%5cplace",
    ],
)
async def test_non_canonical_paths_are_refused(gw: Harness, target: str) -> None:
    trader = await gw.trader("127.0.0.2")
    body = order_json(**LIMIT)
    request = (
        f"POST {target} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
        f"Authorization: Bearer {trader.token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    status, response = await raw_request(gw, request)
    assert status == 400, response
    assert await gw.upstream_requests() == []


async def test_absolute_form_targets_are_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    request = (
        f"GET http://upstream.example/v2/user/profile HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n"
        f"Authorization: Bearer {trader.token}\r\n\r\n"
    ).encode()
    status, _ = await raw_request(gw, request)
    assert status == 400
    assert await gw.upstream_requests() == []


async def test_a_wrong_method_on_an_order_route_is_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.request("GET", "/v2/order/place", headers=trader.bearer)
    assert reply.status == 405 and reply.error_code == "UDAPI9405"
    assert await gw.upstream_requests() == []


async def test_cancel_without_an_order_id_is_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.request("DELETE", "/v2/order/cancel", headers=trader.bearer)
    assert reply.status == 400 and "order_id" in reply.message
    assert await gw.upstream_requests() == []


async def test_the_gateway_keeps_serving_after_bad_input(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    await raw_request(gw, b"GARBAGE\r\n\r\n")
    await raw_request(gw, b"POST /v2/order/place HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n")
    assert (await gw.place(trader, **LIMIT)).status == 200
