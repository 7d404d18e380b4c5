"""Public routes (SPEC §2): what the SDKs call without a session reaches the upstream with no
account attached, while an order or account route with no credential is still refused.

The account exists, is logged in and has a stored broker credential for both dialects, so a
public request that picked up any account's identity or credential would show it upstream.
"""

from __future__ import annotations

from typing import Any

import pytest

from ..conftest import GatewayFactory
from ..harness import Harness
from .recorder import Recorder, start_recorder

pytestmark = pytest.mark.sdk

BROKER = "Bearer broker-credential-ZZ9"
CONSUMER_KEY = "kotak-consumer-key"
IDENTITY = ("x-gateway-user-id", "x-gateway-session-id", "x-gateway-signature")

# (path, headers the SDK sends): upstox's public calls send no Authorization at all
# (auth_settings = [] in history_api.py, market_holidays_and_timings_api.py); kotak's send the
# consumer key alone (services/scrip_master.py, quotes.py, expiries.py, ...).
PUBLIC = [
    pytest.param(
        "/v2/historical-candle/NSE_EQ%7CINE002A01018/day/2026-03-27", {}, id="upstox-v2-candles"
    ),
    pytest.param(
        "/v3/historical-candle/intraday/NSE_EQ%7CINE002A01018/minutes/5",
        {},
        id="upstox-v3-intraday",
    ),
    pytest.param("/v2/market/holidays", {}, id="upstox-holidays"),
    pytest.param("/v2/market/timings/2026-03-27", {}, id="upstox-timings"),
    pytest.param(
        "/script-details/1.0/masterscrip/file-paths",
        {"Authorization": CONSUMER_KEY},
        id="kotak-scrip-master",
    ),
    pytest.param(
        "/market-data/1.0/watchlist/expiries?exchange=nse_fo&underlying=NIFTY",
        {"Authorization": CONSUMER_KEY},
        id="kotak-expiries",
    ),
]
# (method, path, body, headers): no gateway credential on an order route or an account read.
PRIVATE: list[tuple[str, str, Any, dict[str, str]]] = [
    ("POST", "/v2/order/place", {"order_type": "LIMIT"}, {}),
    ("GET", "/v2/order/retrieve-all", None, {}),
    ("GET", "/v2/user/profile", None, {}),
    ("POST", "/quick/order/rule/ms/place", None, {"Authorization": CONSUMER_KEY}),
    ("GET", "/quick/user/orders", None, {"Authorization": CONSUMER_KEY}),
]


@pytest.fixture
async def setup(aiohttp_server: Any, make_gateway: GatewayFactory) -> tuple[Harness, Recorder]:
    recorder = await start_recorder(aiohttp_server)
    gw = await make_gateway(upstream_upstox=recorder.base_url, upstream_kotak=recorder.base_url)
    trader = await gw.trader("127.0.0.2")
    for dialect in ("upstox", "kotak"):
        reply = await gw.admin(
            "PUT",
            f"/accounts/{trader.user_id}/upstream-auth/{dialect}",
            {"headers": {"Authorization": BROKER}},
        )
        assert reply.status == 204, reply.body
    assert recorder.take() == []
    return gw, recorder


@pytest.mark.parametrize(("path", "headers"), PUBLIC)
async def test_a_public_route_with_no_credential_reaches_the_upstream_with_no_account(
    setup: tuple[Harness, Recorder], path: str, headers: dict[str, str]
) -> None:
    gw, recorder = setup

    reply = await gw.request("GET", path, headers=headers)

    assert reply.status == 200, reply.body
    [arrived] = recorder.take()
    assert arrived.method == "GET"
    for name in IDENTITY:
        assert name not in arrived.headers
    assert BROKER not in arrived.headers.values()
    # kotak's consumer key is passed on (SPEC §2); upstox's calls carry none to pass
    assert arrived.headers.get("authorization") == headers.get("Authorization")


@pytest.mark.parametrize(
    ("method", "path", "body", "headers"), PRIVATE, ids=[p for _, p, _, _ in PRIVATE]
)
async def test_an_order_or_account_route_with_no_credential_is_still_401(
    setup: tuple[Harness, Recorder],
    method: str,
    path: str,
    body: Any,
    headers: dict[str, str],
) -> None:
    gw, recorder = setup

    reply = await gw.request(method, path, json=body, headers=headers)

    assert reply.status == 401, reply.body
    assert reply.error_code == "UDAPI100050" or reply.data["stCode"] == 900901
    assert recorder.take() == []
