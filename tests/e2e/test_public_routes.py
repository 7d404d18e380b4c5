"""Public routes (SPEC §2): what the brokers serve without a session, and the official clients
call without one, pass without a gateway credential and with no account attached upstream."""

from __future__ import annotations

import asyncio
from urllib.parse import unquote

import pytest
import upstox_client

from ..harness import Harness
from .conftest import kotak_headers

CANDLES = "/v2/historical-candle/NSE_EQ%7CINE002A01018/day/2026-01-02/2025-12-01"
ACCOUNT = ("x-gateway-user-id", "x-gateway-session-id", "x-gateway-signature")


@pytest.mark.parametrize(
    "path",
    [
        CANDLES,
        "/v3/historical-candle/NSE_EQ%7CINE002A01018/days/1/2026-01-02",
        "/v2/market/holidays",
        "/v2/market/holidays/2026-01-26",
        "/v2/market/timings/2026-01-02",
    ],
)
async def test_upstox_public_routes_need_no_session(gw: Harness, path: str) -> None:
    reply = await gw.request("GET", path, headers={"Accept": "application/json"})

    assert reply.status == 200, reply.body
    [got] = await gw.upstream_requests()
    assert got["path"] == unquote(path)
    assert not any(name in got["headers"] for name in (*ACCOUNT, "authorization"))
    assert got["headers"]["accept"] == "application/json"


async def test_a_credential_sent_anyway_is_checked_and_still_attaches_no_account(
    gw: Harness,
) -> None:
    trader = await gw.trader("127.0.0.2")
    stored = await gw.admin(
        "PUT",
        f"/accounts/{trader.user_id}/upstream-auth/upstox",
        {"headers": {"Authorization": "Bearer broker-token"}},
    )
    assert stored.status == 204, stored.body

    good = await gw.request("GET", CANDLES, ip="127.0.0.9", headers=trader.bearer)
    bad = await gw.request("GET", CANDLES, headers={"Authorization": "Bearer nope"})

    assert good.status == 200, good.body
    assert bad.status == 401 and bad.error_code == "UDAPI100050"
    [got] = await gw.upstream_requests()  # the refused one never left
    assert not any(name in got["headers"] for name in (*ACCOUNT, "authorization"))


async def test_a_revoked_session_is_refused_on_a_public_route(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    out = await gw.request("DELETE", "/gateway/v1/session", ip=trader.ip, headers=trader.bearer)
    assert out.status < 300, out.body

    reply = await gw.request("GET", CANDLES, headers=trader.bearer)

    assert reply.status == 401, reply.body
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", CANDLES),  # only the listed method is public
        ("GET", "/v2/market/status/NSE"),  # market information, but not listed public
        ("GET", "/v2/market/holidaysX"),  # prefixes are whole segments
        ("GET", "/v2/order/retrieve-all"),
    ],
)
async def test_other_routes_still_need_a_session(gw: Harness, method: str, path: str) -> None:
    reply = await gw.request(method, path)

    assert reply.status == 401, reply.body
    assert reply.error_code == "UDAPI100050"
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    "path",
    [
        "/script-details/1.0/masterscrip/file-paths",
        "/script-details/1.0/quotes/neosymbol/nse_cm|2885/ltp",
        "/market-data/1.0/watchlist/expiries",
        "/market-data/1.0/historical/details",
    ],
)
async def test_kotak_public_routes_pass_the_consumer_key_on(gw: Harness, path: str) -> None:
    # neo_api_client sends these with only its consumer key in Authorization
    reply = await gw.request("GET", path, headers={"Authorization": "consumer-key-123"})

    assert reply.status == 200, reply.body
    [got] = await gw.upstream_requests()
    assert got["headers"]["authorization"] == "consumer-key-123"
    assert not any(name in got["headers"] for name in ACCOUNT)


async def test_kotak_credentials_sent_to_a_public_route_are_checked(gw: Harness) -> None:
    reply = await gw.request(
        "GET",
        "/market-data/1.0/watchlist/expiries",
        headers={"Authorization": "consumer-key-123", "Auth": "nope", "Sid": "nope"},
    )

    assert reply.status == 401, reply.body
    assert reply.data["stCode"] == 900901
    assert await gw.upstream_requests() == []


async def test_whatsmyip_shows_the_address_the_broker_sees(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")

    anonymous = await gw.request("GET", "/login/1.0/get-client-ip")
    reply = await gw.request(
        "GET", "/login/1.0/get-client-ip", ip=trader.ip, headers=kotak_headers(trader)
    )

    assert anonymous.status == 401 and anonymous.data["stCode"] == 900901
    assert reply.status == 200, reply.body
    # the broker sees the gateway's address (here loopback), not the strategy host's
    assert reply.data["data"][0]["ip"] == "127.0.0.1"
    assert reply.data["stCode"] == 1000
    [got] = await gw.upstream_requests()
    assert got["headers"]["x-gateway-user-id"] == trader.user_id


@pytest.mark.sdk
async def test_the_upstox_sdk_reads_candles_and_holidays_without_a_token(gw: Harness) -> None:
    configuration = upstox_client.Configuration()
    configuration.host = gw.url
    client = upstox_client.ApiClient(configuration)  # no access token, as the SDK allows

    candles = await asyncio.to_thread(
        upstox_client.HistoryApi(client).get_historical_candle_data,
        "NSE_EQ|INE002A01018",
        "day",
        "2026-01-02",
        "2.0",
    )
    holidays = await asyncio.to_thread(
        upstox_client.MarketHolidaysAndTimingsApi(client).get_holidays
    )

    assert candles.status == holidays.status == "success"
    paths = [r["path"] for r in await gw.upstream_requests()]
    assert paths == [
        "/v2/historical-candle/NSE_EQ|INE002A01018/day/2026-01-02",
        "/v2/market/holidays",
    ]
