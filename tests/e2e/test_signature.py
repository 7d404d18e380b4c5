"""SPEC §10: with ``upstream.shared_secret`` every forwarded request is signed over its method,
whole target, user id, timestamp and body; the verification code in
``docs/upstream-signature.md`` is run here against what a real upstream received."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.upstream import sign

from ..conftest import GatewayFactory
from ..harness import RELIANCE, Harness, form, kotak_market, market_order

SECRET = "s3cret-for-signing"
DOC = Path(__file__).resolve().parents[2] / "docs" / "upstream-signature.md"

Verify = Callable[[str, str, str, CIMultiDictProxy[str], bytes, float], "str | None"]


def documented_verify() -> Verify:
    """The first Python block of the document, executed as an upstream would copy it."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    assert blocks, "docs/upstream-signature.md has no python block"
    namespace: dict[str, Any] = {}
    # the document's own code is what is under test, so it is run as written
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # noqa: S102
    verify: Verify = namespace["verify"]
    return verify


@dataclass(frozen=True)
class Received:
    method: str
    target: str  # raw_path: path and query as they arrived
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class RecordingUpstream:
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            Received(
                request.method,
                request.raw_path,
                CIMultiDictProxy(CIMultiDict(request.headers)),
                body,
            )
        )
        if request.path == "/v3/market-quote/ltp":
            quote = {"instrument_token": RELIANCE, "last_price": 1401.5}
            return web.json_response({"status": "success", "data": {"NSE_EQ:RELIANCE": quote}})
        return web.json_response({"status": "success", "data": {"order_id": "250101000000001"}})


@pytest.fixture
async def signed(
    make_gateway: GatewayFactory, aiohttp_server: Any
) -> tuple[Harness, RecordingUpstream]:
    upstream = RecordingUpstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")
    gw = await make_gateway(
        upstream_upstox=base,
        upstream_kotak=base,
        upstream_paradex=base,
        upstream_shared_secret=SECRET,
    )
    return gw, upstream


def _now(gw: Harness) -> float:
    return gw.clock.now().timestamp()


async def test_a_market_order_and_the_quote_fetched_for_it_verify_with_the_documented_code(
    signed: tuple[Harness, RecordingUpstream],
) -> None:
    gw, upstream = signed
    verify = documented_verify()
    trader = await gw.trader("127.0.0.2")
    reply = await gw.place(trader)
    assert reply.status == 200, reply.body
    quote, order = upstream.received
    assert quote.target == f"/v3/market-quote/ltp?instrument_key={RELIANCE.replace('|', '%7C')}"
    assert order.method == "POST" and order.target == "/v2/order/place"
    assert b'"order_type":"LIMIT"' in order.body  # the converted order is what was signed
    for got in (quote, order):
        assert verify(SECRET, got.method, got.target, got.headers, got.body, _now(gw)) == (
            trader.user_id
        )
        h = got.headers
        assert h["X-Gateway-Signature"] == sign(
            SECRET, got.method, got.target, trader.user_id, h["X-Gateway-Timestamp"], got.body
        )


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("DELETE", "/v2/order/cancel?order_id=250101000000009", None),
        ("GET", "/v2/order/details?order_id=250101000000009", None),
        ("PUT", "/v2/order/modify", {"order_id": "9", "order_type": "LIMIT", "price": 1400}),
        ("POST", "/quick/order/rule/ms/place", "kotak"),
        ("DELETE", "/v1/orders/9", None),
    ],
)
async def test_every_kind_of_forwarded_request_is_signed_over_its_target_and_body(
    signed: tuple[Harness, RecordingUpstream], method: str, path: str, payload: Any
) -> None:
    gw, upstream = signed
    verify = documented_verify()
    trader = await gw.trader("127.0.0.2")
    await gw.push_ltp({"nse_cm|RELIANCE-EQ": "1401.5"})
    if payload == "kotak":
        headers = {
            "Auth": trader.token,
            "Sid": trader.session_id,
            "Content-Type": "application/x-www-form-urlencoded",
        }
        reply = await gw.request(method, path, data=form(kotak_market()), headers=headers)
    else:
        reply = await gw.request(method, path, json=payload, headers=trader.bearer)
    assert reply.status == 200, reply.body
    (got,) = upstream.received
    assert got.target == path
    assert verify(SECRET, got.method, got.target, got.headers, got.body, _now(gw)) == (
        trader.user_id
    )


async def test_a_changed_query_body_method_or_an_old_timestamp_fails_the_documented_check(
    signed: tuple[Harness, RecordingUpstream],
) -> None:
    gw, upstream = signed
    verify = documented_verify()
    trader = await gw.trader("127.0.0.2")
    order = market_order(order_type="LIMIT", price=1400)
    assert (await gw.place(trader, order_type="LIMIT", price=1400)).status == 200
    cancel = "/v2/order/cancel?order_id=250101000000001"
    assert (await gw.request("DELETE", cancel, headers=trader.bearer)).status == 200
    placed, cancelled = upstream.received
    now = _now(gw)
    assert verify(SECRET, "POST", placed.target, placed.headers, placed.body, now)
    tampered_body = placed.body.replace(b'"quantity":1', b'"quantity":100')
    assert tampered_body != placed.body and order["quantity"] == 1
    assert verify(SECRET, "POST", placed.target, placed.headers, tampered_body, now) is None
    assert verify(SECRET, "PUT", placed.target, placed.headers, placed.body, now) is None
    other_id = cancel.replace("0001", "0002")
    assert verify(SECRET, "DELETE", cancelled.target, cancelled.headers, b"", now)
    assert verify(SECRET, "DELETE", other_id, cancelled.headers, b"", now) is None
    assert verify("another-secret", "DELETE", cancel, cancelled.headers, b"", now) is None
    assert verify(SECRET, "DELETE", cancel, cancelled.headers, b"", now + 301) is None
    forged = CIMultiDict(cancelled.headers)
    forged["X-Gateway-User-Id"] = "SOMEONE-ELSE"
    assert verify(SECRET, "DELETE", cancel, CIMultiDictProxy(forged), b"", now) is None


async def test_without_a_shared_secret_nothing_is_signed(
    make_gateway: GatewayFactory, aiohttp_server: Any
) -> None:
    upstream = RecordingUpstream()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    base = str((await aiohttp_server(app)).make_url("")).rstrip("/")
    gw = await make_gateway(upstream_upstox=base, upstream_kotak=base, upstream_paradex=base)
    trader = await gw.trader("127.0.0.2")
    assert (await gw.place(trader, order_type="LIMIT", price=1400)).status == 200
    (got,) = upstream.received
    assert got.headers["X-Gateway-User-Id"] == trader.user_id
    assert "X-Gateway-Signature" not in got.headers
    assert "X-Gateway-Timestamp" not in got.headers
