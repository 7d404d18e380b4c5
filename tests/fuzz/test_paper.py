"""The paper broker fed garbage directly: a broker answers 4xx to it, never 5xx, and its
request log (``GET /paper/requests``) stays readable whatever it recorded."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from hypothesis import event, example, given
from hypothesis import strategies as st

from . import strategies as s
from .raw import raw_request

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"

ROUTES: list[tuple[str, str, str, st.SearchStrategy[Any]]] = [
    ("POST", "/v2/order/place", JSON, s.upstox_place()),
    ("POST", "/v3/order/place", JSON, s.upstox_place(v3=True)),
    ("PUT", "/v2/order/modify", JSON, s.upstox_modify()),
    ("POST", "/v2/order/multi/place", JSON, st.lists(s.upstox_place(multi=True), max_size=2)),
    ("POST", "/v2/order/positions/exit", JSON, s.junk),
    ("POST", "/v3/order/gtt/place", JSON, s.junk),
    ("PUT", "/v3/order/gtt/modify", JSON, s.junk),
    ("POST", "/quick/order/rule/ms/place", FORM, s.kotak_place()),
    ("POST", "/quick/order/vr/modify", FORM, s.kotak_place()),
    ("POST", "/quick/order/cancel", FORM, s.kotak_cancel()),
    ("POST", "/v1/orders", JSON, s.paradex_order()),
    ("POST", "/v1/orders/batch", JSON, st.lists(s.paradex_order(), max_size=2)),
    ("PUT", "/paper/ltp", JSON, st.dictionaries(s.odd_text, s.scalars, max_size=2)),
]


async def send(
    paper: TestServer, method: str, path: str, body: bytes, headers: dict[str, str]
) -> int:
    async with (
        aiohttp.ClientSession() as client,
        client.request(method, str(paper.make_url(path)), data=body, headers=headers) as resp,
    ):
        await resp.read()
        return resp.status


async def log_readable(paper: TestServer) -> None:
    for path in ("/paper/requests", "/paper/orders", "/paper/ltp"):
        async with aiohttp.ClientSession() as client, client.get(str(paper.make_url(path))) as resp:
            assert resp.status == 200, await resp.text()
            await resp.json()


@pytest.mark.parametrize(
    ("method", "path", "content_type", "valid"), ROUTES, ids=[f"{m} {p}" for m, p, _, _ in ROUTES]
)
@given(data=st.data())
async def test_paper_broker_routes(
    paper: TestServer,
    method: str,
    path: str,
    content_type: str,
    valid: st.SearchStrategy[Any],
    data: Any,
) -> None:
    write = s.jdata_form if content_type == FORM else s.json_body
    body = data.draw(s.mutated(valid).map(write).flatmap(s.hostile_bytes))
    status = await send(paper, method, path, body, {"Content-Type": content_type})
    event(str(status))
    assert status < 500
    await log_readable(paper)


@given(
    st.sampled_from(["order_id", "tag", "instrument_key", "market", "gtt_order_id"]),
    st.sampled_from(["%FF", "%ED%A0%80", "x", "", "%00"]),
    st.sampled_from(
        [
            ("DELETE", "/v2/order/cancel"),
            ("DELETE", "/v2/order/multi/cancel"),
            ("GET", "/v3/market-quote/ltp"),
            ("DELETE", "/v1/orders"),
            ("DELETE", "/v3/order/gtt/cancel"),
        ]
    ),
)
@example("order_id", "%ED%A0%80", ("DELETE", "/v2/order/cancel"))
async def test_paper_broker_queries(
    paper: TestServer, name: str, value: str, route: tuple[str, str]
) -> None:
    method, path = route
    status = await send(paper, method, f"{path}?{name}={value}", b"", {})
    assert status < 500
    await log_readable(paper)


@given(
    st.sampled_from(["X-Gateway-User-Id", "Accept", "X-Algo-Id", "Content-Type"]),
    st.binary(min_size=1, max_size=8).filter(lambda b: b"\r" not in b and b"\n" not in b),
)
@example("X-Gateway-User-Id", b"\xff\xfe")
async def test_paper_broker_headers(paper: TestServer, name: str, value: bytes) -> None:
    body = s.json_body({"market": "BTC-USD-PERP", "side": "BUY", "type": "LIMIT", "size": "1"})
    status, _ = await raw_request(paper, "POST", "/v1/orders", {name: value}, body)
    event(str(status))
    assert status < 500
    await log_readable(paper)
