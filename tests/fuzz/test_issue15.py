"""Issue 15's cases, each once and by name: a lone UTF-16 surrogate written as a JSON escape
(``"\\ud800"``) answered 500.  Now: 400 in the dialect's envelope naming the field, nothing
upstream, nothing stored, and on order routes the refusal is in the audit log."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import pytest

from ..harness import ADMIN_TOKEN, Harness, Login, Reply, kotak_market, market_order
from .raw import raw_request
from .strategies import dumps, jdata_form

LONE = "\ud800"
LIMIT: dict[str, Any] = {"order_type": "LIMIT", "price": 1400}


def upstox_error(reply: Reply) -> bool:
    return reply.data["status"] == "error" and reply.error_code == "UDAPI9400"


def kotak_error(reply: Reply) -> bool:
    return bool(reply.data["stat"] == "Not_Ok" and reply.data["stCode"] == 9400)


def gateway_error(reply: Reply) -> bool:
    return bool(reply.data["error"] == "BAD_REQUEST")


async def last_audit(gw: Harness, login: Login) -> dict[str, Any]:
    reply = await gw.admin("GET", f"/audit?user_id={login.user_id}&limit=1")
    assert reply.status == 200, reply.body
    return dict(reply.data["data"][0])


ORDER_CASES: list[tuple[str, str, str, Any, str, Any]] = [
    (
        "upstox v2 tag",
        "/v2/order/place",
        "json",
        market_order(tag=LONE, **LIMIT),
        "tag",
        upstox_error,
    ),
    (
        "upstox v2 validity",
        "/v2/order/place",
        "json",
        market_order(validity=LONE, **LIMIT),
        "validity",
        upstox_error,
    ),
    (
        "upstox v3 instrument_token",
        "/v3/order/place",
        "json",
        market_order(instrument_token=LONE, **LIMIT),
        "instrument_token",
        upstox_error,
    ),
    (
        "kotak place ts",
        "/quick/order/rule/ms/place",
        "form",
        kotak_market(ts=LONE),
        "ts",
        kotak_error,
    ),
    (
        "kotak cancel on",
        "/quick/order/cancel",
        "form",
        {"on": LONE, "am": "NO"},
        "on",
        kotak_error,
    ),
    (
        "paradex client_id",
        "/v1/orders",
        "json",
        {"market": "BTC-USD-PERP", "side": "BUY", "type": "LIMIT", "size": "1", "price": "1"}
        | {"client_id": LONE},
        "client_id",
        gateway_error,
    ),
]


@pytest.mark.parametrize(
    ("name", "path", "kind", "doc", "field", "in_envelope"),
    ORDER_CASES,
    ids=[case[0] for case in ORDER_CASES],
)
async def test_order_routes_refuse_a_lone_surrogate(
    gw: Harness, name: str, path: str, kind: str, doc: Any, field: str, in_envelope: Any
) -> None:
    trader = await gw.trader("127.0.0.2")
    if kind == "json":
        body, content_type = dumps(doc).encode(), "application/json"
        headers = trader.bearer
    else:
        body, content_type = jdata_form(doc), "application/x-www-form-urlencoded"
        headers = {"Auth": trader.token, "Sid": trader.session_id}
    assert b"\\ud800" in unquote_to_bytes(body)  # the escape, as the fuzzer sent it
    reply = await gw.request(
        "POST", path, data=body, headers={**headers, "Content-Type": content_type}
    )
    assert reply.status == 400, reply.body
    assert in_envelope(reply), reply.body
    assert f"{field} is not valid Unicode" in reply.message
    assert await gw.upstream_requests() == []
    audited = await last_audit(gw, trader)
    assert (audited["decision"], audited["reason"], audited["path"]) == (
        "refused",
        "bad_request",
        path,
    )


async def test_login_refuses_a_lone_surrogate_api_key(gw: Harness) -> None:
    body = dumps({"api_key": LONE, "api_secret": "x"}).encode()
    reply = await gw.request(
        "POST", "/gateway/v1/session", data=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400 and gateway_error(reply)
    assert "api_key is not valid Unicode" in reply.message


async def test_token_creation_refuses_a_lone_surrogate_name(gw: Harness) -> None:
    login = await gw.login(await gw.account())
    body = dumps({"name": LONE, "token_type": "api_key", "expiry_duration": 3600}).encode()
    reply = await gw.request(
        "POST",
        "/v1/account/tokens",
        data=body,
        headers={**login.bearer, "Content-Type": "application/json"},
    )
    assert reply.status == 400 and gateway_error(reply)
    assert "name is not valid Unicode" in reply.message
    listed = await gw.request("GET", "/v1/account/tokens", headers=login.bearer)
    assert listed.status == 200 and listed.data["results"] == []


async def test_a_query_parameter_that_is_not_utf8_is_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    reply = await gw.request("DELETE", "/v2/order/cancel?order_id=%ED%A0%80", headers=trader.bearer)
    assert reply.status == 400 and upstox_error(reply)
    assert "'order_id' is not UTF-8" in reply.message
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe", b"\xed\xa0\x80"])
async def test_a_header_value_that_is_not_utf8_is_refused(gw: Harness, value: bytes) -> None:
    status, body = await raw_request(
        gw.gateway, "GET", "/v2/user/profile", {"Authorization": value}
    )
    assert status == 400
    assert b"UDAPI9400" in body and b"the Authorization header is not UTF-8" in body
    assert await gw.upstream_requests() == []
    status, body = await raw_request(
        gw.gateway,
        "GET",
        "/admin/v1/accounts",
        {"Authorization": f"Bearer {ADMIN_TOKEN}".encode(), "X-Note": value},
    )
    assert status == 400 and b'"error":"BAD_REQUEST"' in body
