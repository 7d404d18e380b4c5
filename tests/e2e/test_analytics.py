"""The analytics token (SPEC §9, Upstox model) against a real gateway and paper broker."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ..harness import RELIANCE, Harness, Login, Reply, market_order

ANALYTICS = "/gateway/v1/analytics-token"
PORTFOLIO = "/v2/portfolio/long-term-holdings"
QUOTE = f"/v2/market-quote/quotes?instrument_key={RELIANCE}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def issue(gw: Harness, login: Login) -> Reply:
    return await gw.request("POST", ANALYTICS, ip=login.ip, headers=login.bearer)


async def analytics_token(gw: Harness, login: Login) -> str:
    reply = await issue(gw, login)
    assert reply.status == 200, reply.body
    return str(reply.data["data"]["access_token"])


async def test_account_apis_only_from_a_registered_ip(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)

    outside = await gw.request("GET", PORTFOLIO, ip="127.0.0.3", headers=bearer(token))
    assert outside.status == 403
    assert outside.error_code == "UDAPI1154"
    assert "Portfolio" in outside.message
    assert await gw.upstream_requests() == []

    inside = await gw.request("GET", PORTFOLIO, ip="127.0.0.2", headers=bearer(token))
    assert inside.status == 200, inside.body
    [seen] = await gw.upstream_requests()
    assert seen["path"] == PORTFOLIO
    assert seen["headers"]["x-gateway-user-id"] == login.user_id


@pytest.mark.parametrize(
    "path",
    [QUOTE, "/v2/option/chain", "/v3/feed/market-data-feed/authorize", "/v2/news"],
)
async def test_market_data_from_anywhere(gw: Harness, path: str) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)

    reply = await gw.request("GET", path, ip="127.0.0.4", headers=bearer(token))

    assert reply.status == 200, reply.body
    assert [r["path"] for r in await gw.upstream_requests()] == [path.split("?")[0]]


async def test_unknown_paths_need_a_registered_ip(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)

    reply = await gw.request("GET", "/v2/something/new", ip="127.0.0.4", headers=bearer(token))

    assert reply.status == 403
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/charges/margin"),
        ("PUT", "/v2/portfolio/convert-position"),
        ("DELETE", "/v2/user/payments/payout/T1"),
        ("POST", QUOTE),
        ("POST", "/v2/user/kill-switch"),
    ],
)
async def test_read_only(gw: Harness, method: str, path: str) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)

    reply = await gw.request(method, path, ip="127.0.0.2", json={}, headers=bearer(token))

    assert reply.status == 403, reply.body
    assert "read-only" in reply.message
    assert await gw.upstream_requests() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/order/place"),
        ("POST", "/v3/order/place"),
        ("PUT", "/v2/order/modify"),
        ("DELETE", "/v2/order/cancel?order_id=1"),
        ("POST", "/v2/order/multi/place"),
    ],
)
async def test_never_an_order_route(gw: Harness, method: str, path: str) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)
    await gw.push_ltp({RELIANCE: "1401.5"})

    reply = await gw.request(
        method, path, ip="127.0.0.2", json=market_order(), headers=bearer(token)
    )

    assert reply.status == 403, reply.body
    assert "read-only" in reply.message
    assert await gw.upstream_requests() == []


async def test_the_gateway_api_is_read_only_too(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)

    for method, path in (
        ("POST", ANALYTICS),
        ("DELETE", ANALYTICS),
        ("DELETE", "/gateway/v1/session"),
        ("PUT", "/v2/user/ip"),
    ):
        reply = await gw.request(
            method, path, ip="127.0.0.2", json={"primary_ip": "127.0.0.9"}, headers=bearer(token)
        )
        assert reply.status == 403, (method, path, reply.body)
    assert (await gw.request("GET", PORTFOLIO, ip="127.0.0.2", headers=bearer(token))).status == 200
    ips = await gw.request("GET", "/v2/user/ip", ip="127.0.0.2", headers=login.bearer)
    assert ips.data["data"]["primary_ip"] == "127.0.0.2"


async def test_one_per_account_until_revoked(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    first = await analytics_token(gw, login)

    second = await issue(gw, login)
    assert second.status == 409
    assert second.data["error"] == "CONFLICT"
    assert (await gw.request("GET", QUOTE, headers=bearer(first))).status == 200

    revoked = await gw.request("DELETE", ANALYTICS, ip=login.ip, headers=login.bearer)
    assert revoked.status == 200, revoked.body
    assert (await gw.request("GET", QUOTE, headers=bearer(first))).status == 401
    again = await gw.request("DELETE", ANALYTICS, ip=login.ip, headers=login.bearer)
    assert again.status == 404

    third = await analytics_token(gw, login)
    assert third != first
    assert (await gw.request("GET", QUOTE, headers=bearer(third))).status == 200


async def test_valid_for_one_year(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    reply = await issue(gw, login)
    token = reply.data["data"]["access_token"]
    issued = gw.clock.now()
    expires = datetime.fromisoformat(reply.data["data"]["expires_at"])
    assert expires == issued.replace(year=issued.year + 1)

    gw.clock.set(expires - timedelta(seconds=1))
    assert (await gw.request("GET", QUOTE, headers=bearer(token))).status == 200
    gw.clock.set(expires)
    expired = await gw.request("GET", QUOTE, headers=bearer(token))
    assert expired.status == 401
    assert expired.error_code == "UDAPI100050"

    login = await gw.login(login, ip="127.0.0.2")
    assert (await issue(gw, login)).status == 200


async def test_only_a_login_session_issues_one(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    created = await gw.request(
        "POST",
        "/v1/account/tokens",
        json={"name": "bot", "token_type": "api_key", "expiry_duration": 3600},
        headers=login.bearer,
    )
    api_token = created.data["token"]

    reply = await gw.request("POST", ANALYTICS, headers=bearer(api_token))

    assert reply.status == 403
    assert (await issue(gw, login)).status == 200


async def test_an_ip_change_invalidates_the_analytics_token(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)
    gw.clock.advance(8 * 24 * 3600)
    login = await gw.login(login, ip="127.0.0.2")

    assert (await gw.set_ips(login, "127.0.0.3")).status == 200

    assert (await gw.request("GET", QUOTE, headers=bearer(token))).status == 401
    login = await gw.login(login, ip="127.0.0.3")
    assert (await issue(gw, login)).status == 200


async def test_analytics_tokens_are_upstox_only(gw: Harness) -> None:
    login = await gw.trader("127.0.0.2")
    token = await analytics_token(gw, login)

    paradex = await gw.request("GET", "/v1/markets", ip="127.0.0.2", headers=bearer(token))

    assert paradex.status == 401
    assert paradex.data["error"] == "INVALID_TOKEN"
    assert await gw.upstream_requests() == []


async def test_an_order_path_with_any_method_is_read_only_refused(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    issued = await gw.request("POST", "/gateway/v1/analytics-token", headers=trader.bearer)
    analytics = {"Authorization": f"Bearer {issued.data['data']['access_token']}"}
    reply = await gw.request("GET", "/v2/order/place", headers=analytics)
    assert reply.status == 403
    assert reply.error_code == "UDAPI94031"
    assert await gw.upstream_requests() == []


async def test_a_token_cannot_log_itself_out(gw: Harness) -> None:
    trader = await gw.trader("127.0.0.2")
    issued = await gw.request("POST", "/gateway/v1/analytics-token", headers=trader.bearer)
    analytics = {"Authorization": f"Bearer {issued.data['data']['access_token']}"}
    assert (await gw.request("DELETE", "/gateway/v1/session", headers=analytics)).status == 403
    assert (await gw.request("GET", "/v2/user/profile", headers=analytics)).status == 200
