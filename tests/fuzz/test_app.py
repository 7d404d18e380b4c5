"""Hostile requests through a running gateway in front of the paper broker, which records
every request it receives.

For every example: never a 5xx; a refusal (4xx in the dialect's envelope) sent nothing
upstream; whatever did go upstream is the order the client sent, after a MARKET/SL-M
conversion the gateway announced in ``X-Gateway-Order-Type`` / ``X-Gateway-Limit-Price``.
One gateway serves all of a test's examples; the fake clock moves a second per example so
the rate window never fills.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from ..harness import Harness, Login, Reply
from . import strategies as s

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

UPSTOX_ROUTES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("POST", "/v2/order/place", s.upstox_place()),
    ("POST", "/v3/order/place", s.upstox_place(v3=True)),
    ("PUT", "/v2/order/modify", s.upstox_modify()),
    ("POST", "/v2/order/multi/place", st.lists(s.upstox_place(multi=True), min_size=1, max_size=2)),
]
PARADEX_ROUTES: list[tuple[str, str, st.SearchStrategy[Any]]] = [
    ("POST", "/v1/orders", s.paradex_order()),
    ("POST", "/v1/orders/batch", st.lists(s.paradex_order(), min_size=1, max_size=2)),
]
KOTAK_ROUTES: list[tuple[str, st.SearchStrategy[Any]]] = [
    ("/quick/order/rule/ms/place", s.kotak_place()),
    ("/quick/order/cancel", s.kotak_cancel()),
]


def envelope_ok(dialect: str, reply: Reply) -> bool:
    data = reply.data
    if not isinstance(data, dict):
        return False
    if dialect == "upstox":
        return data.get("status") == "error" and reply.error_code is not None
    if dialect == "kotak":
        return data.get("stat") == "Not_Ok" and isinstance(data.get("stCode"), int)
    return isinstance(data.get("error"), str) and isinstance(data.get("message"), str)


async def orders_upstream(gw: Harness) -> list[dict[str, Any]]:
    """Order requests the paper broker received (quote reads for an LTP are not orders)."""
    return [r for r in await gw.upstream_requests() if r["method"] != "GET"]


def numbers_as_decimals(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: numbers_as_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [numbers_as_decimals(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return Decimal(str(value))
    return value


def sent_as(body: bytes, content_type: str) -> Any:
    """The body as the client meant it, read the way the paper broker reads what it gets."""
    if content_type == FORM:
        fields = dict(parse_qsl(body.decode()))
        return {"jData": json.loads(fields["jData"], parse_float=Decimal)}
    return json.loads(body, parse_float=Decimal)


def converted(expected: Any, dialect: str, reply: Reply) -> Any:
    """The client's order after the conversions the gateway announced."""
    types = reply.headers.get("X-Gateway-Order-Type")
    if not types:
        return expected
    prices = reply.headers["X-Gateway-Limit-Price"].split(", ")
    docs = expected if isinstance(expected, list) else [expected]
    if dialect == "kotak":
        docs = [expected["jData"]]
    kinds = types.split(", ")
    converting = [
        d
        for d in docs
        if d.get("order_type", d.get("pt", d.get("type"))) in ("MARKET", "SL-M", "MKT")
    ]
    assert len(converting) == len(kinds)
    for doc, kind, price in zip(converting, kinds, prices, strict=True):
        if dialect == "upstox":
            doc["order_type"], doc["price"] = kind, Decimal(price)
        elif dialect == "kotak":
            doc["pt"], doc["pr"] = {"LIMIT": "L", "SL": "SL"}[kind], price
        else:
            doc["type"], doc["price"] = {"LIMIT": "LIMIT", "SL": "STOP_LIMIT"}[kind], price
    return expected


async def check_one(
    gw: Harness,
    dialect: str,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str,
) -> None:
    before = len(await orders_upstream(gw))
    gw.clock.advance(1.1)
    reply = await gw.request(
        method, path, data=body, headers={**headers, "Content-Type": content_type}
    )
    assert reply.status < 500, reply.body
    event(f"{reply.status} {(reply.data or {}).get('stCode') or reply.error_code or ''}")
    arrived = (await orders_upstream(gw))[before:]
    if not arrived:
        # refused by the gateway: a 4xx in the dialect's own envelope
        assert 400 <= reply.status < 500, (reply.status, reply.body)
        assert envelope_ok(dialect, reply), reply.body
        return
    assert len(arrived) == 1, arrived
    expected = converted(sent_as(body, content_type), dialect, reply)
    assert numbers_as_decimals(arrived[0]["body"]) == numbers_as_decimals(expected)


@pytest.fixture
async def trader(gw: Harness) -> Login:
    return await gw.trader("127.0.0.2")


@pytest.mark.parametrize(
    ("method", "path", "valid"), UPSTOX_ROUTES, ids=[f"{m} {p}" for m, p, _ in UPSTOX_ROUTES]
)
@given(data=st.data())
async def test_upstox_order_routes(
    gw: Harness, trader: Login, method: str, path: str, valid: st.SearchStrategy[Any], data: Any
) -> None:
    body = data.draw(s.mutated(valid).map(s.json_body).flatmap(s.hostile_bytes))
    await check_one(gw, "upstox", method, path, body, trader.bearer, JSON)


@pytest.mark.parametrize(
    ("method", "path", "valid"), PARADEX_ROUTES, ids=[f"{m} {p}" for m, p, _ in PARADEX_ROUTES]
)
@given(data=st.data())
async def test_paradex_order_routes(
    gw: Harness, trader: Login, method: str, path: str, valid: st.SearchStrategy[Any], data: Any
) -> None:
    body = data.draw(s.mutated(valid).map(s.json_body).flatmap(s.hostile_bytes))
    await check_one(gw, "paradex", method, path, body, trader.bearer, JSON)


@pytest.mark.parametrize(("path", "valid"), KOTAK_ROUTES, ids=[p for p, _ in KOTAK_ROUTES])
@given(data=st.data())
async def test_kotak_order_routes(
    gw: Harness, trader: Login, path: str, valid: st.SearchStrategy[Any], data: Any
) -> None:
    body = data.draw(s.mutated(valid).map(s.jdata_form).flatmap(s.hostile_bytes))
    headers = {"Auth": trader.token, "Sid": trader.session_id}
    await check_one(gw, "kotak", "POST", path, body, headers, FORM)


escaped = st.one_of(
    st.text(max_size=8).map(lambda t: quote(t, safe="", errors="surrogatepass")),
    st.sampled_from(["%FF", "%ED%A0%80", "%C3", "%00", "%25", "+", ""]),
)


@given(
    st.sampled_from(
        [
            ("upstox", "DELETE", "/v2/order/cancel?order_id={}"),
            ("upstox", "DELETE", "/v3/order/cancel?order_id={}"),
            ("upstox", "DELETE", "/v2/order/cancel?order_id=1&order_id={}"),
            ("paradex", "DELETE", "/v1/orders?market={}"),
            ("paradex", "DELETE", "/v1/orders/{}"),
            ("upstox", "GET", "/v2/order/details?order_id={}"),
        ]
    ),
    escaped,
)
@example(("upstox", "DELETE", "/v2/order/cancel?order_id={}"), "%ED%A0%80")
async def test_queries_and_path_ids(
    gw: Harness, trader: Login, route: tuple[str, str, str], value: str
) -> None:
    dialect, method, template = route
    path = template.format(value)
    before = len(await gw.upstream_requests())
    gw.clock.advance(1.1)
    reply = await gw.request(method, path, headers=trader.bearer)
    event(f"{reply.status}")
    assert reply.status < 500, reply.body
    forwarded = [r for r in (await gw.upstream_requests())[before:] if r["method"] == method]
    if not forwarded:
        assert 400 <= reply.status < 500, (reply.status, reply.body)
        assert envelope_ok(dialect, reply), reply.body
    else:
        assert len(forwarded) == 1, forwarded
